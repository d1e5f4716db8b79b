"""Verdant's ONNX exports in runtimes that are not Verdant (run by CTest with /usr/bin/python3).

fp32: OpenCV 4.6's cv2.dnn.readNetFromONNX runs the export of a trained `mlp`, a trained
`lenet5` and a model imported from PyTorch; its outputs match Verdant's within 1e-4 (relative).
int8: OpenCV 4.6 cannot run QDQ with constant weights and onnx 1.12 has no reference evaluator,
so onnx_numpy.py evaluates the QDQ file; its predictions must equal verdant-edge's on at least
99.5% of the images (the whole test set for `mlp`, a 2,000-image slice for `lenet5`).
Every exported file passes onnx.checker.check_model(full_check=True).
"""
import os
import sys

import numpy as np

import fmnist

try:
    import cv2
    import onnx
    import torch
    import torch.nn as nn
except ImportError as e:
    print(f"{e.name} is not installed for this interpreter; skipping")
    sys.exit(fmnist.SKIP)

import onnx_numpy


def imported_cnn():
    """A PyTorch CNN with the layers import maps (random weights, eval mode)."""
    torch.manual_seed(1)
    m = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.LeakyReLU(0.1),
        nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, stride=2, dilation=2), nn.GELU(),
        nn.AvgPool2d(2, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 32),
        nn.BatchNorm1d(32), nn.Tanh(), nn.Linear(32, 10))
    for b in m.modules():
        if isinstance(b, (nn.BatchNorm1d, nn.BatchNorm2d)):
            b.running_mean.uniform_(-0.5, 0.5)
            b.running_var.uniform_(0.5, 2.0)
            b.weight.data.uniform_(0.5, 1.5)
            b.bias.data.uniform_(-0.3, 0.3)
    return m.eval()


def main():
    ap = fmnist.parser(__doc__)
    a = ap.parse_args()
    w = fmnist.work_folder(a.work)
    xte, _ = fmnist.load(a.data, False)
    images = fmnist.find(a.data, "t10k-images-idx3-ubyte")
    check = fmnist.Checks()

    quick = ["--data", a.data, "--epochs", "1", "--threads", "2", "--no-energy", "--no-eval"]
    fmnist.run(a.verdant, "train", "--model", "mlp", "--limit-train", "6000", "--out",
               w("mlp"), *quick)
    fmnist.run(a.verdant, "train", "--model", "lenet5", "--limit-train", "3000", "--out",
               w("lenet5"), *quick)
    torch.onnx.export(imported_cnn(), torch.zeros(1, 1, 28, 28), w("torch_cnn.onnx"),
                      opset_version=13, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
                      training=torch.onnx.TrainingMode.PRESERVE)
    models = {"mlp": w("mlp/checkpoint.vckpt"), "lenet5": w("lenet5/checkpoint.vckpt"),
              "imported": w("torch_cnn.onnx")}

    # fp32 in OpenCV.
    n = 1000
    for name, spec in models.items():
        out = w(name + ".onnx")
        fmnist.run(a.verdant, "export", spec, "--format", "onnx", "--out", out)
        onnx.checker.check_model(onnx.load(out), full_check=True)
        ours, _ = fmnist.logits(a.logits, spec, a.data, n, w("logits.bin"))
        net = cv2.dnn.readNetFromONNX(out)
        net.setInput(xte[:n])
        theirs = net.forward()
        ok, worst = fmnist.close(theirs, ours)
        check(ok, f"{name}: OpenCV {cv2.__version__} runs the fp32 export; outputs within 1e-4 "
                  f"of Verdant's on {n} test images (worst {worst:.2e} of the bound)")

    # int8: the QDQ file against verdant-edge running the .vdm with the same quantization.
    for name, count in (("mlp", len(xte)), ("lenet5", 2000)):
        qdq, vdm = w(name + "_int8.onnx"), w(name + "_int8.vdm")
        common = ["--precision", "int8", "--calibration", a.data, "--agreement-samples", "0"]
        fmnist.run(a.verdant, "export", models[name], "--format", "onnx", "--out", qdq, *common)
        fmnist.run(a.verdant, "export", models[name], "--out", vdm, *common)
        proto = onnx.load(qdq)
        onnx.checker.check_model(proto, full_check=True)
        kinds = {node.op_type for node in proto.graph.node}
        check({"QuantizeLinear", "DequantizeLinear"} <= kinds,
              f"{name}: int8 export is QDQ ({', '.join(sorted(kinds))})")
        text = fmnist.run(a.edge, "run", vdm, "--input", images, "--limit", count, "--show", count)
        edge = fmnist.edge_predictions(text)
        ours = np.concatenate([onnx_numpy.run(proto, xte[b:min(b + 500, count)]).argmax(1)
                               for b in range(0, count, 500)])
        same = float((ours == edge).mean())
        check(len(edge) == count and same >= 0.995,
              f"{name}: NumPy QDQ evaluator reproduces verdant-edge's int8 predictions on "
              f"{100 * same:.2f}% of {count} test images")
    return check.exit_code()


if __name__ == "__main__":
    sys.exit(main())
