#!/usr/bin/python3
"""A labelled test set of synthetic plates (training/synth.py) in photos of real places, for layouts no real
dataset here has: two-line (square and motorcycle) plates, and the countries without real labelled photos.

Each image is a plate-free photo (the negatives folder) enlarged to cover the frame (1280x720 by default), with
one or two rendered plates pasted in perspective (yaw mostly within +-30 degrees), shaded, and sometimes blurred
or noisy. Written in the OpenALPR benchmark format (NAME.jpg and NAME.txt, one line per plate: the box around
the plate's corners and its text), so `vigil bench` reads it like any other set:

  /usr/bin/python3 training/make_synthetic_set.py --negatives ../shared/data/negatives --two-line \\
      --out /tmp/two-line
  build/apps/vigil/vigil bench /tmp/two-line

The plates come from the same renderer the models were trained on (with other random draws), so the figures
are an upper bound of what real plates of those layouts give. The same seed gives the same set.
"""
import argparse
import math
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_small_plate_set  # noqa: E402
import synth  # noqa: E402
import vigil_data  # noqa: E402


def paste_plate(canvas, plate_rgb, corners, gain):
    """Draws `plate_rgb` (RGB) into the BGR `canvas` with its corners at `corners` (4x2, image pixels)."""
    ph, pw = plate_rgb.shape[:2]
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
    H = cv2.getPerspectiveTransform(src, corners.astype(np.float32))
    size = (canvas.shape[1], canvas.shape[0])
    tw = np.linalg.norm(corners[1] - corners[0])
    plate = cv2.cvtColor(plate_rgb, cv2.COLOR_RGB2BGR)
    if tw < pw * 0.5:  # shrinking a lot: blur first, as a lens would
        plate = cv2.GaussianBlur(plate, (0, 0), 0.35 * pw / tw)
    warped = cv2.warpPerspective(plate, H, size, flags=cv2.INTER_LINEAR).astype(np.float32) * gain
    mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), H, size, flags=cv2.INTER_LINEAR)
    m = (mask.astype(np.float32) / 255.0)[:, :, None]
    canvas[:] = np.clip(canvas.astype(np.float32) * (1 - m) + warped * m, 0, 255).astype(np.uint8)


def make_image(rng, background, countries, two_line, plates_per_image, widths):
    """One scene: (BGR image, [(x, y, w, h, text), ...])."""
    canvas = background.copy()
    H, W = canvas.shape[:2]
    labels, taken = [], []
    for _ in range(plates_per_image):
        country = countries[rng.integers(len(countries))]
        img, text, _ = synth.render_plate(rng, country, two_line=two_line)
        ph, pw = img.shape[:2]
        tw = math.exp(rng.uniform(math.log(widths[0]), math.log(widths[1])))
        q = synth.plate_quad(rng, pw, ph, tw)
        for _try in range(20):
            c = q + np.array([rng.uniform(0.1, 0.9) * W, rng.uniform(0.15, 0.9) * H], np.float32)
            x0, y0 = c.min(0)
            x1, y1 = c.max(0)
            inside = x0 >= 2 and y0 >= 2 and x1 <= W - 2 and y1 <= H - 2
            apart = all(x1 + 20 < t[0] or t[2] + 20 < x0 or y1 + 20 < t[1] or t[3] + 20 < y0 for t in taken)
            if inside and apart:
                break
        else:
            continue
        taken.append((x0, y0, x1, y1))
        gain = (rng.uniform(0.55, 1.1) * rng.uniform(0.9, 1.1, size=3)).astype(np.float32)
        paste_plate(canvas, img, c, gain)
        labels.append((x0, y0, x1 - x0, y1 - y0, text))
    r = rng.random()
    if r < 0.25:
        canvas = cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.5, 1.2))
    elif r < 0.45:
        noise = np.empty(canvas.shape, np.int16)
        cv2.randn(noise, 0, float(rng.uniform(2, 8)))
        canvas = np.clip(canvas.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return canvas, labels


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--negatives", required=True, help="folder of plate-free photos for the backgrounds")
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--two-line", action="store_true", help="only two-line plates (countries that have them)")
    ap.add_argument("--countries", default="", help="comma-separated country codes (default: all, or all with "
                    "a two-line layout)")
    ap.add_argument("--plates", type=int, default=2, help="plates per image, at most")
    ap.add_argument("--size", default="1280x720", help="image size WxH")
    ap.add_argument("--widths", default="70,220", help="plate width range in px (the top edge)")
    ap.add_argument("--fonts", action="append", default=[], help="extra font folder (repeatable), as in training")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()

    synth.set_font_dirs(a.fonts)
    width, height = make_small_plate_set.parse_size(a.size)
    widths = [float(w) for w in a.widths.split(",")]
    countries = [c for c in a.countries.split(",") if c] or (synth.two_line_countries() if a.two_line
                                                            else list(synth.COUNTRIES))
    for c in countries:
        if c not in synth.COUNTRIES:
            sys.exit(f"unknown country {c!r} (known: {', '.join(synth.COUNTRIES)})")
        if a.two_line and c not in synth.two_line_countries():
            sys.exit(f"{c} has no two-line layout (those that do: {', '.join(synth.two_line_countries())})")
    negatives = sorted(os.path.join(a.negatives, f) for f in os.listdir(a.negatives)
                       if f.lower().endswith(vigil_data.IMAGE_EXTS))
    if not negatives:
        sys.exit(f"{a.negatives}: no images for the backgrounds")
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)
    plates = 0
    for i in range(a.images):
        background = cv2.imread(negatives[rng.integers(len(negatives))], cv2.IMREAD_COLOR)
        if background is None:
            continue
        n = int(rng.integers(1, max(1, a.plates) + 1))
        img, labels = make_image(rng, make_small_plate_set.cover(background, width, height), countries,
                                 True if a.two_line else False, n, widths)
        if not labels:
            continue
        stem = f"synth-{i:04d}"
        cv2.imwrite(os.path.join(a.out, stem + ".jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 88])
        with open(os.path.join(a.out, stem + ".txt"), "w") as f:
            for x, y, w, h, text in labels:
                f.write(f"{stem}.jpg\t{round(x)}\t{round(y)}\t{round(w)}\t{round(h)}\t{text}\n")
        plates += len(labels)
    print(f"{plates} plates in {a.images} images in {a.out} ({'two-line' if a.two_line else 'one-line'}; "
          f"{', '.join(countries)})")


if __name__ == "__main__":
    main()
