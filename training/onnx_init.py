"""Training weights back from an exported model: --init MODEL.onnx in both training scripts.

The exports fold each BatchNorm into the convolution before it, so an ONNX file holds, per convolution, a
weight and a bias and nothing of the normalisation statistics. The weights are put back into the torch
network (convolutions in the order they run, checked shape by shape) and each BatchNorm is set so that it
passes its input through and adds the folded bias, with running statistics measured on batches of the
training data: in training mode, where a BatchNorm normalises by the batch's own statistics, the network
then starts from what the ONNX computes instead of from a rescaled copy of it. The result is checked
against OpenCV DNN running the ONNX itself.

This is what lets a user fine-tune the shipped models on their own plates, and a machine that has only the
repository (no checkpoints) go on training from them.
"""
import json
import os

import cv2
import numpy as np
import torch
import torch.nn as nn


def conv_weights(onnx_path):
    """[(weight, bias or None), ...] of the model's convolutions in graph order (the order they run in), as
    OpenCV DNN reads them: the runtime that will run the fine-tuned model, and no `onnx` package needed on a
    training machine."""
    net = cv2.dnn.readNetFromONNX(onnx_path)
    out = []
    for name in net.getLayerNames():
        lid = net.getLayerId(name)
        if net.getLayer(lid).type != "Convolution":
            continue
        w = np.array(net.getParam(lid, 0), np.float32)
        try:
            b = np.array(net.getParam(lid, 1), np.float32).reshape(-1)
        except cv2.error:  # a convolution without bias
            b = None
        out.append((w, b))
    return out


def conv_outputs(model, x):
    """[(Conv2d module, its output), ...] of one eval-mode forward pass over x, in the order they ran."""
    ran = []
    hooks = [m.register_forward_hook(lambda mod, i, o: ran.append((mod, o.detach())))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model.eval()
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return ran


def convs_in_run_order(model, example):
    """The model's Conv2d modules in the order a forward pass runs them, each with the BatchNorm2d that
    follows it in its Sequential (None for a convolution with its own bias)."""
    ran = [conv for conv, _ in conv_outputs(model, example)]
    modules = list(model.modules())
    after = {id(m): (modules[i + 1] if i + 1 < len(modules) else None) for i, m in enumerate(modules)}
    pairs = []
    for conv in ran:
        bn = after[id(conv)]
        if conv.bias is None:
            if not isinstance(bn, nn.BatchNorm2d):
                raise ValueError("a convolution without bias must be followed by a BatchNorm2d")
            pairs.append((conv, bn))
        else:
            pairs.append((conv, None))
    return pairs


def load_onnx_weights(model, onnx_path, calibration):
    """Puts the ONNX file's weights into `model` (same architecture, on the CPU) and sets its BatchNorms from
    `calibration`, a float tensor batch of training inputs. Returns the model in eval mode."""
    model = model.cpu()
    pairs = convs_in_run_order(model, calibration[:1])
    weights = conv_weights(onnx_path)
    if len(weights) != len(pairs):
        raise SystemExit(f"{onnx_path}: {len(weights)} convolutions, the network here has {len(pairs)}: "
                         "not a model of this architecture")
    for k, ((conv, bn), (w, b)) in enumerate(zip(pairs, weights)):
        if tuple(w.shape) != tuple(conv.weight.shape):
            raise SystemExit(f"{onnx_path}: convolution {k} has weights {tuple(w.shape)}, the network here "
                             f"{tuple(conv.weight.shape)}: not a model of this architecture")
        b = np.zeros(w.shape[0], np.float32) if b is None else b
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(w))
            if bn is None:
                conv.bias.copy_(torch.from_numpy(b))
            else:  # for now: pass through and add the folded bias
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(b))
    # the statistics of what each BatchNorm receives, on real inputs
    stats = {id(conv): y for conv, y in conv_outputs(model, calibration)}
    with torch.no_grad():
        for conv, bn in pairs:
            if bn is None:
                continue
            y = stats[id(conv)]
            mean, var = y.mean((0, 2, 3)), y.var((0, 2, 3), unbiased=False)
            # eval: weight * (x - mean) / sqrt(var + eps) + bias == x + folded bias
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.weight.copy_(torch.sqrt(var + bn.eps))
            bn.bias.add_(mean)
    check_against_opencv(model, onnx_path, calibration[:2])
    return model


def check_against_opencv(model, onnx_path, x, tolerance=1e-3):
    model.eval()
    net = cv2.dnn.readNetFromONNX(onnx_path)
    net.setInput(x.numpy())
    got = net.forward()
    with torch.no_grad():
        want = model(x).numpy()
    diff = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
    if diff > tolerance:
        raise SystemExit(f"{onnx_path}: the weights read back compute something else than OpenCV DNN runs "
                         f"(max difference {diff}): not a model of this architecture")
    return diff


def sidecar_training(onnx_path):
    """The "training" record of the model's JSON sidecar ({} when there is none)."""
    side = os.path.splitext(onnx_path)[0] + ".json"
    if not os.path.exists(side):
        return {}
    with open(side) as f:
        return json.load(f).get("training", {})
