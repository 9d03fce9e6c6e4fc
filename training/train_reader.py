#!/usr/bin/python3
"""Trains the plate reader: a conv-only CTC network on 32x128 grey rectified plates.

Data: synthetic plates of every supported country (training/synth.py) mixed with real crops from
annotated datasets given on the command line (train parts of the seeded split only), degraded the way
camera images are (small plates, blur, noise, glare, dirt, night) and cut out with the same rectification
as the C++ reader (a quad expanded by fixed margins, warped to 128x32; two-line plates warped to 64x64 and
their halves put side by side). Half the time a real plate is cut out along the corners the detector found
for it (--detections: `vigil read --json` over the same images), so the reader also learns the crops the
pipeline will give it, not only the annotators' boxes. Writes models/reader.onnx and models/reader.json.

  /usr/bin/python3 training/vigil_data.py list --split train ../shared/data/openalpr-us ... > train_images.txt
  build/apps/vigil/vigil read --json --min-confidence 0 - < train_images.txt > detections.jsonl

  /usr/bin/python3 training/train_reader.py \
      --real ../shared/data/openalpr-us --real ../shared/data/openalpr-br --real ../shared/data/plates-fr/train \
      --detections detections.jsonl \
      --eval ../shared/data/openalpr-us:test --eval ../shared/data/openalpr-br:test --eval ../shared/data/plates-fr/test \
      --fonts ../shared/data/fonts --backgrounds ../shared/data/negatives --minutes 75 --resume
  /usr/bin/python3 training/train_reader.py --smoke --out /tmp/reader.onnx      # CI: a minute, synthetic only

On a machine with a GPU the network is no longer the bottleneck, the making of samples is: --workers N makes
them in N processes. A GPU machine rarely has the datasets, so --save-pack FILE writes what training reads
(the real crops with their detector corners, the held-out crops, the backgrounds; about 30 MB) and exits, and
--from-pack FILE trains from it. --init CKPT starts from a checkpoint's weights with a fresh schedule (a
fine-tune); --init models/reader.onnx starts from the exported model itself (no checkpoint needed: fine-tune
the shipped reader on your own plates). --no-export leaves the ONNX export to --export-only on the machine
that runs the C++ (the export is checked against its OpenCV). --samples N sets the budget in samples
instead of minutes, so a GPU recipe can be replayed on a CPU.
"""
import argparse
import glob
import inspect
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
import onnx_init  # noqa: E402
import packs  # noqa: E402
import synth  # noqa: E402
import vigil_data  # noqa: E402

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
IN_H, IN_W = 32, 128
MARGIN_X, MARGIN_Y = 0.04, 0.10  # quad expansion before warping, fraction of plate width/height per side
MEAN, STD = 0.5, 0.5


