#!/usr/bin/python3
"""Trains, exports and evaluates the Vigil plate detector (models/detector.onnx + detector.json).

Run with Debian's torch:  /usr/bin/python3 training/train_detector.py ...

Reproduce the shipped model (train parts only; the held-out parts are only evaluated):
  /usr/bin/python3 training/train_detector.py --data-root /work/shared/data --minutes 75 \\
      --out models/detector.onnx          # add --resume to continue from training/runs/detector/last.pt
Evaluate an exported model (cv2.dnn, the C++ pre/post-processing) on the held-out parts:
  /usr/bin/python3 training/train_detector.py --data-root /work/shared/data --eval-only --out models/detector.onnx
On a GPU machine without the datasets (see train_reader.py): --save-pack FILE writes the cached training
images and negatives (JPEG, --pack-quality) and exits; --from-pack FILE --workers N --no-eval --init CKPT
trains from it with N processes making crops; bring back RUN_DIR/last.pt and export it here with
--export-checkpoint RUN_DIR/last.pt --eval-only (the export is checked against this machine's OpenCV).
CI smoke test (about a minute, still writes a valid ONNX):
  /usr/bin/python3 training/train_detector.py --data-root /work/shared/data --smoke --out /tmp/det.onnx

--data-root DIR uses these sets under DIR (same layout as /work/shared/data):
  train: detect-es-uc3m#/train/  detect-ro-dashcam/train  plates-fr/train  openalpr-us#train  openalpr-br#train
  test:  detect-es-uc3m#/val/    detect-ro-dashcam/valid  plates-fr/test   openalpr-us#test   openalpr-br#test
  negatives: DIR/negatives (plate-free photos used as backgrounds for the synthetic plates)
or give them explicitly with --train-set / --test-set / --negatives. A set is PATH[#SEL] where SEL is
'train' or 'test' (the seeded hash split of vigil_data, --test-fraction, --split-seed), or a substring
that the image path must contain (e.g. '/train/'); without #SEL the whole folder is used.
"""
import argparse
import json
import math
import os
import shutil
import sys
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx_init  # noqa: E402
import packs  # noqa: E402
import vigil_data  # noqa: E402
from det_model import CORNER_SCALE, STRIDE, PlateDetector, count_params, export_onnx  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RUN_DIR = os.path.join(HERE, "runs", "detector")

DEFAULT_TRAIN = ["detect-es-uc3m#/train/", "detect-ro-dashcam/train", "plates-fr/train",
                 "openalpr-us#train", "openalpr-br#train"]
DEFAULT_TEST = ["detect-es-uc3m#/val/", "detect-ro-dashcam/valid", "plates-fr/test",
                "openalpr-us#test", "openalpr-br#test"]
# sets whose plates are small in a 512 input: also evaluated with a second, 1024 pass
HIRES_SETS = ("detect-ro-dashcam", "openalpr-us")

MODEL_KW = dict(widths=(12, 16, 32, 64, 96), fpn=24, head=24, stem_extra=False)
CACHE_LONG_SIDE = 1024


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


# ----------------------------------------------------------------------------------------------- data
def parse_set(spec, args):
    path, _, sel = spec.partition("#")
    if args.data_root and not os.path.isabs(path):
        path = os.path.join(args.data_root, path)
    split = sel if sel in ("train", "test") else "all"
    samples = vigil_data.load_dataset(path, split, args.test_fraction, args.split_seed)
    if sel and sel not in ("train", "test"):
        samples = [s for s in samples if sel in s.path]
    return path, samples


def set_name(spec):
    path, _, sel = spec.partition("#")
    name = path.rstrip("/").replace(os.sep, "/")
    name = "/".join(name.split("/")[-2:]) if os.path.basename(name) in ("train", "valid", "test", "val") else os.path.basename(name)
    return f"{name}#{sel}" if sel else name


def load_image_boxes(s):
    """-> (BGR image, float array N x 4 of x0, y0, x1, y1 in pixels) or None when the image does not decode."""
    img = cv2.imread(s.path, cv2.IMREAD_COLOR)
    if img is None:
        return None
    h, w = img.shape[:2]
    boxes = np.array([[p.x, p.y, p.x + p.w, p.y + p.h] for p in s.boxes_px(w, h)], np.float32).reshape(-1, 4)
    return img, boxes


class RealImages:
    """Training images cached in memory, long side at most CACHE_LONG_SIDE, as RGB."""

    def __init__(self, sets, limit=None):
        self.items = []  # (set index, rgb, boxes)
        self.names = []
        self.stats = {}
        for si, (name, samples) in enumerate(sets):
            self.names.append(name)
            n_img = n_pl = 0
            for s in samples[:limit]:
                r = load_image_boxes(s)
                if r is None:
                    log(f"warning: {s.path} does not decode; skipped")
                    continue
                img, boxes = r
                h, w = img.shape[:2]
                sc = min(1.0, CACHE_LONG_SIDE / max(h, w))
                if sc < 1.0:
                    img = cv2.resize(img, (round(w * sc), round(h * sc)), interpolation=cv2.INTER_AREA)
                    boxes = boxes * sc
                self.items.append((si, np.ascontiguousarray(img[:, :, ::-1]), boxes))
                n_img += 1
                n_pl += len(boxes)
            self.stats[name] = {"images": n_img, "plates": n_pl}
        self.by_set = [[i for i, it in enumerate(self.items) if it[0] == si] for si in range(len(sets))]
        # sample sets roughly by sqrt(size) so the 1580-image Spanish set does not drown the others
        sizes = np.array([max(len(b), 1) for b in self.by_set], np.float64)
        wts = np.sqrt(sizes) * (sizes > 0)
        self.set_p = wts / wts.sum()


