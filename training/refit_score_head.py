#!/usr/bin/python3
"""Re-fits the plate detector's centre score with a small extra head, leaving its corners untouched.

Run with Debian's torch:  /usr/bin/python3 training/refit_score_head.py --data-root /work/shared/data \\
    --detector models/detector.onnx --out /tmp/detector.onnx

The detector (models/detector.onnx) places plate corners that the reader was trained along; retraining it
moves them and costs reads (MODEL_CARD: the session-13 tilt fine-tune). Its centre score, though,
underfits small plates: on its own Spanish training images it finds 76% of the plates at its threshold.
This tool keeps every existing weight and adds a residual score head on the detector's last shared
feature map F (stride 4):

    score = sigmoid(hm(F) + conv1x1(relu(conv3x3(F))))

The new last layer starts at zero, so training starts from the shipped scores exactly, and the offset
and corner outputs are bit-identical to the shipped model's. The features of each training view are
computed once with OpenCV's DNN (the same pre-processing as src/detect/detector.cpp), and only the new
head is trained on them with the detector's focal loss (train_detector.heatmap_loss), so a run takes minutes
on a CPU. Views: every training image as the full pass sees it (long side 512), every negative, and
random views at other scales and turns, and synthetic plates of every country in plate-free photos, as the
detector's own training made them (train_detector.Sampler): the refine, level, tile and close-up passes run
the same network at other scales, and the layouts no real set has must keep their scores.

The exported graph adds Conv, Relu and Add nodes before the heatmap's Sigmoid; OpenCV 4.6 runs it. The
sidecar is copied, with a "score_head" entry recording the run.
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
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_detector as td  # noqa: E402
from det_model import STRIDE  # noqa: E402

FEATURE = "/head/head.2/Relu_output_0"  # the shared feature map the hm/off/cor 1x1 heads read
LOGIT = "/hm/Conv_output_0"             # the heatmap logits before the Sigmoid
# OpenCV names a layer after its ONNX node
FEATURE_LAYER, LOGIT_LAYER = "onnx_node!/head/head.2/Relu", "onnx_node!/hm/Conv"


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


class ScoreHead(nn.Module):
    def __init__(self, channels, hidden, layers=1):
        super().__init__()
        self.c1 = nn.Conv2d(channels, hidden, 3, 1, 1)
        self.mid = nn.ModuleList([nn.Conv2d(hidden, hidden, 3, 1, 1) for _ in range(layers - 1)])
        self.c2 = nn.Conv2d(hidden, 1, 1)
        nn.init.zeros_(self.c2.weight)
        nn.init.zeros_(self.c2.bias)

    def forward(self, f):
        x = torch.relu(self.c1(f))
        for m in self.mid:
            x = torch.relu(m(x))
        return self.c2(x)


def padded_blob(rgb, pad):
    """RGB uint8 HxW -> 1x3xH'xW' float blob /255, zero-padded right/bottom to multiples of pad."""
    h, w = rgb.shape[:2]
    H, W = (h + pad - 1) // pad * pad, (w + pad - 1) // pad * pad
    x = np.zeros((H, W, 3), np.float32)
    x[:h, :w] = rgb.astype(np.float32) / 255.0
    return x.transpose(2, 0, 1)[None].copy()


def full_view(rgb, boxes, size):
    """The full pass's view: long side `size` (INTER_AREA down, INTER_LINEAR up, as detector.cpp)."""
    h, w = rgb.shape[:2]
    sc = size / max(h, w)
    nw, nh = max(1, round(w * sc)), max(1, round(h * sc))
    r = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR if sc > 1 else cv2.INTER_AREA)
    plates = [(td.box_corners(b * sc).astype(np.float32), False) for b in boxes]
    return r, plates


