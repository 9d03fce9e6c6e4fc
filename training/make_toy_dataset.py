#!/usr/bin/python3
"""Writes a tiny labelled dataset of synthetic plates on noisy backgrounds, in the OpenALPR benchmark
format (NAME.jpg + NAME.txt), plus a folder of plate-free images. For smoke tests and examples, so the
training recipes can run without any real data.

  /usr/bin/python3 training/make_toy_dataset.py OUT_DIR [--n 12] [--seed 0]
"""
import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import synth  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    plates_dir, neg_dir = os.path.join(a.out, "plates"), os.path.join(a.out, "negatives")
    os.makedirs(plates_dir, exist_ok=True)
    os.makedirs(neg_dir, exist_ok=True)
    for i in range(a.n):
        h, w = 360, 640
        img = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 6)
        neg = img.copy()
        plate, text, _ = synth.render_plate(rng)
        pw = int(rng.integers(90, 200))
        ph = max(8, int(plate.shape[0] * pw / plate.shape[1]))
        x, y = int(rng.integers(0, w - pw)), int(rng.integers(0, h - ph))
        img[y:y + ph, x:x + pw] = cv2.resize(cv2.cvtColor(plate, cv2.COLOR_RGB2BGR), (pw, ph))
        name = f"toy{i:03d}"
        cv2.imwrite(os.path.join(plates_dir, name + ".jpg"), img)
        with open(os.path.join(plates_dir, name + ".txt"), "w") as f:
            f.write(f"{name}.jpg\t{x}\t{y}\t{pw}\t{ph}\t{text}\n")
        cv2.imwrite(os.path.join(neg_dir, f"neg{i:03d}.jpg"), neg)
    print(f"{a.n} images in {plates_dir}, {a.n} negatives in {neg_dir}")


if __name__ == "__main__":
    main()