def save_pack(path, real, negs, quality, long_side=0, min_plate_w=100, max_images=0, max_negatives=0):
    """The cached training images and negatives in one file, small enough to carry to another machine:
    JPEG at `quality`; images shrunk to `long_side` unless that makes a plate narrower than `min_plate_w`;
    at most `max_images` evenly spaced images of each set (the sets keep their sampling weights)."""
    enc = lambda rgb: packs.encode_jpeg(rgb[:, :, ::-1], quality)
    items, by_set = [], []
    for idx in real.by_set:
        keep = idx if not max_images or len(idx) <= max_images else \
            [idx[int(i)] for i in np.linspace(0, len(idx) - 1, max_images)]
        by_set.append(list(range(len(items), len(items) + len(keep))))
        for i in keep:
            si, img, boxes = real.items[i]
            sc = 1.0
            if long_side and max(img.shape[:2]) > long_side:
                sc = long_side / max(img.shape[:2])
                if len(boxes):
                    sc = max(sc, min_plate_w / max(1.0, float((boxes[:, 2] - boxes[:, 0]).min())))
            if sc < 1.0:
                img = cv2.resize(img, (round(img.shape[1] * sc), round(img.shape[0] * sc)),
                                 interpolation=cv2.INTER_AREA)
                boxes = boxes * sc
            items.append((si, enc(img), boxes))
    shrink = lambda im: im if not long_side or max(im.shape[:2]) <= long_side else cv2.resize(
        im, None, fx=long_side / max(im.shape[:2]), fy=long_side / max(im.shape[:2]), interpolation=cv2.INTER_AREA)
    neg = negs if not max_negatives or len(negs) <= max_negatives else \
        [negs[int(i)] for i in np.linspace(0, len(negs) - 1, max_negatives)]
    packs.write_pack(path, "detector", {"names": real.names, "stats": real.stats, "set_p": real.set_p,
                                         "by_set": by_set, "items": items, "negatives": [enc(shrink(n)) for n in neg]})


def load_pack(path):
    """-> (RealImages, negatives) as save_pack wrote them."""
    pack = packs.read_pack(path, "detector")
    dec = lambda b: np.ascontiguousarray(packs.decode_image(b)[:, :, ::-1])
    real = RealImages([])
    real.names, real.stats, real.set_p, real.by_set = pack["names"], pack["stats"], pack["set_p"], pack["by_set"]
    real.items = [(si, dec(b), boxes) for si, b, boxes in pack["items"]]
    return real, [dec(b) for b in pack["negatives"]]


class BatchStream(torch.utils.data.IterableDataset):
    """Endless collated batches made in DataLoader worker processes, each with its own Sampler."""

    def __init__(self, real, negs, seed, batch, crop, synth_p, real_corner_w, tilt=(0.25, 30.0)):
        super().__init__()
        self.args = (real, negs, seed, batch, crop, synth_p, real_corner_w, tilt)

    def __iter__(self):
        real, negs, seed, batch, crop, synth_p, real_corner_w, tilt = self.args
        sampler = Sampler(real, negs, packs.worker_rng(seed), size=crop, synth_p=synth_p, tilt=tilt)
        while True:
            items = [sampler.sample() for _ in range(batch)]
            t = collate([(img, plates) for img, plates, _ in items], crop, real_corner_w)
            t["n_syn"] = torch.tensor(sum(syn for _, _, syn in items))
            yield t


def load_negatives(folder, limit=None):
    out = []
    if not folder or not os.path.isdir(folder):
        return out
    for fn in sorted(os.listdir(folder))[:limit]:
        if not fn.lower().endswith((".jpg", ".jpeg", ".png")):
            continue
        img = cv2.imread(os.path.join(folder, fn), cv2.IMREAD_COLOR)
        if img is None or min(img.shape[:2]) < 64:
            continue
        h, w = img.shape[:2]
        sc = min(1.0, 800 / max(h, w))
        if sc < 1.0:
            img = cv2.resize(img, (round(w * sc), round(h * sc)), interpolation=cv2.INTER_AREA)
        out.append(np.ascontiguousarray(img[:, :, ::-1]))
    return out


def box_corners(b):
    x0, y0, x1, y1 = b
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