class Views:
    """Features, old logits, targets and ignore masks of training views, grouped by shape."""

    def __init__(self):
        self.by_shape = {}

    def add(self, net, rgb, plates, pad):
        blob = padded_blob(rgb, pad)
        net.setInput(blob)
        f, logit = net.forward([FEATURE_LAYER, LOGIT_LAYER])
        H, W = blob.shape[2:]
        h, w = H // STRIDE, W // STRIDE
        hm, ign, _ = td.make_targets(plates, max(H, W), 1.0)
        hm, ign = hm[:h, :w], ign[:h, :w]
        # padding outside the image: the C++ never takes peaks there; do not learn from it
        vh, vw = -(-rgb.shape[0] // STRIDE), -(-rgb.shape[1] // STRIDE)
        ign[vh:, :] = 1
        ign[:, vw:] = 1
        ign[hm >= 1.0] = 0
        self.by_shape.setdefault((h, w), []).append(
            (f[0].astype(np.float16), logit[0].astype(np.float32), hm[None], ign[None]))

    def count(self):
        return sum(len(v) for v in self.by_shape.values())

    def batches(self, rng, batch):
        out = []
        for items in self.by_shape.values():
            order = rng.permutation(len(items))
            for i in range(0, len(order), batch):
                out.append([items[j] for j in order[i:i + batch]])
        rng.shuffle(out)
        return out


def stack(items):
    f = torch.from_numpy(np.stack([it[0] for it in items]).astype(np.float32))
    lg = torch.from_numpy(np.stack([it[1] for it in items]))
    hm = torch.from_numpy(np.stack([it[2] for it in items]))
    ign = torch.from_numpy(np.stack([it[3] for it in items]))
    return f, lg, hm, ign


def graft(src_onnx, head, dst_onnx):
    """Writes src_onnx with the score head added before the heatmap Sigmoid."""
    import onnx
    from onnx import helper, numpy_helper
    g = onnx.load(src_onnx)
    nodes = list(g.graph.node)
    sig = [n for n in nodes if n.op_type == "Sigmoid" and n.input[0] == LOGIT]
    if len(sig) != 1:
        raise SystemExit(f"{src_onnx}: no Sigmoid reading {LOGIT}; not the detector this tool knows")
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in head.state_dict().items()}
    for k, v in sd.items():
        g.graph.initializer.append(numpy_helper.from_array(v, "score_head." + k))
    convs = ["c1"] + [f"mid.{i}" for i in range(len(head.mid))]
    new, x = [], FEATURE
    for i, c in enumerate(convs):
        new.append(helper.make_node("Conv", [x, f"score_head.{c}.weight", f"score_head.{c}.bias"],
                                    [f"/score_head/conv{i}"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]))
        new.append(helper.make_node("Relu", [f"/score_head/conv{i}"], [f"/score_head/relu{i}"]))
        x = f"/score_head/relu{i}"
    new.append(helper.make_node("Conv", [x, "score_head.c2.weight", "score_head.c2.bias"], ["/score_head/c2"],
                                kernel_shape=[1, 1]))
    new.append(helper.make_node("Add", [LOGIT, "/score_head/c2"], ["/score_head/logit"]))
    sig[0].input[0] = "/score_head/logit"
    at = nodes.index(sig[0])
    del g.graph.node[:]
    g.graph.node.extend(nodes[:at] + new + nodes[at:])
    onnx.checker.check_model(g)
    onnx.save(g, dst_onnx)


