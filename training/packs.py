"""Helpers the two training scripts share for training away from the datasets (a lent GPU machine):
versioned pack files, checkpoints that load on old and new torch, per-worker set-up of sample makers."""
import pickle

import cv2
import numpy as np
import torch

PACK_VERSION = 1


def write_pack(path, kind, payload):
    """payload: a dict of plain Python/numpy values; `kind` ("reader", "detector") is checked on reading."""
    with open(path, "wb") as f:
        pickle.dump({"kind": kind, "version": PACK_VERSION, **payload}, f, protocol=4)


def read_pack(path, kind):
    with open(path, "rb") as f:
        pack = pickle.load(f)
    if pack.get("kind") != kind or pack.get("version") != PACK_VERSION:
        raise SystemExit(f"{path}: a {pack.get('kind')} pack, version {pack.get('version')}; this script reads "
                         f"{kind} packs, version {PACK_VERSION}: write it again with --save-pack")
    return pack


def encode_jpeg(img, quality):
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def decode_image(data, flags=cv2.IMREAD_COLOR):
    return cv2.imdecode(np.frombuffer(data, np.uint8), flags)


def load_checkpoint(path, device):
    """torch.load of our own checkpoints (state dicts plus plain training state), on any torch version."""
    try:
        return torch.load(path, map_location=device, weights_only=False)
    except TypeError:  # torch without the weights_only argument
        return torch.load(path, map_location=device)


def worker_rng(seed):
    """In a DataLoader worker (or in the main process): one thread each, and a random stream of its own."""
    info = torch.utils.data.get_worker_info()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    return np.random.default_rng([seed, info.id if info else 0])