class Sampler:
    """Makes S x S training crops: (rgb uint8, list of (4x2 corners, is_synthetic))."""

    def __init__(self, real, negatives, rng, size=320, synth_p=0.35, tilt=(0.25, 30.0)):
        self.real, self.neg, self.rng, self.S, self.synth_p = real, negatives, rng, size, synth_p
        self.p_tilt, self.max_tilt = tilt  # share of real crops turned, by up to +-max_tilt degrees
        try:
            import synth
            self.render = synth.render_plate
            self.plate_quad = synth.plate_quad
        except Exception as e:  # pragma: no cover
            log(f"warning: synth.py unavailable ({e}); no synthetic plates")
            self.render = None
        if not self.neg:
            self.synth_p = 0.0 if self.render is None else self.synth_p
        if self.render is None:
            self.synth_p = 0.0

    def sample(self):
        syn = self.rng.random() < self.synth_p
        img, plates = self.synthetic() if syn else self.real_crop()
        img = self.photometric(img)
        return img, plates, syn

    # real image, random scale so plates span ~12..250 px, or the deployed 512-long-side view
    def real_crop(self):
        rng, S = self.rng, self.S
        si = rng.choice(len(self.real.set_p), p=self.real.set_p)
        _, img, boxes = self.real.items[self.real.by_set[si][rng.integers(len(self.real.by_set[si]))]]
        h, w = img.shape[:2]
        mode = rng.random()
        if mode < 0.3 or len(boxes) == 0:
            s = 512.0 / max(h, w) * math.exp(rng.uniform(math.log(0.7), math.log(2.2)))
        else:
            b = boxes[rng.integers(len(boxes))]
            bw = max(b[2] - b[0], 2.0)
            s = math.exp(rng.uniform(math.log(12), math.log(250))) / bw
        s = float(np.clip(s, 0.05, 6.0))
        sx, sy = s * rng.uniform(0.9, 1.1), s * rng.uniform(0.9, 1.1)
        if len(boxes) and rng.random() < 0.85:
            b = boxes[rng.integers(len(boxes))]
            cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
            px, py = rng.uniform(0.1, 0.9) * S, rng.uniform(0.1, 0.9) * S
        else:
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            px, py = rng.uniform(0, S), rng.uniform(0, S)
        # keep the crop inside the scaled image where it is big enough; else image at top-left and the
        # zero padding right/bottom, as the deployed pre-processing does
        tx, ty = px - sx * cx, py - sy * cy
        tx = min(0.0, max(tx, S - sx * w)) if sx * w >= S else (0.0 if rng.random() < 0.7 else min(0.0, max(tx, S - sx * w)))
        ty = min(0.0, max(ty, S - sy * h)) if sy * h >= S else (0.0 if rng.random() < 0.7 else min(0.0, max(ty, S - sy * h)))
        px, py = tx + sx * cx, ty + sy * cy
        M = np.array([[sx, 0, px - sx * cx], [0, sy, py - sy * cy]], np.float32)
        if rng.random() < self.p_tilt:  # a tilted camera or plate: turn the view about the plate's spot
            R = cv2.getRotationMatrix2D((float(px), float(py)), float(rng.uniform(-self.max_tilt, self.max_tilt)), 1.0)
            M = (R @ np.vstack([M, [0, 0, 1]])).astype(np.float32)
        interp = cv2.INTER_AREA if s < 0.7 else cv2.INTER_LINEAR
        if s < 0.5:  # INTER_AREA is not used by warpAffine: pre-blur to avoid aliasing
            k = int(1 / s) | 1
            img = cv2.GaussianBlur(img, (k, k), 0.4 / s)
            interp = cv2.INTER_LINEAR
        out = cv2.warpAffine(img, M, (S, S), flags=interp, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        plates = []
        for b in boxes:
            c = box_corners(b) @ M[:, :2].T + M[:, 2]
            plates.append((c.astype(np.float32), False))
        return out, plates

    def synthetic(self):
        rng, S = self.rng, self.S
        bg = self.neg[rng.integers(len(self.neg))]
        h, w = bg.shape[:2]
        s = S / min(h, w) * rng.uniform(1.0, 2.5)
        cx, cy = rng.uniform(S / 2 / s, max(S / 2 / s, w - S / 2 / s)), rng.uniform(S / 2 / s, max(S / 2 / s, h - S / 2 / s))
        M = np.array([[s, 0, S / 2 - s * cx], [0, s, S / 2 - s * cy]], np.float32)
        out = cv2.warpAffine(bg, M, (S, S), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        out = out.astype(np.float32)
        plates, taken = [], []
        n = rng.choice([1, 1, 2, 2, 3])
        for _ in range(n):
            pimg, _, _ = self.render(rng)
            ph, pw = pimg.shape[:2]
            tw = math.exp(rng.uniform(math.log(14), math.log(230)))
            q = self.plate_quad(rng, pw, ph, tw)
            for _try in range(10):
                c = q + np.array([rng.uniform(0.05, 0.95) * S, rng.uniform(0.05, 0.95) * S], np.float32)
                bb = np.array([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()])
                if all(iou(bb, t) < 0.01 for t in taken):
                    break
            else:
                continue
            taken.append(bb)
            src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
            grow = c + (c - c.mean(0)) * rng.uniform(0.15, 1.2) if rng.random() < 0.5 else None
            allp = c if grow is None else np.vstack([c, grow])
            rx0, ry0 = max(0, int(allp[:, 0].min()) - 1), max(0, int(allp[:, 1].min()) - 1)
            rx1, ry1 = min(S, int(allp[:, 0].max()) + 2), min(S, int(allp[:, 1].max()) + 2)
            if rx1 - rx0 < 2 or ry1 - ry0 < 2:
                continue
            rw, rh = rx1 - rx0, ry1 - ry0
            o = np.array([rx0, ry0], np.float32)
            H = cv2.getPerspectiveTransform(src, c - o)
            # plate colour/light: shade, tint, optional shadow gradient, pre-blur for small plates
            gain = rng.uniform(0.45, 1.15) * rng.uniform(0.85, 1.15, size=3)
            pf = pimg
            if tw < pw * 0.5:
                pf = cv2.GaussianBlur(pf, (0, 0), 0.35 * pw / tw)
            warped = cv2.warpPerspective(pf, H, (rw, rh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            warped = warped.astype(np.float32) * gain[None, None, :].astype(np.float32)
            if rng.random() < 0.3:
                g = np.linspace(rng.uniform(0.4, 1.0), rng.uniform(0.4, 1.0), rw, dtype=np.float32)
                warped *= g[None, :, None]
            mask = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), H, (rw, rh), flags=cv2.INTER_LINEAR)
            m3 = (mask.astype(np.float32) / 255.0)[:, :, None]
            roi = out[ry0:ry1, rx0:rx1]
            if grow is not None:  # car body / frame around the plate
                body = np.zeros((rh, rw), np.uint8)
                cv2.fillConvexPoly(body, np.round(grow - o).astype(np.int32), 1)
                bm = body.astype(np.float32)[:, :, None]
                col = rng.uniform(0, 255, size=3).astype(np.float32)
                roi = roi * (1 - bm) + col[None, None, :] * bm
            out[ry0:ry1, rx0:rx1] = roi * (1 - m3) + warped * m3
            plates.append((c, True))
        return np.clip(out, 0, 255).astype(np.uint8), plates

    def photometric(self, img):
        rng = self.rng
        x = np.arange(256, dtype=np.float32)
        if rng.random() < 0.15:  # night
            base = 255.0 * ((x * rng.uniform(0.12, 0.45)) / 255.0) ** rng.uniform(1.0, 1.6)
        else:
            base = (x * rng.uniform(0.6, 1.35) + rng.uniform(-30, 30) - 128) * rng.uniform(0.7, 1.3) + 128
            if rng.random() < 0.3:
                base = 255.0 * (np.clip(base, 0, 255) / 255.0) ** rng.uniform(0.7, 1.4)
        tint = rng.uniform(0.92, 1.08, size=3)
        lut = np.clip(base[:, None] * tint[None, :], 0, 255).astype(np.uint8)[None]  # 1 x 256 x 3
        out = cv2.LUT(img, lut)
        if rng.random() < 0.1:
            out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        r = rng.random()
        if r < 0.15:
            out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
        elif r < 0.22:
            k = int(rng.integers(3, 8))
            ker = np.zeros((k, k), np.float32)
            ker[k // 2, :] = 1.0 / k
            if rng.random() < 0.5:
                ker = ker.T
            out = cv2.filter2D(out, -1, ker)
        if rng.random() < 0.3:
            noise = np.empty(out.shape, np.int16)
            cv2.randn(noise, 0, float(rng.uniform(2, 12)))
            out = np.clip(out.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        if rng.random() < 0.25:
            ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 85))])
            out = cv2.imdecode(enc, cv2.IMREAD_UNCHANGED)
        return out


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / u if u > 0 else 0.0