def check_graft(src_onnx, dst_onnx, head, rgb, pad):
    """The grafted model in cv2.dnn: offsets and corners equal the source's, scores equal the head's."""
    blob = padded_blob(rgb, pad)
    a = cv2.dnn.readNetFromONNX(src_onnx)
    a.setInput(blob)
    fa, la, oa = a.forward([FEATURE_LAYER, LOGIT_LAYER, "out"])
    b = cv2.dnn.readNetFromONNX(dst_onnx)
    b.setInput(blob)
    ob = b.forward("out")
    with torch.no_grad():
        want = torch.sigmoid(torch.from_numpy(la) + head(torch.from_numpy(fa))).numpy()[0, 0]
    d_rest = float(np.abs(ob[0, 1:] - oa[0, 1:]).max())
    d_score = float(np.abs(ob[0, 0] - want).max())
    if d_rest > 1e-5 or d_score > 1e-4:
        raise SystemExit(f"grafted model differs: offsets/corners by {d_rest}, scores by {d_score}")
    return d_rest, d_score


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", help="folder holding the detector's default training sets")
    ap.add_argument("--train-set", action="append", help="PATH[#SEL], repeatable (default: the --data-root sets)")
    ap.add_argument("--negatives", help="folder of plate-free images (default DATA_ROOT/negatives)")
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--detector", default=os.path.join(td.REPO, "models", "detector.onnx"))
    ap.add_argument("--out", required=True, help="the detector with the score head (sidecar written beside it)")
    ap.add_argument("--hidden", type=int, default=16, help="channels of the head's 3x3 layer")
    ap.add_argument("--layers", type=int, default=1, help="3x3 layers in the head")
    ap.add_argument("--pos-weight", type=float, default=1.0, help="weight of plate centres in the focal loss")
    ap.add_argument("--random-views", type=int, default=3000, help="views at other scales and turns")
    ap.add_argument("--synthetic-views", type=int, default=1500,
                    help="synthetic plates in plate-free photos (the layouts no real set has), as the detector's training made them")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, help="at most this many images per set (a quick try)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cv2.setNumThreads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)

    side = json.load(open(os.path.splitext(a.detector)[0] + ".json"))
    size, pad = side["input_size"], side["pad_multiple"]
    specs = a.train_set or (td.DEFAULT_TRAIN if a.data_root else [])
    if not specs:
        raise SystemExit("no training sets: give --data-root DIR or --train-set PATH[#SEL]")
    sets = [(td.set_name(s), td.parse_set(s, a)[1]) for s in specs]
    real = td.RealImages(sets, a.limit)
    neg_dir = a.negatives or (os.path.join(a.data_root, "negatives") if a.data_root else None)
    negs = td.load_negatives(neg_dir, a.limit) if neg_dir and os.path.isdir(neg_dir) else []
    log(f"{len(real.items)} images ({real.stats}), {len(negs)} negatives")

    net = cv2.dnn.readNetFromONNX(a.detector)
    views = Views()
    t0 = time.time()
    for _, rgb, boxes in real.items:
        views.add(net, *full_view(rgb, boxes, size), pad)
    for rgb in negs:
        views.add(net, *full_view(rgb, np.zeros((0, 4), np.float32), size), pad)
    sampler = td.Sampler(real, negs, rng, size=320, synth_p=0.0)
    for _ in range(a.random_views):
        views.add(net, *sampler.real_crop(), pad)
    if a.synthetic_views and (not negs or sampler.render is None):
        raise SystemExit("--synthetic-views needs negatives (backgrounds) and training/synth.py")
    for _ in range(a.synthetic_views):
        views.add(net, *sampler.synthetic(), pad)
    log(f"{views.count()} views in {len(views.by_shape)} shapes, features in {time.time() - t0:.0f} s")

    head = ScoreHead(next(iter(views.by_shape.values()))[0][0].shape[0], a.hidden, a.layers)
    opt = torch.optim.Adam(head.parameters(), lr=a.lr)
    n_batches = len(views.batches(np.random.default_rng(0), a.batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, a.lr, total_steps=a.epochs * n_batches, pct_start=0.1)
    for ep in range(a.epochs):
        tot = npos = 0.0
        for items in views.batches(rng, a.batch):
            f, lg, hm, ign = stack(items)
            loss, npb = td.heatmap_loss(lg + head(f), hm, ign, a.pos_weight)
            opt.zero_grad()
            (loss / npb.clamp(min=1.0)).backward()
            opt.step()
            sched.step()
            tot += float(loss)
            npos += float(npb)
        log(f"epoch {ep + 1}/{a.epochs}: heatmap loss {tot / max(npos, 1):.4f} per plate")

    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    graft(a.detector, head, a.out)
    d_rest, d_score = check_graft(a.detector, a.out, head, real.items[0][1] if real.items else negs[0], pad)
    side.setdefault("training", {})["score_head"] = {
        "tool": "training/refit_score_head.py", "from": os.path.basename(a.detector), "hidden": a.hidden, "layers": a.layers, "pos_weight": a.pos_weight,
        "views": views.count(), "random_views": a.random_views, "synthetic_views": a.synthetic_views, "epochs": a.epochs, "lr": a.lr, "seed": a.seed,
        "train_counts": real.stats, "negatives": len(negs),
        "check_vs_source": {"offsets_corners_max_abs_diff": d_rest, "score_max_abs_diff_vs_torch": d_score}}
    with open(os.path.splitext(a.out)[0] + ".json", "w") as fh:
        json.dump(side, fh, indent=2)
    log(f"wrote {a.out} (+ .json); corners and offsets equal the source's to {d_rest:.1e}")


if __name__ == "__main__":
    main()
