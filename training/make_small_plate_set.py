#!/usr/bin/python3
"""A test set of small plates in large photos, made from any labelled dataset.

Each labelled photo is shrunk so its plate is a chosen width (40, 50, 60 or 80 px by default) and pasted at a
random place into a large canvas (4000x3000 by default) filled with a plate-free photo (the negatives folder)
enlarged to cover it. The result is written in the OpenALPR benchmark format (NAME.jpg and NAME.txt with the box
and the text), so `vigil bench` reads it like any other set:

  /usr/bin/python3 training/make_small_plate_set.py ../shared/data/openalpr-us:test \
      --negatives ../shared/data/negatives --out /tmp/small-us
  build/apps/vigil/vigil bench /tmp/small-us

Only photos with exactly one labelled plate with text are used (a second, unlabelled plate pasted small would
count as a false detection). The same seed gives the same set.
"""
import argparse
import os
import random
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigil_data  # noqa: E402


def parse_size(text):
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def cover(img, width, height):
    """`img` enlarged (or shrunk) and centre-cropped to exactly width x height."""
    s = max(width / img.shape[1], height / img.shape[0])
    big = cv2.resize(img, (max(width, round(img.shape[1] * s)), max(height, round(img.shape[0] * s))),
                     interpolation=cv2.INTER_LINEAR)
    y0, x0 = (big.shape[0] - height) // 2, (big.shape[1] - width) // 2
    return big[y0:y0 + height, x0:x0 + width]


def compose(photo, plate, background, plate_width, rng):
    """`photo` shrunk so `plate` is `plate_width` px wide, pasted into `background` (a copy); returns the
    canvas and the plate's box in it, or None when the shrunk photo would not fit."""
    s = plate_width / plate.w
    if s >= 1:
        return None  # only ever shrink: enlarging would invent detail
    pw, ph = max(1, round(photo.shape[1] * s)), max(1, round(photo.shape[0] * s))
    H, W = background.shape[:2]
    if pw >= W or ph >= H:
        return None
    small = cv2.resize(photo, (pw, ph), interpolation=cv2.INTER_AREA)
    x0, y0 = rng.randrange(0, W - pw), rng.randrange(0, H - ph)
    canvas = background.copy()
    canvas[y0:y0 + ph, x0:x0 + pw] = small
    box = (x0 + plate.x * s, y0 + plate.y * s, plate.w * s, plate.h * s)
    return canvas, box


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("datasets", nargs="+",
                    help="labelled datasets (any format vigil_data reads); PATH:test or PATH:train picks a part "
                         "of the seeded split, as in `vigil bench`")
    ap.add_argument("--negatives", required=True, help="folder of plate-free photos for the canvas")
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--size", default="4000x3000", help="canvas size WxH (default 4000x3000)")
    ap.add_argument("--widths", default="40,50,60,80", help="plate widths in px, used in turn")
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    width, height = parse_size(a.size)
    widths = [int(w) for w in a.widths.split(",")]
    rng = random.Random(a.seed)
    negatives = sorted(os.path.join(a.negatives, f) for f in os.listdir(a.negatives)
                       if f.lower().endswith(vigil_data.IMAGE_EXTS))
    if not negatives:
        sys.exit(f"{a.negatives}: no images for the canvas")
    os.makedirs(a.out, exist_ok=True)
    made = skipped = 0
    for spec in a.datasets:
        d, split = spec, "all"
        if spec.rsplit(":", 1)[-1] in ("all", "train", "test") and ":" in spec:
            d, split = spec.rsplit(":", 1)
        for sample in vigil_data.load_dataset(d, split):
            photo = cv2.imread(sample.path, cv2.IMREAD_COLOR)
            plates = sample.boxes_px(photo.shape[1], photo.shape[0]) if photo is not None else []
            if photo is None or len(plates) != 1 or not vigil_data.normalize_plate(plates[0].text):
                skipped += 1
                continue
            plate = plates[0]
            background = cv2.imread(rng.choice(negatives), cv2.IMREAD_COLOR)
            if background is None:
                skipped += 1
                continue
            plate_width = widths[made % len(widths)]
            got = compose(photo, plate, cover(background, width, height), plate_width, rng)
            if got is None:
                skipped += 1
                continue
            canvas, (x, y, w, h) = got
            stem = f"{os.path.basename(os.path.normpath(d))}-{os.path.splitext(os.path.basename(sample.path))[0]}"
            stem = stem.replace(" ", "_") + f"-w{plate_width}"
            cv2.imwrite(os.path.join(a.out, stem + ".jpg"), canvas, [cv2.IMWRITE_JPEG_QUALITY, a.quality])
            with open(os.path.join(a.out, stem + ".txt"), "w") as f:
                f.write(f"{stem}.jpg\t{round(x)}\t{round(y)}\t{round(w)}\t{round(h)}\t"
                        f"{vigil_data.normalize_plate(plate.text)}\n")
            made += 1
    print(f"{made} images in {a.out} ({skipped} photos skipped: not exactly one plate with text, or too small)")
    return 0 if made else 1


if __name__ == "__main__":
    sys.exit(main())