def make_targets(plates, S, real_corner_w):
    """Heatmap (1 x h x w), ignore mask, and per-object index / offset / corners / weights."""
    h = w = S // STRIDE
    hm = np.zeros((h, w), np.float32)
    ign = np.zeros((h, w), np.float32)
    objs = []
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    for c, is_syn in plates:
        x0, y0 = c[:, 0].min(), c[:, 1].min()
        x1, y1 = c[:, 0].max(), c[:, 1].max()
        bw, bh = x1 - x0, y1 - y0
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        gx, gy = cx / STRIDE, cy / STRIDE
        ix, iy = int(math.floor(gx)), int(math.floor(gy))
        if not (0 <= ix < w and 0 <= iy < h):
            continue
        if bw < 8 or bh < 3:  # too small to learn: neither positive nor negative
            a, b = max(0, int(x0 / STRIDE) - 1), max(0, int(y0 / STRIDE) - 1)
            ign[b:int(y1 / STRIDE) + 2, a:int(x1 / STRIDE) + 2] = 1
            continue
        sx = max(0.6, 0.1 * bw / STRIDE)
        sy = max(0.6, 0.1 * bh / STRIDE)
        g = np.exp(-((xs - ix) ** 2) / (2 * sx * sx) - ((ys - iy) ** 2) / (2 * sy * sy))
        np.maximum(hm, g, out=hm)
        hm[iy, ix] = 1.0
        cor = ((c - np.array([cx, cy], np.float32)) / CORNER_SCALE).reshape(-1)
        objs.append((iy * w + ix, gx - ix, gy - iy, cor, 1.0 if is_syn else real_corner_w))
    ign[hm >= 1.0] = 0
    return hm, ign, objs


def lineage(st):
    """What a training state has seen, for the sidecar: totals over the base run and this run, and a fine-tune
    on top of a base run apart (it may have run on other hardware)."""
    ft = st.get("fine_tune")
    base = (ft or {}).get("base", {})
    out = {"samples_seen": base.get("samples", 0) + st["samples"], "steps": base.get("steps", 0) + st["step"],
           "real_crops": base.get("real", 0) + st["real"],
           "synthetic_crops": base.get("synthetic", 0) + st["synthetic"],
           "minutes": base.get("minutes", round(st["elapsed"] / 60, 1))}
    if ft:
        out["fine_tune"] = {"from": ft["fine_tuned_from"], "trained_on": ft["trained_on"],
                            "torch": ft["trained_with_torch"], "samples": st["samples"], "steps": st["step"],
                            "minutes": round(st["elapsed"] / 60, 1)}
        for k in ("lr", "tilt_share", "max_tilt", "earlier"):
            if k in ft:
                out["fine_tune"][k] = ft[k]
    return out


def onnx_calibration(real, negs, a, n=32):
    """A batch of training crops (N x 3 x S x S, RGB / 255) to set a model's BatchNorms on (onnx_init)."""
    sampler = Sampler(real, negs, np.random.default_rng(a.seed), size=a.crop, synth_p=a.synth_p,
                      tilt=(a.tilt_share, a.max_tilt))
    x = np.stack([sampler.sample()[0] for _ in range(n)]).astype(np.float32) / 255.0
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


def collate(batch, S, real_corner_w):
    B = len(batch)
    imgs = np.stack([b[0] for b in batch]).astype(np.float32) / 255.0
    hms, igns, idx, off, cor, cw, bi = [], [], [], [], [], [], []
    for i, (_, plates) in enumerate(batch):
        hm, ign, objs = make_targets(plates, S, real_corner_w)
        hms.append(hm)
        igns.append(ign)
        for o in objs:
            bi.append(i)
            idx.append(o[0])
            off.append([o[1], o[2]])
            cor.append(o[3])
            cw.append(o[4])
    t = {
        "img": torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous(),
        "hm": torch.from_numpy(np.stack(hms))[:, None],
        "ign": torch.from_numpy(np.stack(igns))[:, None],
        "bi": torch.tensor(bi, dtype=torch.long),
        "idx": torch.tensor(idx, dtype=torch.long),
        "off": torch.tensor(np.array(off, np.float32).reshape(-1, 2)),
        "cor": torch.tensor(np.array(cor, np.float32).reshape(-1, 8)),
        "cw": torch.tensor(cw, dtype=torch.float32),
    }
    return t


