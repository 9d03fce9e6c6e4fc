#!/usr/bin/python3
"""Plate crops of a labelled set: pictures a plate fills, as users send them (cut-outs from another system,
a parking camera zoomed in on the barrier, a phone held close to the car).

Each labelled plate with text is cut out of its image with a margin of MARGIN times its width and height on
each side (clipped to the image), and written with its box and text in the OpenALPR benchmark format that
`vigil bench` reads: NAME.jpg and NAME.txt.

  /usr/bin/python3 training/make_crop_set.py ../shared/data/openalpr-us:test --margin 0.05 --out /tmp/crops
  build/apps/vigil/vigil bench /tmp/crops
"""
import argparse
import os
import sys

import cv2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigil_data  # noqa: E402


def crop_box(plate, margin, img_w, img_h):
    """(x0, y0, x1, y1): the plate's box grown by `margin` of its size on each side, inside the image."""
    x0 = max(0, int(round(plate.x - plate.w * margin)))
    y0 = max(0, int(round(plate.y - plate.h * margin)))
    x1 = min(img_w, int(round(plate.x + plate.w * (1 + margin))))
    y1 = min(img_h, int(round(plate.y + plate.h * (1 + margin))))
    return x0, y0, x1, y1


def make_set(specs, margin, out):
    """Writes the crops of the datasets `specs` (PATH[:split] each) into `out`; returns how many."""
    os.makedirs(out, exist_ok=True)
    n = 0
    for spec in specs:
        path, _, split = spec.partition(":")
        for s in vigil_data.load_dataset(path, split or "all"):
            img = cv2.imread(s.path, cv2.IMREAD_COLOR)
            if img is None:
                print(f"skipped {s.path}: does not decode", file=sys.stderr)
                continue
            for p in s.boxes_px(img.shape[1], img.shape[0]):
                text = vigil_data.normalize_plate(p.text)
                if not text or p.w < 4 or p.h < 4:
                    continue
                x0, y0, x1, y1 = crop_box(p, margin, img.shape[1], img.shape[0])
                name = f"crop-{n:04d}"
                cv2.imwrite(os.path.join(out, name + ".jpg"), img[y0:y1, x0:x1], [cv2.IMWRITE_JPEG_QUALITY, 95])
                with open(os.path.join(out, name + ".txt"), "w") as f:
                    f.write(f"{name}.jpg\t{round(p.x - x0)}\t{round(p.y - y0)}\t{round(p.w)}\t{round(p.h)}\t{text}\n")
                n += 1
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("datasets", nargs="+", help="labelled sets with plate text, PATH[:all|train|test]")
    ap.add_argument("--margin", type=float, default=0.05, help="margin on each side, times the plate's size")
    ap.add_argument("--out", required=True, help="output folder (created)")
    a = ap.parse_args()
    n = make_set(a.datasets, a.margin, a.out)
    print(f"{n} plate crops with a margin of {a.margin:g} in {a.out}")


if __name__ == "__main__":
    main()