class Reader(nn.Module):
    def __init__(self, n_classes=len(ALPHABET) + 1):
        super().__init__()

        def cbr(i, o, k=3, p=1):
            return [nn.Conv2d(i, o, k, padding=p, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

        # ~30M multiply-accumulates per plate: cheap enough to train for hours on two CPU cores.
        self.body = nn.Sequential(
            *cbr(1, 16), nn.MaxPool2d(2),                       # 16x64
            *cbr(16, 32), nn.MaxPool2d(2),                      # 8x32
            *cbr(32, 64), *cbr(64, 64), nn.MaxPool2d((2, 1)),   # 4x32
            *cbr(64, 96), nn.MaxPool2d((2, 1)),                 # 2x32
            *cbr(96, 128, (2, 3), (0, 1)),                      # 1x32
            *cbr(128, 128, (1, 3), (0, 1)),
        )
        self.head = nn.Conv2d(128, n_classes, 1)

    def forward(self, x):
        return self.head(self.body(x))  # N x C x 1 x T (logits)


class Exported(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        # Logits: OpenCV 4.6 applies opset-11 Softmax over the flattened C*1*T, so the softmax over C is
        # done by the caller (src/read/reader.cpp).
        return self.m(x)  # N x C x 1 x T


# ---------------------------------------------------------------- rectification (mirrors src/read/rectify.cpp)

def expand_quad(quad, mx=MARGIN_X, my=MARGIN_Y):
    """quad: 4x2 TL, TR, BR, BL. Expands along the plate's own axes."""
    q = np.asarray(quad, np.float32)
    ux = ((q[1] - q[0]) + (q[2] - q[3])) / 2
    uy = ((q[3] - q[0]) + (q[2] - q[1])) / 2
    sx = np.array([-1, 1, 1, -1], np.float32)[:, None]
    sy = np.array([-1, -1, 1, 1], np.float32)[:, None]
    return q + sx * ux * mx + sy * uy * my


def rectify(img, quad, two_line):
    q = expand_quad(quad)
    if not two_line:
        dst = np.float32([[0, 0], [IN_W, 0], [IN_W, IN_H], [0, IN_H]])
        Hm = cv2.getPerspectiveTransform(q, dst)
        return cv2.warpPerspective(img, Hm, (IN_W, IN_H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    side = IN_W // 2
    dst = np.float32([[0, 0], [side, 0], [side, 2 * IN_H], [0, 2 * IN_H]])
    Hm = cv2.getPerspectiveTransform(q, dst)
    sq = cv2.warpPerspective(img, Hm, (side, 2 * IN_H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.concatenate([sq[:IN_H], sq[IN_H:]], axis=1)


# ---------------------------------------------------------------- data

def load_detections(files):
    """Plate corners found by the shipped pipeline, from `vigil read --json` output (one object per image):
    {image path: [4x2 corners, ...]}."""
    out = {}
    for f in files:
        with open(f) as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                d = json.loads(line)
                out[os.path.abspath(d["image"])] = [np.float32(p["corners"]) for p in d.get("plates", [])]
    return out


def _best_overlap(quads, x, y, w, h, min_iou=0.3):
    """The quad whose bounding box overlaps the box (x, y, w, h) most, if IoU >= min_iou."""
    best, best_iou = None, min_iou
    for q in quads:
        qx0, qy0 = q.min(0)
        qx1, qy1 = q.max(0)
        ix = max(0.0, min(qx1, x + w) - max(qx0, x))
        iy = max(0.0, min(qy1, y + h) - max(qy0, y))
        inter = ix * iy
        iou = inter / max(1e-6, (qx1 - qx0) * (qy1 - qy0) + w * h - inter)
        if iou >= best_iou:
            best, best_iou = q, iou
    return best


class RealCrops:
    """Context crops around each labelled plate, downscaled so the plate is at most ~220 px wide. With
    `detections` (see load_detections) each plate also keeps the corners the detector found for it, so the
    reader learns the crops it will be given, not only the annotators' boxes."""

    def __init__(self, paths, split="train", detections=None):
        self.items = []
        self.with_detection = 0
        self.datasets = [os.path.basename(os.path.normpath(spec.split(":")[0])) for spec in paths]
        self.by_set = []  # item indices of each dataset, in the order of `paths`
        for spec in paths:
            self.by_set.append([])
            path, _, sp = spec.partition(":")
            for s in vigil_data.load_dataset(path, sp or split):
                img = cv2.imread(s.path, cv2.IMREAD_COLOR)
                if img is None:
                    continue
                for p in s.boxes_px(img.shape[1], img.shape[0]):
                    if not p.text or p.w < 4 or p.h < 4:
                        continue
                    x0, y0 = max(0, int(p.x - p.w * 0.5)), max(0, int(p.y - p.h * 0.8))
                    x1 = min(img.shape[1], int(p.x + p.w * 1.5))
                    y1 = min(img.shape[0], int(p.y + p.h * 1.8))
                    crop = img[y0:y1, x0:x1]
                    f = min(1.0, 220.0 / p.w)
                    if f < 1.0:
                        crop = cv2.resize(crop, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
                    quad = np.float32([[p.x, p.y], [p.x + p.w, p.y], [p.x + p.w, p.y + p.h], [p.x, p.y + p.h]])
                    quad = (quad - [x0, y0]) * f
                    found = _best_overlap((detections or {}).get(os.path.abspath(s.path), []), p.x, p.y, p.w, p.h)
                    if found is not None:
                        found = (found - [x0, y0]) * f
                        self.with_detection += 1
                    self.by_set[-1].append(len(self.items))
                    self.items.append((crop, quad, p.text, os.path.basename(s.path), found, p.lines == 2))

    def __len__(self):
        return len(self.items)

    def pick(self, rng):
        """An item index: a dataset with probability proportional to the square root of its size, then one of
        its plates, so a large set (the European crops) leads without drowning the small ones."""
        sets = [b for b in self.by_set if b] or [list(range(len(self.items)))]
        w = np.sqrt([len(b) for b in sets])
        b = sets[rng.choice(len(sets), p=w / w.sum())]
        return b[rng.integers(len(b))]


def load_backgrounds(folder, limit=400):
    out = []
    for f in sorted(glob.glob(os.path.join(folder, "*.jpg")))[:limit]:
        im = cv2.imread(f)
        if im is not None:
            out.append(cv2.resize(im, (320, 240)))
    return out


def save_pack(path, real, evals, backgrounds):
    """Everything training reads from the datasets, in one file: real crops as lossless grey PNG (the reader
    sees grey only), backgrounds as JPEG (they were JPEG already)."""
    def crops(rc):
        return [(cv2.imencode(".png", cv2.cvtColor(c, cv2.COLOR_BGR2GRAY))[1].tobytes(), q, t, n, f, tl)
                for c, q, t, n, f, tl in rc.items]
    packs.write_pack(path, "reader", {
        "real": crops(real) if real else [], "real_with_detection": real.with_detection if real else 0,
        "real_datasets": real.datasets if real else [], "real_by_set": real.by_set if real else [], "evals": {k: crops(v) for k, v in evals.items()},
        "backgrounds": [packs.encode_jpeg(b, 92) for b in backgrounds]})


def load_pack(path):
    """(real crops, {eval name: crops}, backgrounds) as written by save_pack."""
    pack = packs.read_pack(path, "reader")

    def crops(items, with_detection=0):
        rc = RealCrops([])
        for png, q, t, n, f, *tl in items:  # packs written before two-line crops have 5 fields
            grey = packs.decode_image(png, cv2.IMREAD_GRAYSCALE)
            rc.items.append((cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), q, t, n, f, bool(tl and tl[0])))
        rc.with_detection = with_detection
        return rc
    real = crops(pack["real"], pack["real_with_detection"]) if pack["real"] else None
    if real:
        real.datasets = pack["real_datasets"]
        real.by_set = pack.get("real_by_set", [])
    evals = {k: crops(v) for k, v in pack["evals"].items()}
    return real, evals, [packs.decode_image(b) for b in pack["backgrounds"]]


class SampleStream(torch.utils.data.IterableDataset):
    """Endless batches of (uint8 N x H x W, texts) made in DataLoader worker processes."""

    def __init__(self, real, backgrounds, p_real, batch, seed, p_two_line=0.0, p_recompose=0.0):
        super().__init__()
        self.real, self.backgrounds, self.p_real, self.batch, self.seed = real, backgrounds, p_real, batch, seed
        self.p_two_line, self.p_recompose = p_two_line, p_recompose

    def __iter__(self):
        rng = packs.worker_rng(self.seed)
        while True:
            batch, texts = zip(*[make_sample(rng, self.real, self.backgrounds, self.p_real, self.p_two_line,
                                             self.p_recompose) for _ in range(self.batch)])
            u8 = np.stack(batch)
            # bytes through the worker's pipe, not a tensor in shared memory (/dev/shm can be tiny)
            yield u8.tobytes(), u8.shape, list(texts)


def jitter_quad(quad, rng, amount):
    q = np.asarray(quad, np.float32).copy()
    w = np.linalg.norm(q[1] - q[0])
    h = np.linalg.norm(q[3] - q[0])
    q[:, 0] += rng.normal(0, amount * 0.025 * w, 4)
    q[:, 1] += rng.normal(0, amount * 0.07 * h, 4)
    return q


def degrade(img, rng):
    """img: grey uint8 HxW at network size. Camera-like degradations."""
    x = img.astype(np.float32)
    if rng.random() < 0.3:
        k = int(rng.choice([3, 5]))
        x = cv2.GaussianBlur(x, (k, k), 0)
    if rng.random() < 0.15:  # horizontal motion blur
        k = int(rng.integers(3, 7))
        kern = np.zeros((k, k), np.float32)
        kern[k // 2, :] = 1.0 / k
        x = cv2.filter2D(x, -1, kern)
    if rng.random() < 0.08:  # light characters on a dark plate (old French, some US states)
        x = 255 - x
    c = rng.uniform(0.6, 1.3)
    b = rng.uniform(-40, 40)
    x = (x - 128) * c + 128 + b
    if rng.random() < 0.15:  # night: dark and noisy
        x = x * rng.uniform(0.35, 0.6)
    if rng.random() < 0.15:  # glare
        cx, cy = rng.uniform(0, IN_W), rng.uniform(0, IN_H)
        yy, xx = np.mgrid[0:x.shape[0], 0:x.shape[1]]
        r = rng.uniform(8, 40)
        x += rng.uniform(60, 160) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
    if rng.random() < 0.15:  # dirt
        for _ in range(int(rng.integers(1, 6))):
            cv2.circle(x, (int(rng.uniform(0, x.shape[1])), int(rng.uniform(0, x.shape[0]))),
                       int(rng.integers(1, 4)), float(rng.uniform(0, 90)), -1)
    x += rng.normal(0, rng.uniform(0, 9), x.shape)
    x = np.clip(x, 0, 255).astype(np.uint8)
    if rng.random() < 0.4:
        q = int(rng.integers(25, 90))
        x = cv2.imdecode(cv2.imencode(".jpg", x, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_GRAYSCALE)
    return x


def shrink(img, quad, rng, plate_w_range=(28, 200)):
    """Simulates a small plate in the camera image: scale the context so the plate is N px wide."""
    w = np.linalg.norm(quad[1] - quad[0])
    target = rng.uniform(*plate_w_range)
    if target < w:
        f = target / w
        img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        quad = quad * f
    return img, quad


def synth_sample(rng, backgrounds, p_two_line=0.0):
    """A rendered plate on a photo background: (image, quad, text, two_line). With probability p_two_line the
    plate is a two-line one (of a country that has such a layout), else as synth.render_plate draws it."""
    if p_two_line > 0 and rng.random() < p_two_line:
        countries = synth.two_line_countries()
        plate, text, two_line = synth.render_plate(rng, countries[rng.integers(len(countries))], two_line=True)
    else:
        plate, text, two_line = synth.render_plate(rng)
    plate = cv2.cvtColor(plate, cv2.COLOR_RGB2BGR)
    ph, pw = plate.shape[:2]
    cw, ch = int(pw * 1.6), int(ph * 2.2)
    if backgrounds and rng.random() < 0.8:
        bg = backgrounds[rng.integers(len(backgrounds))]
        canvas = cv2.resize(bg, (cw, ch))
    else:
        canvas = np.full((ch, cw, 3), rng.integers(0, 255, 3), np.uint8)
    x0, y0 = (cw - pw) // 2, (ch - ph) // 2
    if rng.random() < 0.3:  # a slight shadow or colour cast over the plate
        plate = np.clip(plate.astype(np.float32) * rng.uniform(0.6, 1.05, 3), 0, 255).astype(np.uint8)
    canvas[y0:y0 + ph, x0:x0 + pw] = plate
    quad = np.float32([[x0, y0], [x0 + pw, y0], [x0 + pw, y0 + ph], [x0, y0 + ph]])
    return canvas, quad, text, two_line


def character_slots(model, real, device="cpu"):
    """For each real crop the reader already reads right (cut along the detector's corners where it found the
    plate, else along its labelled box): the column ranges of its characters in the rectified 32x128 plate,
    [(x0, x1), ...] in reading order. None where the read is wrong or the ranges are uneven (a tilted or
    garbled crop). Placed from where the CTC path emits each character (see _snap_slots)."""
    slots = []
    model.eval()
    with torch.no_grad():
        for crop, quad, text, _, found, two_line in real.items:
            if two_line:  # recomposing cuts one row of characters
                slots.append(None)
                continue
            quad = found if found is not None else quad  # the detector's corners follow a tilted plate
            grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
            p = torch.softmax(model(to_tensor([rectify(grey, quad, False)]).to(device)), 1)[0, :, 0].cpu().numpy()
            best = p.argmax(0)
            step = IN_W / p.shape[1]
            centres, chars, prev = [], [], 0
            for t, b in enumerate(best):
                if b != 0 and b != prev:
                    centres.append((t + 0.5) * step)
                    chars.append(ALPHABET[b - 1])
                elif b != 0 and p[b, t] > p[b, int(round(centres[-1] / step - 0.5))]:
                    centres[-1] = (t + 0.5) * step  # the peak of the run
                prev = b
            if "".join(chars) != text or len(centres) < 2:
                slots.append(None)
                continue
            cut = _snap_slots(rectify(grey, quad, False), centres)
            widths = np.array([b - a for a, b in cut], np.float32)
            # plate characters are about equally wide: a slot far off the median holds a cut-off or extra part
            uniform = widths.min() >= 0.6 * np.median(widths) and widths.max() <= 1.6 * np.median(widths)
            slots.append(cut if uniform else None)
    model.train()
    return slots


def _snap_slots(plate, centres):
    """Slot bounds between the CTC emission points: the emission point of a conv CTC reader sits near its
    character, shifted by about the same amount along the plate, so the bounds are first moved together to
    where they cross the least ink, then each to the emptiest column close by."""
    band = plate[IN_H // 4: IN_H - IN_H // 4].astype(np.float32)
    ink = np.abs(band - np.median(band)).sum(0)
    ink = np.convolve(ink, [0.25, 0.5, 0.25], "same")
    c = np.asarray(centres, np.float64)
    gaps = np.diff(c)
    mids = np.concatenate([[c[0] - gaps[0] / 2], (c[1:] + c[:-1]) / 2, [c[-1] + gaps[-1] / 2]])
    reach = np.concatenate([[gaps[0]], gaps, [gaps[-1]]])  # how far each bound may move: its gap

    def cost(b):
        return ink[np.clip(np.round(b).astype(int), 0, IN_W - 1)].sum()
    shift = min(np.arange(-0.6, 0.61, 0.05) * np.median(gaps), key=lambda s: cost(mids + s))
    snapped = []
    for b, r in zip(mids + shift, reach):
        lo, hi = int(max(0, b - 0.2 * r)), int(min(IN_W - 1, b + 0.2 * r))
        if snapped:
            lo = max(lo, snapped[-1] + 2)
        snapped.append(lo + int(np.argmin(ink[lo:hi + 1])) if hi >= lo else min(IN_W - 1, lo))
    return list(zip(snapped, snapped[1:]))


def recompose(rng, grey, quad, text, slots):
    """A new plate made of a real plate's own characters: the rectified plate cut into its character slots
    and put together again in a random order (with repeats), between its own left and right edges. The reader
    sees real glyphs, backgrounds and fonts in strings it has never seen, so it cannot lean on remembering
    the few hundred real strings."""
    plate = rectify(grey, quad, False)
    n = len(slots) + int(rng.choice([-1, 0, 0, 0, 1])) if len(slots) > 3 else len(slots)
    pick = rng.integers(len(slots), size=n)
    parts = [plate[:, :slots[0][0]]] + [plate[:, slots[i][0]:slots[i][1]] for i in pick] + \
            [plate[:, slots[-1][1]:]]
    out = cv2.resize(np.concatenate(parts, axis=1), (IN_W, IN_H), interpolation=cv2.INTER_AREA)
    # what a detector's corners and a small plate would do to it
    src = np.float32([[0, 0], [IN_W, 0], [IN_W, IN_H], [0, IN_H]])
    dst = (src + rng.normal(0, 1, (4, 2)) * [2.0, 1.2]).astype(np.float32)
    out = cv2.warpPerspective(out, cv2.getPerspectiveTransform(src, dst), (IN_W, IN_H),
                              borderMode=cv2.BORDER_REPLICATE)
    if rng.random() < 0.5:
        w = int(rng.uniform(28, IN_W))
        out = cv2.resize(cv2.resize(out, (w, max(6, w * IN_H // IN_W)), interpolation=cv2.INTER_AREA),
                         (IN_W, IN_H), interpolation=cv2.INTER_LINEAR)
    return out, "".join(text[i] for i in pick)


def make_sample(rng, real, backgrounds, p_real, p_two_line=0.0, p_recompose=0.0):
    if real is not None and len(real) and rng.random() < p_real:
        i = real.pick(rng)
        crop, quad, text, _, found, two_line = real.items[i]
        slots = getattr(real, "slots", None)
        if p_recompose > 0 and slots and slots[i] and not two_line and rng.random() < p_recompose:
            out, text = recompose(rng, cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), found if found is not None else quad,
                                  text, slots[i])
            return degrade(out, rng), text
        img, quad = crop, (found if found is not None and rng.random() < 0.5 else quad).copy()
    else:
        img, quad, text, two_line = synth_sample(rng, backgrounds, p_two_line)
    img, quad = shrink(img, quad, rng)
    q = jitter_quad(quad, rng, rng.uniform(0.3, 1.2))
    if rng.random() < 0.35:  # residual rotation and shear: tilted plates, boxes that are not quads
        a = np.deg2rad(rng.uniform(-12, 12))
        c = q.mean(0)
        rot = np.float32([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        q = (q - c) @ rot.T + c
        shear = rng.uniform(-0.25, 0.25) * np.linalg.norm(q[3] - q[0])
        q[0, 0] += shear
        q[1, 0] += shear
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    out = rectify(grey, q, two_line)
    return degrade(out, rng), text


def to_tensor(batch):
    """A list of uint8 H x W crops -> normalised float N x 1 x H x W on the CPU."""
    return normalise(np.stack(batch), "cpu")


def normalise(u8, device):
    """uint8 N x H x W (numpy or tensor) -> normalised float N x 1 x H x W on device."""
    if isinstance(u8, np.ndarray) and not u8.flags.writeable:
        u8 = u8.copy()
    x = torch.as_tensor(u8).to(device, non_blocking=True).float().div_(255.0)
    return ((x - MEAN) / STD)[:, None]


def encode_targets(texts):
    idx = [ALPHABET.index(c) + 1 for t in texts for c in t]
    return torch.tensor(idx, dtype=torch.long), torch.tensor([len(t) for t in texts], dtype=torch.long)


def greedy(probs_ct):
    """probs: C x T numpy."""
    best = probs_ct.argmax(0)
    out, prev = [], 0
    for b in best:
        if b != prev and b != 0:
            out.append(ALPHABET[b - 1])
        prev = b
    return "".join(out)


def evaluate(model, crops):
    """Exact-match greedy accuracy on ground-truth crops (fixed margins, no jitter; two-line where labelled)."""
    model.eval()
    ok = 0
    device = next(model.parameters()).device
    with torch.no_grad():
        for crop, quad, text, _, _, two_line in crops.items:
            grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
            x = to_tensor([rectify(grey, quad, two_line)]).to(device)
            p = torch.softmax(model(x), 1)[0, :, 0].cpu().numpy()
            ok += greedy(p) == text
    model.train()
    return ok / max(1, len(crops))


def export(model, out_path, meta):
    model = _cpu_copy(model)  # export and check on the CPU, whatever device trained it
    model.eval()
    m = Exported(model)
    dummy = torch.zeros(1, 1, IN_H, IN_W)
    extra = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    torch.onnx.export(m, dummy, out_path, input_names=["image"], output_names=["logits"], opset_version=11,
                      do_constant_folding=True, **extra)
    m.eval()  # export restores the module's previous mode recursively
    net = cv2.dnn.readNetFromONNX(out_path)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 1, IN_H, IN_W)).astype(np.float32)
    net.setInput(x)
    got = net.forward()
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy()
    diff = float(np.abs(got - want).max())
    if diff > 1e-3:
        raise RuntimeError(f"OpenCV DNN output differs from torch by {diff}")
    sidecar = {
        "name": "vigil-reader", "version": meta.get("version", "1"),
        "input_width": IN_W, "input_height": IN_H, "channels": "grey",
        "scale": 1 / 255.0, "mean": MEAN, "std": STD,
        "alphabet": ALPHABET, "blank": 0, "output": "logits", "output_layout": "N,C,1,T logits; softmax over C",
        "margin_x": MARGIN_X, "margin_y": MARGIN_Y,
        # an uncertain read is read again with these wider margins (chosen on the train splits)
        "second_look_margins": [2 * MARGIN_X, 1.6 * MARGIN_Y],
        "two_line": {"warp_width": IN_W // 2, "warp_height": 2 * IN_H, "halves": "side by side"},
        "training": meta,
    }
    with open(os.path.splitext(out_path)[0] + ".json", "w") as f:
        json.dump(sidecar, f, indent=2)
    return diff


def _cpu_copy(model):
    m = Reader()
    m.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", action="append", default=[], help="labelled dataset (train part used); PATH[:split]")
    ap.add_argument("--eval", action="append", default=[], help="held-out set PATH[:split] for accuracy")
    ap.add_argument("--fonts", action="append", default=[], help="extra font folder")
    ap.add_argument("--backgrounds", default="", help="folder of plate-free photos for synthetic context")
    ap.add_argument("--minutes", type=float, default=75, help="budget in minutes of training (all runs together)")
    ap.add_argument("--samples", type=int, default=0,
                    help="budget in samples instead of minutes (all runs together); the schedule follows it")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--p-real", type=float, default=0.5)
    ap.add_argument("--two-line-share", type=float, default=0.0,
                    help="share of synthetic samples forced to be two-line plates (0: as synth.py draws them, "
                         "about 1 in 10)")
    ap.add_argument("--recompose-share", type=float, default=0.0,
                    help="share of real samples recomposed from their own characters in a random order (needs "
                         "--init or --resume: the model's reading of each crop places its characters)")
    ap.add_argument("--detections", action="append", default=[],
                    help="`vigil read --json` output over the --real images (repeatable): half the time a real "
                         "plate is cut out along the corners the detector found for it")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=0, help="processes making samples (0: in this process)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", default=os.path.join(os.path.dirname(__file__), "runs", "reader"))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "models", "reader.onnx"))
    ap.add_argument("--resume", action="store_true", help="go on from RUN_DIR/last.pt")
    ap.add_argument("--init", default="",
                    help="start from this checkpoint's weights with a fresh schedule; or from an exported model "
                         "(models/reader.onnx: fine-tune the shipped reader on your own plates)")
    ap.add_argument("--checkpoint-every", type=float, default=300, help="seconds between evaluations/checkpoints")
    ap.add_argument("--save-pack", default="", help="write the loaded crops and backgrounds to FILE and exit")
    ap.add_argument("--from-pack", default="", help="read crops and backgrounds from a --save-pack FILE")
    ap.add_argument("--no-export", action="store_true", help="checkpoints only; export later with --export-only")
    ap.add_argument("--export-only", action="store_true",
                    help="evaluate and export RUN_DIR/last.pt (or --init) to --out, no training")
    ap.add_argument("--smoke", action="store_true", help="tiny run for CI: synthetic only, ~1 minute")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    cv2.setNumThreads(1)
    torch.manual_seed(a.seed)
    seed = a.seed + int(time.time()) % 1000 if (a.resume or a.init) else a.seed
    rng = np.random.default_rng(seed)
    synth.set_font_dirs(a.fonts)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if a.smoke:
        a.minutes = min(a.minutes, 0.5)
    os.makedirs(a.run_dir, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    if a.from_pack:
        real, evals, backgrounds = load_pack(a.from_pack)
    else:
        real = RealCrops(a.real, detections=load_detections(a.detections)) if a.real else None
        evals = {e: RealCrops([e if ":" in e else e + ":all"]) for e in a.eval}
        backgrounds = load_backgrounds(a.backgrounds) if a.backgrounds else []
    print(f"real crops: {len(real) if real else 0} ({real.with_detection if real else 0} with detector corners), eval: {', '.join(f'{k}={len(v)}' for k, v in evals.items())}, "
          f"backgrounds: {len(backgrounds)}, fonts: {sum(map(len, synth._all_fonts()))}, device: {device}", flush=True)
    if a.save_pack:
        save_pack(a.save_pack, real, evals, backgrounds)
        print(f"wrote {a.save_pack} ({os.path.getsize(a.save_pack) / 1e6:.1f} MB)", flush=True)
        return

    model = Reader().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    ckpt_path = os.path.join(a.run_dir, "last.pt")
    state = {"step": 0, "seconds": 0.0, "samples": 0, "best": -1.0, "history": []}
    if a.init and a.init.endswith(".onnx"):
        if a.export_only:
            raise SystemExit("--export-only exports a checkpoint: give --init a .pt file (an .onnx is exported)")
        # an exported model (the shipped one): its weights, BatchNorms measured on a batch of training samples
        calib = [make_sample(rng, real, backgrounds, a.p_real) for _ in range(256)]
        model = onnx_init.load_onnx_weights(Reader(), a.init, to_tensor([c for c, _ in calib])).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
        t = onnx_init.sidecar_training(a.init)
        state["init"] = {"from": os.path.basename(a.init), "base": {
            "steps": t.get("steps", 0), "samples": t.get("samples", 0), "minutes": t.get("minutes", 0.0),
            "torch": t.get("torch", "")}}
        if t.get("fine_tune"):
            state["init"]["earlier"] = t["fine_tune"]
        print(f"weights from {a.init} (BatchNorms set on {len(calib)} training samples), fresh schedule",
              flush=True)
    elif a.init:
        ck = packs.load_checkpoint(a.init, device)
        model.load_state_dict(ck["model"])
        st = ck.get("state", {})
        state["init"] = {"from": os.path.basename(a.init), "base": {
            "steps": st.get("step", 0), "samples": st.get("samples", 0),
            "minutes": round(st.get("seconds", 0.0) / 60, 1), "torch": st.get("torch", "")}}
        print(f"weights from {a.init}, fresh schedule", flush=True)
    if (a.resume or a.export_only) and os.path.exists(ckpt_path) and not (a.export_only and a.init):
        ck = packs.load_checkpoint(ckpt_path, device)
        model.load_state_dict(ck["model"])
        if not a.export_only:
            opt.load_state_dict(ck["opt"])
        state = ck["state"]
        print(f"resumed at step {state['step']} ({state['seconds'] / 60:.1f} min, {state['samples']} samples)",
              flush=True)
    elif a.export_only and a.init:
        state = packs.load_checkpoint(a.init, device).get("state", state)

    def export_now(accs):
        base = (state.get("init") or {}).get("base", {})
        meta = {"version": "1", "steps": base.get("steps", 0) + state["step"],
                "samples": base.get("samples", 0) + state["samples"],
                "minutes": base.get("minutes", round(state["seconds"] / 60, 1)), "batch": state.get("batch", a.batch),
                "lr": state.get("lr", a.lr), "seed": a.seed, "real_datasets": state.get("real_datasets", []),
                "real_crops": len(real) if real else 0, "p_real": state.get("p_real", a.p_real),
                "real_crops_with_detector_corners": real.with_detection if real else 0,
                "held_out_greedy_exact_on_gt_crops": accs, "torch": torch.__version__,
                "trained_on": state.get("trained_on", device), "trained_with_torch": state.get("torch", ""),
                "params": sum(p.numel() for p in model.parameters())}
        if state.get("init"):  # the fine-tune on top of the base run, apart: it may have run on other hardware
            meta["fine_tune"] = {"from": state["init"]["from"], "trained_on": meta.pop("trained_on"),
                                 "torch": meta.pop("trained_with_torch"), "samples": state["samples"],
                                 "steps": state["step"], "minutes": round(state["seconds"] / 60, 1)}
            if state["init"].get("earlier"):
                meta["fine_tune"]["earlier"] = state["init"]["earlier"]
        diff = export(model, a.out, meta)
        print(f"exported {a.out} (opencv diff {diff:.2e})", flush=True)

    if a.export_only:
        accs = {k: evaluate(model, v) for k, v in evals.items()}
        print(f"eval: {accs}", flush=True)
        export_now(accs)
        return

    if a.recompose_share > 0 and real:
        real.slots = character_slots(model, real, device)
        print(f"recomposable real crops: {sum(s is not None for s in real.slots)} of {len(real)}", flush=True)
    state["torch"] = torch.__version__
    state["trained_on"] = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    state.update(batch=a.batch, lr=a.lr, p_real=a.p_real, two_line_share=a.two_line_share,
                 recompose_share=a.recompose_share, real_datasets=real.datasets if real else [])
    budget = a.minutes * 60

    def progress():
        if a.samples:
            return state["samples"] / a.samples
        return state["seconds"] / budget

    stream = None
    if a.workers > 0:
        samples = SampleStream(real, backgrounds, a.p_real, a.batch, seed, a.two_line_share, a.recompose_share)
        stream = iter(torch.utils.data.DataLoader(samples, batch_size=None, num_workers=a.workers, prefetch_factor=4,
                                                  persistent_workers=True))
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    t_last = time.time()
    last_ckpt = time.time()
    loss_avg = None
    while progress() < 1.0:
        lr = a.lr * (0.5 * (1 + math.cos(math.pi * progress()))) * min(1.0, (state["step"] + 1) / 200)
        for g in opt.param_groups:
            g["lr"] = lr
        if stream is not None:
            raw, shape, texts = next(stream)
            x = normalise(np.frombuffer(raw, np.uint8).reshape(shape), device)
        else:
            batch, texts = zip(*[make_sample(rng, real, backgrounds, a.p_real, a.two_line_share, a.recompose_share)
                                 for _ in range(a.batch)])
            x = to_tensor(batch).to(device)
        tgt, tgt_len = encode_targets(texts)
        logits = model(x)[:, :, 0, :]  # N C T
        logp = F.log_softmax(logits, 1).permute(2, 0, 1)  # T N C
        in_len = torch.full((len(texts),), logp.shape[0], dtype=torch.long)
        loss = ctc(logp, tgt.to(device), in_len, tgt_len)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        now = time.time()
        state["seconds"] += now - t_last
        t_last = now
        state["step"] += 1
        state["samples"] += len(texts)
        if state["step"] % 50 == 0:
            loss_v = loss.item()
            loss_avg = loss_v if loss_avg is None else 0.9 * loss_avg + 0.1 * loss_v
            print(f"step {state['step']} {state['seconds'] / 60:.1f}/{a.minutes} min {state['samples']} samples "
                  f"({100 * progress():.0f}%) loss {loss_avg:.3f} lr {lr:.2e} "
                  f"{state['samples'] / max(1, state['seconds']):.0f} samples/s", flush=True)
        done = progress() >= 1.0
        if now - last_ckpt > a.checkpoint_every or done:
            accs = {k: evaluate(model, v) for k, v in evals.items()}
            mean_acc = float(np.mean(list(accs.values()))) if accs else 0.0
            state["history"].append({"minutes": round(state["seconds"] / 60, 1), "samples": state["samples"],
                                     "acc": accs})
            print(f"eval at {state['seconds'] / 60:.1f} min: {accs}", flush=True)
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state}, ckpt_path + ".tmp")
            os.replace(ckpt_path + ".tmp", ckpt_path)
            # The final model is the last one, not the best on the held-out sets (that would flatter them).
            if (mean_acc > state["best"] or a.smoke or done) and not a.no_export:
                state["best"] = mean_acc
                export_now(accs)
                torch.save({"model": model.state_dict()}, os.path.join(a.run_dir, "best.pt"))
            last_ckpt = time.time()
            t_last = last_ckpt  # evaluation time is not training time
    print("done", flush=True)


if __name__ == "__main__":
    main()