def heatmap_loss(logits, gt, ign, pos_weight=1.0):
    """Focal loss of the centre heatmap, summed over the batch (plate centres weighted by pos_weight),
    and the number of plate centres."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = (gt >= 1.0).float()
    neg = (1 - pos) * (1 - ign)
    pos_loss = torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = torch.log(1 - p) * p ** 2 * (1 - gt) ** 4 * neg
    return -(pos_weight * pos_loss.sum() + neg_loss.sum()), pos.sum()


def losses(model, t):
    hm_l, off_l, cor_l = model.forward_raw(t["img"])
    l_hm_sum, npos = heatmap_loss(hm_l, t["hm"], t["ign"])
    l_hm = l_hm_sum / npos.clamp(min=1.0)
    if len(t["idx"]):
        B = off_l.shape[0]
        offp = torch.sigmoid(off_l).reshape(B, 2, -1)[t["bi"], :, t["idx"]]
        corp = cor_l.reshape(B, 8, -1)[t["bi"], :, t["idx"]]
        l_off = (offp - t["off"]).abs().sum(1).mean()
        l_cor = (F.smooth_l1_loss(corp, t["cor"], reduction="none", beta=0.1).sum(1) * t["cw"]).sum() / t["cw"].sum().clamp(min=1e-3)
        # the axis-aligned box (bounding box of the corners) is exact for real and synthetic plates alike
        def bbox(c):
            c = c.reshape(-1, 4, 2)
            return torch.cat([c.min(1)[0], c.max(1)[0]], 1)
        l_box = F.smooth_l1_loss(bbox(corp), bbox(t["cor"]), reduction="none", beta=0.1).sum(1).mean()
    else:
        l_off = l_cor = l_box = hm_l.sum() * 0
    return l_hm, l_off, l_cor, l_box


# ------------------------------------------------------------------------------------------ inference
def preprocess(img_bgr, input_size, pad=32):
    h, w = img_bgr.shape[:2]
    sc = input_size / max(h, w)
    nw, nh = max(1, round(w * sc)), max(1, round(h * sc))
    r = cv2.resize(img_bgr, (nw, nh), interpolation=cv2.INTER_LINEAR if sc > 1 else cv2.INTER_AREA)  # as detector.cpp
    W, H = (nw + pad - 1) // pad * pad, (nh + pad - 1) // pad * pad
    x = np.zeros((H, W, 3), np.float32)
    x[:nh, :nw] = r[:, :, ::-1].astype(np.float32) / 255.0
    return x.transpose(2, 0, 1)[None].copy(), sc


def decode(out, sc, thr, nms_iou=0.4, img_wh=None):
    """out 1x11xhxw -> list of (score, box x0 y0 x1 y1, corners 4x2) in original-image pixels, after NMS.
    Mirrors src/detect/detector.cpp: peaks only inside the unpadded area, boxes clipped to the image."""
    heat = out[0, 0]
    mx = cv2.dilate(heat, np.ones((3, 3), np.uint8))
    peak = (heat >= mx) & (heat >= thr)
    if img_wh is not None:
        vw = -(-round(img_wh[0] * sc) // STRIDE)
        vh = -(-round(img_wh[1] * sc) // STRIDE)
        peak[vh:, :] = False
        peak[:, vw:] = False
    ys, xs = np.nonzero(peak)
    dets = []
    for y, x in zip(ys, xs):
        cx = (x + out[0, 1, y, x]) * STRIDE
        cy = (y + out[0, 2, y, x]) * STRIDE
        c = np.array([[cx + out[0, 3 + 2 * k, y, x] * CORNER_SCALE, cy + out[0, 4 + 2 * k, y, x] * CORNER_SCALE]
                      for k in range(4)], np.float32) / sc
        box = np.array([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()])
        if img_wh is not None:
            box = np.clip(box, 0, [img_wh[0], img_wh[1], img_wh[0], img_wh[1]])
            if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                continue
        dets.append((float(heat[y, x]), box, c))
    return nms(dets, nms_iou)


def inside_frac(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy / max(1.0, (a[2] - a[0]) * (a[3] - a[1]))


def nms(dets, thr):
    """Greedy NMS as the C++: drop IoU > thr with a kept box, or a box > 70 % inside a kept one."""
    dets = sorted(dets, key=lambda d: -d[0])
    keep = []
    for d in dets:
        if all(iou(d[1], k[1]) <= thr and inside_frac(d[1], k[1]) <= 0.7 for k in keep):
            keep.append(d)
    return keep


def match(dets, gts, thr_list, iou_thr=0.5):
    """-> per threshold (tp, fp) counts; gts N x 4. dets sorted by score."""
    res = []
    for thr in thr_list:
        used = np.zeros(len(gts), bool)
        tp = fp = 0
        for s, b, _ in dets:
            if s < thr:
                break
            best, bj = 0.0, -1
            for j, g in enumerate(gts):
                if not used[j]:
                    v = iou(b, g)
                    if v > best:
                        best, bj = v, j
            if best >= iou_thr:
                used[bj] = True
                tp += 1
            else:
                fp += 1
        res.append((tp, fp))
    return res


THRS = [round(0.05 * i, 2) for i in range(2, 17)]  # 0.10 .. 0.80


class Evaluator:
    def __init__(self, test_sets, limit=None):
        self.sets = []  # (name, [(bgr, gts)])
        for name, samples in test_sets:
            items = []
            for s in samples[:limit]:
                r = load_image_boxes(s)
                if r is None:
                    log(f"warning: {s.path} does not decode; skipped")
                    continue
                items.append(r)
            self.sets.append((name, items))

    def run(self, onnx_path, input_sizes=(512,), hires_sets=HIRES_SETS, hires_size=1024, threads=1):
        cv2.setNumThreads(threads)
        net = cv2.dnn.readNetFromONNX(onnx_path)
        results = {}
        for name, items in self.sets:
            passes = {"512": [512]}
            if any(h in name for h in hires_sets) and hires_size:
                passes[str(hires_size)] = [hires_size]
                passes[f"512+{hires_size}"] = [512, hires_size]
            per_pass = {}
            cache = {}
            for key, sizes in passes.items():
                counts = np.zeros((len(THRS), 2), np.int64)
                ngt = 0
                for i, (img, gts) in enumerate(items):
                    dets = []
                    for sz in sizes:
                        if (i, sz) not in cache:
                            x, sc = preprocess(img, sz)
                            net.setInput(x)
                            cache[(i, sz)] = decode(net.forward(), sc, THRS[0], img_wh=(img.shape[1], img.shape[0]))
                        dets += cache[(i, sz)]
                    dets = nms(dets, 0.4)
                    counts += np.array(match(dets, gts, THRS))
                    ngt += len(gts)
                per_pass[key] = {"gt": ngt, "images": len(items), "counts": counts.tolist()}
            results[name] = per_pass
        return results


def summarize(results, thr=None):
    """Picks the threshold maximising mean F1 (512 pass) over sets; returns (thr, table)."""
    def prf(c, ngt):
        tp, fp = c
        r = tp / max(ngt, 1)
        p = tp / max(tp + fp, 1)
        return r, p, (2 * r * p / (r + p) if r + p > 0 else 0.0)
    if thr is None:
        f1s = []
        for ti in range(len(THRS)):
            f1s.append(np.mean([prf(v["512"]["counts"][ti], v["512"]["gt"])[2] for v in results.values()]))
        ti = int(np.argmax(f1s))
        thr = THRS[ti]
    ti = THRS.index(thr)
    table = {}
    for name, passes in results.items():
        table[name] = {}
        for key, v in passes.items():
            r, p, f = prf(v["counts"][ti], v["gt"])
            table[name][key] = {"recall": round(r, 4), "precision": round(p, 4), "f1": round(f, 4),
                                "fp_per_image": round(v["counts"][ti][1] / max(v["images"], 1), 3),
                                "images": v["images"], "plates": v["gt"]}
    mean_r = float(np.mean([t["512"]["recall"] for t in table.values()]))
    mean_f = float(np.mean([t["512"]["f1"] for t in table.values()]))
    return thr, table, mean_r, mean_f


def print_table(thr, table):
    log(f"held-out at threshold {thr} (IoU >= 0.5):")
    for name, passes in table.items():
        for key, v in passes.items():
            log(f"  {name:32s} pass {key:9s} recall {v['recall']:.3f} precision {v['precision']:.3f} "
                f"fp/img {v['fp_per_image']:.2f}  ({v['plates']} plates, {v['images']} images)")


# --------------------------------------------------------------------------------------- export/verify
def verify_onnx(model, onnx_path, img_bgr, timing=True):
    """Loads in cv2.dnn, compares with torch on a real image, times 512x288 with 2 threads."""
    net = cv2.dnn.readNetFromONNX(onnx_path)
    x, _ = preprocess(img_bgr, 512)
    net.setInput(x)
    o_cv = net.forward()
    with torch.no_grad():
        o_t = model.eval()(torch.from_numpy(x)).numpy()
    diff = float(np.abs(o_cv - o_t).max())
    res = {"max_abs_diff_vs_torch": diff, "input_shape": list(x.shape), "output_shape": list(o_cv.shape)}
    if timing:
        cv2.setNumThreads(2)
        xt = np.random.default_rng(0).random((1, 3, 288, 512), dtype=np.float32)
        ts = []
        for i in range(25):
            net.setInput(xt)
            t0 = time.perf_counter()
            net.forward()
            ts.append(time.perf_counter() - t0)
        res["cv2_dnn_ms_512x288_2threads_median20"] = round(1000 * float(np.median(ts[5:])), 2)
        cv2.setNumThreads(1)
    return res


WEAK_THRESHOLD = 0.2


def write_sidecar(path, thr, training):
    d = {"name": "vigil-detector", "version": "1", "input_size": 512, "pad_multiple": 32, "stride": STRIDE,
         "channels": "RGB", "scale": 1 / 255, "mean": [0, 0, 0], "std": [1, 1, 1], "input": "image",
         "output": "out", "corner_scale": CORNER_SCALE, "score_threshold": thr, "nms_iou": 0.4,
         # detections from here up to score_threshold are kept only when the reader confirms a plate
         "weak_threshold": round(min(thr, WEAK_THRESHOLD), 2), "training": training}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(d, f, indent=2)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", help="folder holding the default sets (see above)")
    ap.add_argument("--train-set", action="append", help="PATH[#SEL], repeatable (default: the --data-root sets)")
    ap.add_argument("--test-set", action="append", help="PATH[#SEL], repeatable (default: the --data-root sets)")
    ap.add_argument("--negatives", help="folder of plate-free images (default DATA_ROOT/negatives)")
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(REPO, "models", "detector.onnx"),
                    help="exported ONNX; the sidecar goes next to it with .json (default models/detector.onnx)")
    ap.add_argument("--run-dir", default=RUN_DIR, help="checkpoints and scratch (default training/runs/detector)")
    ap.add_argument("--minutes", type=float, default=75.0, help="training wall-clock budget, all runs of --resume together")
    ap.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    ap.add_argument("--samples", type=int, default=0,
                    help="budget in training crops instead of minutes (all runs together); the schedule follows it")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1, help="torch/OpenCV threads for training")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=320)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--synth-p", type=float, default=0.35)
    ap.add_argument("--tilt-share", type=float, default=0.25,
                    help="share of real crops turned about the plate (a tilted camera or plate)")
    ap.add_argument("--max-tilt", type=float, default=30.0, help="largest turn of those crops, degrees")
    ap.add_argument("--real-corner-weight", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=float, default=8.0, help="minutes between held-out evaluations")
    ap.add_argument("--ckpt-every", type=float, default=3.0, help="minutes between checkpoints")
    ap.add_argument("--eval-only", action="store_true", help="evaluate --out with cv2.dnn on the test sets")
    ap.add_argument("--no-hires", action="store_true", help="skip the second 1024 pass in the evaluation")
    ap.add_argument("--update-sidecar", action="store_true",
                    help="with --eval-only: write the chosen threshold and these metrics into the sidecar")
    ap.add_argument("--export-weights", metavar="PT",
                    help="with --eval-only: first export this state dict (e.g. RUN_DIR/best_weights.pt) to --out")
    ap.add_argument("--threshold", type=float, help="with --eval-only: report at this threshold instead of the best")
    ap.add_argument("--smoke", action="store_true", help="tiny run (~1 minute) for CI; still exports --out")
    ap.add_argument("--fonts", action="append", default=[], help="extra font folder for the synthetic plates")
    ap.add_argument("--workers", type=int, default=0, help="processes making training crops (0: in this process)")
    ap.add_argument("--init", help="start from this checkpoint's weights with a fresh schedule (a fine-tune), "
                                   "or from an exported model (models/detector.onnx: no checkpoint needed)")
    ap.add_argument("--save-pack", metavar="FILE", help="write the training images and negatives to FILE and exit")
    ap.add_argument("--pack-quality", type=int, default=85, help="JPEG quality of --save-pack")
    ap.add_argument("--pack-long-side", type=int, default=0,
                    help="--save-pack shrinks images to this long side, keeping plates >= 100 px wide (0: as cached)")
    ap.add_argument("--pack-max-images", type=int, default=0, help="--save-pack keeps at most this many per set")
    ap.add_argument("--pack-max-negatives", type=int, default=0, help="--save-pack keeps at most this many negatives")
    ap.add_argument("--from-pack", metavar="FILE", help="train from a --save-pack FILE instead of the datasets")
    ap.add_argument("--no-eval", action="store_true", help="checkpoints only: no held-out evaluation or export")
    ap.add_argument("--export-checkpoint", metavar="PT",
                    help="with --eval-only: first export this checkpoint's weights (e.g. RUN_DIR/last.pt) to --out")
    a = ap.parse_args()
    if a.fonts:
        import synth
        synth.set_font_dirs(a.fonts)

    torch.set_num_threads(a.threads)
    cv2.setNumThreads(a.threads)
    if a.smoke:
        a.minutes = min(a.minutes, 0.5)
        a.eval_every = 1e9
        a.batch = min(a.batch, 4)
        a.crop = min(a.crop, 256)
        a.run_dir = os.path.join(a.run_dir, "smoke")
    limit = 8 if a.smoke else None
    train_specs = a.train_set or (DEFAULT_TRAIN if a.data_root else [])
    test_specs = a.test_set or (DEFAULT_TEST if a.data_root else [])
    neg_dir = a.negatives or (os.path.join(a.data_root, "negatives") if a.data_root else None)
    os.makedirs(a.run_dir, exist_ok=True)
    sidecar = os.path.splitext(a.out)[0] + ".json"

    log("loading held-out sets:", test_specs)
    test_sets = [(set_name(sp), parse_set(sp, a)[1]) for sp in test_specs]
    evaluator = Evaluator(test_sets, limit=limit)

    if a.eval_only:
        if a.export_weights or a.export_checkpoint:
            m = PlateDetector(**MODEL_KW)
            if a.export_checkpoint:
                ck = packs.load_checkpoint(a.export_checkpoint, "cpu")
                m.load_state_dict(ck["model"])
                if os.path.exists(sidecar):  # the training facts of the checkpoint go into the sidecar
                    d = json.load(open(sidecar))
                    d["training"].update(lineage(ck["state"]))
                    json.dump(d, open(sidecar, "w"), indent=2)
            else:
                m.load_state_dict(torch.load(a.export_weights, map_location="cpu"))
            m.eval()
            export_onnx(m, a.out)
            ref = evaluator.sets[0][1][0][0]
            log("exported", a.export_weights or a.export_checkpoint, "->", a.out, verify_onnx(m, a.out, ref, timing=True))
        res = evaluator.run(a.out, hires_size=0 if a.no_hires else 1024)
        thr, table, mr, mf = summarize(res, a.threshold)
        print_table(thr, table)
        if a.update_sidecar and os.path.exists(sidecar):
            d = json.load(open(sidecar))
            d["score_threshold"] = thr
            h = d["training"].get("heldout") or {}
            h.update({"threshold": thr, "iou": 0.5, "sets": table, "mean_recall_512": round(mr, 4),
                      "mean_f1_512": round(mf, 4), "evaluated_with": "cv2.dnn " + cv2.__version__ +
                      ", INTER_AREA resize (INTER_LINEAR to enlarge), peaks in the unpadded area, NMS 0.4 + 70% inside rule"})
            d["training"]["heldout"] = h
            with open(sidecar + ".tmp", "w") as f:
                json.dump(d, f, indent=2)
            os.replace(sidecar + ".tmp", sidecar)
            log("updated", sidecar)
        # also at the sidecar's threshold
        if os.path.exists(sidecar):
            st = json.load(open(sidecar))["score_threshold"]
            if st in THRS and st != thr:
                _, t2, _, _ = summarize(res, st)
                print_table(st, t2)
        log(f"mean recall {mr:.4f} mean F1 {mf:.4f}")
        with open(os.path.join(a.run_dir, "eval.json"), "w") as f:
            json.dump({"onnx": a.out, "threshold": thr, "table": table, "raw": res, "thresholds": THRS}, f, indent=1)
        return

    if not train_specs and not a.from_pack:
        ap.error("no training sets: give --data-root or --train-set")
    dev = torch.device("cuda" if (a.device == "auto" and torch.cuda.is_available()) else
                       ("cpu" if a.device == "auto" else a.device))
    log("loading training sets:", train_specs, "device", dev)
    if a.from_pack:
        real, negs = load_pack(a.from_pack)
    else:
        train_sets = [(set_name(sp), parse_set(sp, a)[1]) for sp in train_specs]
        real = RealImages(train_sets, limit=limit)
        negs = load_negatives(neg_dir, limit=limit)
    log("train:", real.stats, "negatives:", len(negs), "set sampling p:", np.round(real.set_p, 3).tolist())
    if a.save_pack:
        save_pack(a.save_pack, real, negs, a.pack_quality, a.pack_long_side, 100, a.pack_max_images,
                  a.pack_max_negatives)
        log(f"wrote {a.save_pack} ({os.path.getsize(a.save_pack) / 1e6:.1f} MB)")
        return

    torch.manual_seed(a.seed)
    model = PlateDetector(**MODEL_KW).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    state = {"step": 0, "samples": 0, "elapsed": 0.0, "best": -1.0, "history": [], "real": 0, "synthetic": 0}
    rng = np.random.default_rng(a.seed)
    ckpt = os.path.join(a.run_dir, "last.pt")
    if a.init:
        if a.init.endswith(".onnx"):  # an exported model (the shipped one): no checkpoint needed
            model = onnx_init.load_onnx_weights(PlateDetector(**MODEL_KW), a.init,
                                                onnx_calibration(real, negs, a)).to(dev)
            opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
            t = onnx_init.sidecar_training(a.init)  # its totals are the base of this fine-tune
            st = {"step": t.get("steps", 0), "samples": t.get("samples_seen", 0), "real": t.get("real_crops", 0),
                  "synthetic": t.get("synthetic_crops", 0), "elapsed": 60.0 * t.get("minutes", 0.0)}
        else:
            ck = packs.load_checkpoint(a.init, dev)
            model.load_state_dict(ck["model"])
            st = ck.get("state", {})
        # a fine-tune of a fine-tune: its base is everything the checkpoint had seen, and it is kept as the
        # checkpoint's own fine-tune record under "earlier"
        prev = st.get("fine_tune") or {}
        pb = prev.get("base", {})
        state["fine_tune"] = {"fine_tuned_from": os.path.basename(a.init), "trained_on": str(dev) if dev.type != "cuda"
                              else torch.cuda.get_device_name(0), "trained_with_torch": torch.__version__,
                              "lr": a.lr, "tilt_share": a.tilt_share, "max_tilt": a.max_tilt,
                              "base": {"steps": pb.get("steps", 0) + st.get("step", 0),
                                       "samples": pb.get("samples", 0) + st.get("samples", 0),
                                       "real": pb.get("real", 0) + st.get("real", 0),
                                       "synthetic": pb.get("synthetic", 0) + st.get("synthetic", 0),
                                       "minutes": pb.get("minutes", round(st.get("elapsed", 0.0) / 60, 1))}}
        if prev:
            state["fine_tune"]["earlier"] = {k: v for k, v in prev.items() if k != "base"} | {
                "samples": st.get("samples", 0), "steps": st.get("step", 0),
                "minutes": round(st.get("elapsed", 0.0) / 60, 1)}
        if a.init.endswith(".onnx") and t.get("fine_tune"):
            state["fine_tune"]["earlier"] = t["fine_tune"]
        log(f"weights from {a.init}, fresh schedule")
    if a.resume and os.path.exists(ckpt):
        ck = packs.load_checkpoint(ckpt, dev)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        state = ck["state"]
        rng = np.random.default_rng([a.seed, state["step"]])
        log(f"resumed from {ckpt}: step {state['step']}, {state['elapsed'] / 60:.1f} min, best {state['best']:.4f}")
    log(f"model params {count_params(model)}")
    sampler = Sampler(real, negs, rng, size=a.crop, synth_p=a.synth_p, tilt=(a.tilt_share, a.max_tilt))
    budget = a.minutes * 60.0
    warm = 300
    t_start = time.time() - state["elapsed"]
    last_ckpt = last_eval = time.time()
    if state["step"] == 0:
        last_eval = time.time()
    ref_img = evaluator.sets[0][1][0][0] if evaluator.sets and evaluator.sets[0][1] else \
        cv2.cvtColor(real.items[0][1], cv2.COLOR_RGB2BGR)
    run_avg = None
    t_data = t_train = 0.0
    stream = None
    if a.workers > 0:
        stream = iter(torch.utils.data.DataLoader(
            BatchStream(real, negs, a.seed + int(time.time()) % 100000, a.batch, a.crop, sampler.synth_p,
                        a.real_corner_weight, (a.tilt_share, a.max_tilt)), batch_size=None, num_workers=a.workers, prefetch_factor=4,
            persistent_workers=True))

    def save_ckpt():
        state["elapsed"] = time.time() - t_start
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state, "model_kw": MODEL_KW},
                   ckpt + ".tmp")
        os.replace(ckpt + ".tmp", ckpt)

    def training_info(metrics=None):
        return {"datasets_train": train_specs, "datasets_heldout": test_specs, "negatives": neg_dir,
                "train_counts": real.stats, "negatives_count": len(negs), **lineage(state),
                "batch": a.batch, "crop": a.crop, "seed": a.seed, "split_seed": a.split_seed,
                "test_fraction": a.test_fraction, "torch": torch.__version__, "opencv": cv2.__version__,
                "params": count_params(model), "model": MODEL_KW, "heldout": metrics}

    def evaluate_and_maybe_publish(final=False):
        cand = os.path.join(a.run_dir, "cand.onnx")
        export_onnx(model, cand)
        model.to(dev)
        res = evaluator.run(cand, hires_size=1024 if final and not a.no_hires else 0)
        thr, table, mr, mf = summarize(res)
        print_table(thr, table)
        score = mf
        log(f"step {state['step']}: mean recall {mr:.4f}, mean F1 {mf:.4f} (best {state['best']:.4f})")
        state["history"].append({"step": state["step"], "min": round((time.time() - t_start) / 60, 1),
                                 "thr": thr, "mean_recall": mr, "mean_f1": mf})
        if score > state["best"] or final:
            if score > state["best"]:
                state["best"] = score
            torch.save(model.state_dict(), os.path.join(a.run_dir, "best_weights.pt") if not final else
                       os.path.join(a.run_dir, "final_weights.pt"))
            ver = verify_onnx(model, cand, ref_img, timing=final)
            model.to(dev)
            if ver["max_abs_diff_vs_torch"] > 1e-3:
                log("ERROR: cv2.dnn output differs from torch:", ver)
                return res
            metrics = {"threshold": thr, "iou": 0.5, "sets": table, "mean_recall_512": round(mr, 4),
                       "mean_f1_512": round(mf, 4), "verify": ver}
            os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
            shutil.copyfile(cand, a.out + ".tmp")
            os.replace(a.out + ".tmp", a.out)
            write_sidecar(sidecar, thr, training_info(metrics))
            log(f"published {a.out} ({os.path.getsize(a.out)} bytes) + {sidecar}; verify {ver}")
        return res

    model.train()
    while True:
        now = time.time()
        elapsed = now - t_start
        frac = state["samples"] / a.samples if a.samples else elapsed / budget
        if frac >= 1.0:
            break
        lr = a.lr * min(1.0, (state["step"] + 1) / warm) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        t0 = time.time()
        if stream is not None:
            t = next(stream)
            n_syn = int(t.pop("n_syn"))
            state["synthetic"] += n_syn
            state["real"] += a.batch - n_syn
        else:
            batch = []
            for _ in range(a.batch):
                img, plates, syn = sampler.sample()
                batch.append((img, plates))
                if syn:
                    state["synthetic"] += 1
                else:
                    state["real"] += 1
            t = collate(batch, a.crop, a.real_corner_weight)
        t = {k: v.to(dev, non_blocking=True) for k, v in t.items()}
        t1 = time.time()
        l_hm, l_off, l_cor, l_box = losses(model, t)
        loss = l_hm + l_off + 0.5 * l_cor + 0.5 * l_box
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        t2 = time.time()
        t_data += t1 - t0
        t_train += t2 - t1
        state["step"] += 1
        state["samples"] += a.batch
        if state["step"] % 10 == 0 or a.smoke:  # .item() waits for the device: not every step
            v = np.array([loss.item(), l_hm.item(), l_off.item(), l_cor.item(), l_box.item()])
            run_avg = v if run_avg is None else 0.8 * run_avg + 0.2 * v
        if state["step"] % 50 == 0 or a.smoke:
            log(f"step {state['step']} samples {state['samples']} {elapsed / 60:.1f}/{a.minutes:.0f} min lr {lr:.2e} "
                f"loss {run_avg[0]:.3f} hm {run_avg[1]:.3f} off {run_avg[2]:.3f} cor {run_avg[3]:.3f} box {run_avg[4]:.3f} "
                f"data {t_data / state['step'] if not a.resume else 0:.3f}s/b train {t_train:.0f}s "
                f"{state['samples'] / max(elapsed, 1):.1f} samples/s")
        if time.time() - last_ckpt > a.ckpt_every * 60:
            save_ckpt()
            last_ckpt = time.time()
        if time.time() - last_eval > a.eval_every * 60 and not a.no_eval:
            model.eval()
            evaluate_and_maybe_publish()
            model.train()
            last_eval = time.time()
    save_ckpt()
    model.eval()
    log(f"training done: {state['step']} steps, {state['samples']} samples, {state['elapsed'] / 60:.1f} min")
    if a.no_eval:
        return
    evaluate_and_maybe_publish(final=True)
    save_ckpt()
    if not os.path.exists(a.out):
        sys.exit(f"error: {a.out} was not written")


if __name__ == "__main__":
    main()
