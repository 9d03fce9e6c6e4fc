"""Vigil plate detector network (CenterNet-style, small FPN fused back at stride 4).

Output contract (models/detector.json): "out" 1x11x(H/4)x(W/4):
  ch0     plate-centre heatmap after sigmoid
  ch1-2   sub-cell centre offset (x, y) after sigmoid, centre_px = (cell + offset) * 4
  ch3-10  corners TL, TR, BR, BL as (dx, dy) from the centre in units of CORNER_SCALE input pixels
Only Conv/BatchNorm(folded)/ReLU/Upsample(nearest)/Add/Concat/Sigmoid in the exported graph.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

STRIDE = 4
CORNER_SCALE = 16.0


def cbr(cin, cout, stride=1, k=3):
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class PlateDetector(nn.Module):
    def __init__(self, widths=(16, 24, 48, 64, 96), fpn=32, head=32, stem_extra=True):
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        self.stem = nn.Sequential(cbr(3, w0, 2), cbr(w0, w1, 2), *([cbr(w1, w1)] if stem_extra else []))  # /4
        self.s8 = nn.Sequential(cbr(w1, w2, 2), cbr(w2, w2))
        self.s16 = nn.Sequential(cbr(w2, w3, 2), cbr(w3, w3))
        self.s32 = nn.Sequential(cbr(w3, w4, 2), cbr(w4, w4), cbr(w4, w4))
        self.lat5 = cbr(w4, fpn, k=1)
        self.lat4 = cbr(w3, fpn, k=1)
        self.lat3 = cbr(w2, fpn, k=1)
        self.lat2 = cbr(w1, fpn, k=1)
        self.smooth4 = cbr(fpn, fpn)
        self.smooth3 = cbr(fpn, fpn)
        self.head = cbr(fpn, head)
        self.hm = nn.Conv2d(head, 1, 1)
        self.off = nn.Conv2d(head, 2, 1)
        self.cor = nn.Conv2d(head, 8, 1)
        nn.init.constant_(self.hm.bias, -4.6)  # prior 0.01
        nn.init.zeros_(self.off.bias)
        nn.init.normal_(self.cor.weight, std=0.01)
        nn.init.zeros_(self.cor.bias)

    @staticmethod
    def up(x):
        return F.interpolate(x, scale_factor=2.0, mode="nearest")

    def forward_raw(self, x):
        c2 = self.stem(x)
        c3 = self.s8(c2)
        c4 = self.s16(c3)
        c5 = self.s32(c4)
        p = self.lat5(c5)
        p = self.smooth4(self.lat4(c4) + self.up(p))
        p = self.smooth3(self.lat3(c3) + self.up(p))
        p = self.lat2(c2) + self.up(p)
        f = self.head(p)
        return self.hm(f), self.off(f), self.cor(f)

    def forward(self, x):
        hm, off, cor = self.forward_raw(x)
        return torch.cat([torch.sigmoid(hm), torch.sigmoid(off), cor], 1)


def count_params(m):
    return sum(p.numel() for p in m.parameters())


def export_onnx(model, path, h=288, w=512):
    model = model.eval().cpu()
    dummy = torch.zeros(1, 3, h, w)
    torch.onnx.export(
        model, dummy, path, opset_version=11, input_names=["image"], output_names=["out"],
        dynamic_axes={"image": {2: "H", 3: "W"}, "out": {2: "h", 3: "w"}},
        do_constant_folding=True,
    )
    strip_identity(path)


def strip_identity(path):
    """torch 1.13 deduplicates equal initializers through Identity nodes, which OpenCV 4.6 rejects:
    replace each Identity of an initializer by a copy of that initializer."""
    import onnx
    from onnx import numpy_helper
    g = onnx.load(path)
    inits = {i.name: i for i in g.graph.initializer}
    keep = []
    for n in g.graph.node:
        if n.op_type == "Identity" and n.input[0] in inits:
            arr = numpy_helper.to_array(inits[n.input[0]])
            g.graph.initializer.append(numpy_helper.from_array(arr.copy(), n.output[0]))
        else:
            keep.append(n)
    del g.graph.node[:]
    g.graph.node.extend(keep)
    onnx.checker.check_model(g)
    onnx.save(g, path)
