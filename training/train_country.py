#!/usr/bin/python3
"""Trains the country classifier: a small CNN on the colour plate, cut out along its corners as the reader
cuts it (32x128, BGR). It sees what a person uses to tell a plate's country: the EU strip and its letters, the
colours (yellow NL/UK rear plates, red Belgian text, the blue bands of Italian and French plates), the font
and the layout. The recognizer combines its probabilities with the plate formats the read fits
(src/read/country.cpp). Writes models/country.onnx and models/country.json.

  /usr/bin/python3 training/train_country.py \\
      --real ../shared/data/plates-eu-crops:train \\
      --real ../shared/data/openalpr-us=us --real ../shared/data/openalpr-br=br \\
      --real ../shared/data/plates-fr/train=fr --real ../shared/data/detect-ro-dashcam/plates-train.csv:all=ro \\
      --eval ../shared/data/plates-eu-crops:dev --minutes 20
  /usr/bin/python3 training/train_country.py --smoke --out /tmp/country.onnx   # CI: synthetic plates only

--real PATH[:split][=cc]: a labelled set; plate-crop sets (labels.csv) carry each plate's country, other sets
are of one country given after '='. Countries with fewer than --min-count training plates are left out (the
formats alone name them). --eval sets are for measuring only.
"""
import argparse
import json
import math
import os
import sys
import time

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import synth  # noqa: E402
import vigil_data  # noqa: E402
from train_reader import expand_quad, jitter_quad  # noqa: E402

IN_H, IN_W = 32, 128
MARGIN_X, MARGIN_Y = 0.04, 0.10  # the reader's (models/reader.json), so one rectified plate serves both


