#!/usr/bin/python3
"""A tilted copy of a labelled set: every image turned in its own plane, as by a camera mounted askew.

The issue's target is plates "tilted up to +-30 degrees"; the real sets here are mostly level. This turns each
image of any importer format (vigil_data.load_dataset) by +ANGLE or -ANGLE (alternating, so both directions
count the same) about the middle of its plates, in a frame of the same size (plates keep their size in
pixels; the uncovered corners repeat the edge pixels), and writes it with its plates in the OpenALPR benchmark format that `vigil bench`
reads: NAME.jpg and NAME.txt, one line per plate with the box around its turned corners and its text.

  /usr/bin/python3 training/make_tilted_set.py ../shared/data/openalpr-us:test --angle 30 --out /tmp/us-30
  build/apps/vigil/vigil bench /tmp/us-30

A labelled box that was tight around a level plate turns into the box around the turned plate, so the usual
IoU 0.5 still applies. Plates without text are left out of the labels (the set is for end-to-end reads).
"""
import argparse
import math
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigil_data  # noqa: E402


def turn(img, angle, centre):
    """(turned image, 2x3 matrix from the original's pixels to the turned image's) for a turn of `angle` degrees
    counter-clockwise about `centre`, in a frame of the original's size (a camera turned about its view of the
    plates; the uncovered corners repeat the edge pixels)."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, 1.0)
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, m


def turned_box(plate, m):
    """The axis-aligned box (x, y, w, h) around a plate box's four corners under the 2x3 matrix `m`."""
    c = np.array([[plate.x, plate.y], [plate.x + plate.w, plate.y], [plate.x + plate.w, plate.y + plate.h],
                  [plate.x, plate.y + plate.h]], np.float64)
    t = c @ m[:, :2].T + m[:, 2]
    x0, y0 = t.min(0)
    x1, y1 = t.max(0)
    return x0, y0, x1 - x0, y1 - y0


def make_set(spec, angle, out, limit=0):
    """Writes the tilted copy of dataset `spec` (PATH[:split]) into `out`; returns (images, plates) written."""
    path, _, split = spec.partition(":")
    samples = vigil_data.load_dataset(path, split or "all")
    if limit:
        samples = samples[:limit]
    os.makedirs(out, exist_ok=True)
    n_img = n_plates = 0
    for k, s in enumerate(samples):
        img = cv2.imread(s.path, cv2.IMREAD_COLOR)
        if img is None:
            print(f"skipped {s.path}: does not decode", file=sys.stderr)
            continue
        plates = [p for p in s.boxes_px(img.shape[1], img.shape[0]) if vigil_data.normalize_plate(p.text)]
        if not plates:
            continue
        centre = np.mean([[p.x + p.w / 2, p.y + p.h / 2] for p in plates], axis=0)
        a = angle if k % 2 == 0 else -angle
        turned, m = turn(img, a, centre)
        name = f"tilt-{k:04d}"
        lines = []
        for p in plates:
            text = vigil_data.normalize_plate(p.text)
            x, y, w, h = turned_box(p, m)
            if x < 0 or y < 0 or x + w > img.shape[1] or y + h > img.shape[0]:
                print(f"{s.path}: {text} leaves the frame turned by {a:g} degrees; left out", file=sys.stderr)
                continue
            lines.append(f"{name}.jpg\t{round(x)}\t{round(y)}\t{round(w)}\t{round(h)}\t{text}\n")
        if not lines:
            continue
        cv2.imwrite(os.path.join(out, name + ".jpg"), turned, [cv2.IMWRITE_JPEG_QUALITY, 95])
        with open(os.path.join(out, name + ".txt"), "w") as f:
            f.writelines(lines)
        n_img += 1
        n_plates += len(lines)
    return n_img, n_plates


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", help="labelled set with plate text, PATH[:all|train|test]")
    ap.add_argument("--angle", type=float, required=True, help="turn in degrees (images alternate + and -)")
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--limit", type=int, default=0, help="at most this many images (0: all)")
    a = ap.parse_args()
    n_img, n_plates = make_set(a.dataset, a.angle, a.out, a.limit)
    print(f"{n_plates} plates in {n_img} images turned by +-{a.angle:g} degrees in {a.out}")


if __name__ == "__main__":
    main()
