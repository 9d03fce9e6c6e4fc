#!/usr/bin/python3
"""A part of labelled sets, picked by file name or by how dark the pictures are, for `vigil bench`.

The issue asks for plates found "day and night"; the real sets mix both. This keeps the images of any
importer format (vigil_data.load_dataset) whose file name holds --name-contains, and/or whose mean grey
level (0-255) is below --darker-than or at least --brighter-than, and writes their labels in the OpenALPR
benchmark format that `vigil bench` reads (NAME.txt beside a link NAME.ext to the original picture; plates
without text keep their box and are counted for detection only).

  /usr/bin/python3 training/make_subset.py ../shared/data/detect-ro-dashcam/valid --name-contains night \\
      --out /tmp/ro-night
  /usr/bin/python3 training/make_subset.py ../shared/data/detect-es-uc3m/labels/val --darker-than 40 \\
      --out /tmp/es-dark
  build/apps/vigil/vigil bench /tmp/ro-night /tmp/es-dark
"""
import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vigil_data  # noqa: E402


def make_subset(specs, out, name_contains="", darker_than=None, brighter_than=None):
    """Writes the picked images of the datasets `specs` (PATH[:split]) into `out`; returns
    (images, plates) written."""
    os.makedirs(out, exist_ok=True)
    n_img = n_plates = 0
    for d, spec in enumerate(specs):
        path, _, split = spec.partition(":")
        for s in vigil_data.load_dataset(path, split or "all"):
            if name_contains and name_contains not in os.path.basename(s.path):
                continue
            img = cv2.imread(s.path, cv2.IMREAD_GRAYSCALE)
            if img is None:
                print(f"skipped {s.path}: does not decode", file=sys.stderr)
                continue
            grey = float(np.mean(img))
            if darker_than is not None and grey >= darker_than:
                continue
            if brighter_than is not None and grey < brighter_than:
                continue
            plates = s.boxes_px(img.shape[1], img.shape[0])
            if not plates:
                continue
            base, ext = os.path.splitext(os.path.basename(s.path))
            name = f"{d}-{base}"  # sets may share file names
            link = os.path.join(out, name + ext.lower())
            if os.path.lexists(link):
                os.remove(link)
            os.symlink(os.path.abspath(s.path), link)
            with open(os.path.join(out, name + ".txt"), "w") as f:
                for p in plates:
                    fields = [os.path.basename(link)] + [str(round(v)) for v in (p.x, p.y, p.w, p.h)]
                    text = vigil_data.normalize_plate(p.text)
                    f.write("\t".join(fields + ([text] if text else [])) + "\n")
            n_img += 1
            n_plates += len(plates)
    return n_img, n_plates


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("datasets", nargs="+", help="labelled sets, PATH[:all|train|test]")
    ap.add_argument("--name-contains", default="", help="keep images whose file name holds this")
    ap.add_argument("--darker-than", type=float, help="keep images whose mean grey level is below this")
    ap.add_argument("--brighter-than", type=float, help="keep images whose mean grey level is at least this")
    ap.add_argument("--out", required=True, help="output folder (created)")
    a = ap.parse_args()
    if not (a.name_contains or a.darker_than is not None or a.brighter_than is not None):
        ap.error("pick by --name-contains, --darker-than or --brighter-than")
    n_img, n_plates = make_subset(a.datasets, a.out, a.name_contains, a.darker_than, a.brighter_than)
    print(f"{n_plates} plates in {n_img} images in {a.out}")
    if n_img == 0:
        sys.exit("no image matched: check the datasets and the criteria")


if __name__ == "__main__":
    main()