class CountryNet(nn.Module):
    def __init__(self, n_classes):
        super().__init__()

        def cbr(i, o, s=1):
            return [nn.Conv2d(i, o, 3, stride=s, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

        self.body = nn.Sequential(*cbr(3, 16, 2), *cbr(16, 32, 2), *cbr(32, 48), *cbr(48, 64, 2), *cbr(64, 96, 2),
                                  nn.AvgPool2d(2))  # 32x128 -> 1x4: where on the plate still counts
        self.head = nn.Linear(96 * 4, n_classes)

    def forward(self, x):
        return self.head(torch.flatten(self.body(x), 1))  # logits


def rectify(img, quad):
    q = expand_quad(np.float32(quad), MARGIN_X, MARGIN_Y)
    dst = np.float32([[0, 0], [IN_W, 0], [IN_W, IN_H], [0, IN_H]])
    return cv2.warpPerspective(img, cv2.getPerspectiveTransform(q, dst), (IN_W, IN_H), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)


def load_plates(specs, default_split="train"):
    """[(bgr context crop, quad, country)] from --real/--eval specs PATH[:split][=cc]."""
    out = []
    for spec in specs:
        spec, _, fixed = spec.partition("=")
        path, _, split = spec.partition(":")
        for s in vigil_data.load_dataset(path, split or default_split):
            img = cv2.imread(s.path, cv2.IMREAD_COLOR)
            if img is None:
                continue
            for p in s.boxes_px(img.shape[1], img.shape[0]):
                country = fixed or p.country
                if not country or p.w < 8 or p.h < 4:
                    continue
                x0, y0 = max(0, int(p.x - p.w * 0.3)), max(0, int(p.y - p.h * 0.5))
                x1, y1 = min(img.shape[1], int(p.x + p.w * 1.3)), min(img.shape[0], int(p.y + p.h * 1.5))
                crop = img[y0:y1, x0:x1]
                f = min(1.0, 256.0 / p.w)
                if f < 1.0:
                    crop = cv2.resize(crop, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
                quad = (np.float32([[p.x, p.y], [p.x + p.w, p.y], [p.x + p.w, p.y + p.h], [p.x, p.y + p.h]])
                        - [x0, y0]) * f
                out.append((crop, quad, "gb" if country == "uk" else country))
    return out


def augment(rng, crop, quad):
    q = jitter_quad(quad, rng, rng.uniform(0.2, 1.0))
    img = rectify(crop, q).astype(np.float32)
    if rng.random() < 0.3:  # small and far: lose detail
        s = rng.uniform(0.3, 0.7)
        img = cv2.resize(cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA), (IN_W, IN_H))
    img = img * rng.uniform(0.5, 1.4) + rng.uniform(-40, 40)  # exposure
    img = img * rng.uniform(0.85, 1.15, size=3)  # white balance: colours shift, they do not swap
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (3, 3), rng.uniform(0.3, 1.2))
    img = img + rng.normal(0, rng.uniform(0, 8), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def synthetic_plates(rng, n, countries):
    """Rendered plates (training/synth.py) of the given countries, for the CI smoke run."""
    out = []
    for i in range(n):
        c = countries[i % len(countries)]
        plate, _, _ = synth.render_plate(rng, c)
        h, w = plate.shape[:2]
        out.append((plate, np.float32([[0, 0], [w, 0], [w, h], [0, h]]), c))
    return out


def to_tensor(batch):
    x = torch.from_numpy(np.stack(batch).astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    return (x - 0.5) / 0.5


def evaluate(model, plates, classes):
    """Share of plates whose country is the classifier's first choice (plates of a country it does not know
    count as wrong), on the labelled corners with no jitter."""
    if not plates:
        return 0.0
    model.eval()
    with torch.no_grad():
        x = to_tensor([rectify(c, q) for c, q, _ in plates])
        pred = model(x).argmax(1).numpy()
    model.train()
    return float(np.mean([classes[k] == t for k, (_, _, t) in zip(pred, plates)]))


def export(model, classes, out_path, meta):
    model = model.cpu().eval()
    dummy = torch.zeros(1, 3, IN_H, IN_W)
    torch.onnx.export(model, dummy, out_path, opset_version=11, input_names=["plate"], output_names=["logits"])
    net = cv2.dnn.readNetFromONNX(out_path)  # the runtime that will run it
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (2, 3, IN_H, IN_W)).astype(np.float32)
    net.setInput(x)
    diff = float(np.abs(net.forward() - model(torch.from_numpy(x)).detach().numpy()).max())
    if diff > 1e-3:
        raise SystemExit(f"export: OpenCV's output differs from torch's by {diff}")
    side = {"name": "vigil-country", "version": "1", "input_width": IN_W, "input_height": IN_H,
            "channels": "bgr", "scale": 1 / 255.0, "mean": 0.5, "std": 0.5, "margin_x": MARGIN_X,
            "margin_y": MARGIN_Y, "output": "logits", "classes": classes, "training": meta}
    with open(os.path.splitext(out_path)[0] + ".json", "w") as f:
        json.dump(side, f, indent=2)
        f.write("\n")
    return diff


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", action="append", default=[], help="PATH[:split][=country], repeatable")
    ap.add_argument("--eval", action="append", default=[], help="held-out PATH[:split][=country]")
    ap.add_argument("--min-count", type=int, default=6, help="fewest training plates a country needs")
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "models", "country.onnx"))
    ap.add_argument("--smoke", action="store_true", help="CI: synthetic plates of three countries, seconds")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)

    if a.smoke:
        train = synthetic_plates(rng, 60, ["cz", "de", "nl"])
        evals = {"synthetic": synthetic_plates(np.random.default_rng(7), 30, ["cz", "de", "nl"])}
        a.minutes = min(a.minutes, 0.3)
    else:
        train = load_plates(a.real)
        evals = {e: load_plates([e], "all") for e in a.eval}
    counts = {}
    for _, _, c in train:
        counts[c] = counts.get(c, 0) + 1
    classes = sorted(c for c, n in counts.items() if n >= (2 if a.smoke else a.min_count))
    train = [t for t in train if t[2] in classes]
    by_class = [[i for i, t in enumerate(train) if t[2] == c] for c in classes]
    print(f"{len(train)} training plates, {len(classes)} countries: "
          + ", ".join(f"{c}={len(b)}" for c, b in zip(classes, by_class))
          + "; eval: " + ", ".join(f"{k}={len(v)}" for k, v in evals.items()), flush=True)

    model = CountryNet(len(classes))
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-3)
    w = np.sqrt([len(b) for b in by_class])  # rarer countries drawn more often than their share
    w = w / w.sum()
    budget, t0, step, seen = a.minutes * 60, time.time(), 0, 0
    while time.time() - t0 < budget:
        progress = (time.time() - t0) / budget
        for g in opt.param_groups:
            g["lr"] = a.lr * 0.5 * (1 + math.cos(math.pi * progress)) * min(1.0, (step + 1) / 100)
        ks = rng.choice(len(classes), size=a.batch, p=w)
        items = [train[by_class[k][rng.integers(len(by_class[k]))]] for k in ks]
        x = to_tensor([augment(rng, c, q) for c, q, _ in items])
        loss = F.cross_entropy(model(x), torch.from_numpy(ks), label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        seen += a.batch
        if step % 100 == 0:
            print(f"step {step} {(time.time() - t0) / 60:.1f}/{a.minutes} min loss {loss.item():.3f} "
                  f"{seen / (time.time() - t0):.0f} samples/s", flush=True)
    accs = {k: evaluate(model, v, classes) for k, v in evals.items()}
    print(f"eval (classifier alone): {accs}", flush=True)
    meta = {"steps": step, "samples": seen, "minutes": round((time.time() - t0) / 60, 1), "batch": a.batch,
            "lr": a.lr, "seed": a.seed, "real": [os.path.basename(os.path.normpath(r.split(":")[0])) for r in a.real],
            "train_plates": {c: len(b) for c, b in zip(classes, by_class)},
            "held_out_top1_classifier_alone": accs, "torch": torch.__version__,
            "params": sum(p.numel() for p in model.parameters())}
    diff = export(model, classes, a.out, meta)
    print(f"exported {a.out} (opencv diff {diff:.2e})", flush=True)


if __name__ == "__main__":
    main()
