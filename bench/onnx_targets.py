"""The ONNX targets, measured: run with Debian's /usr/bin/python3 (it has torch and onnx).

1. Import time of a 1M-parameter model (target: under 0.5 s): `verdant import` of an MLP
   784-1024-256-10 (1,068,810 parameters) from torch.onnx.export, the whole process (parse,
   onnx::checker, shape inference, mapping, checkpoint written); also `verdant info`.
2. The imported lenet5-sized CNN trains per epoch as fast as the built-in lenet5 of the same
   shape (target: ratio 1.0): PyTorch's LeNet-5 with Verdant's layer shapes, exported and given
   to `verdant train --model lenet5.onnx`, against `--model lenet5`; same threads, data slice,
   batch and optimizer; runs interleaved, median epoch seconds.
3. verdant-edge latency of the imported model equals that of the same model trained in Verdant
   (target: ratio 1.0): the PyTorch LeNet-5, the Verdant-trained lenet5, and that one exported
   to ONNX and imported again, each exported to int8 and fp32 .vdm; `verdant-edge run` on test
   images (1 thread, batch 1), interleaved, median latency.

Usage: /usr/bin/python3 bench/onnx_targets.py --verdant build/src/cli/verdant
           --edge build/src/edge/verdant-edge [--rounds 3] [--threads 2] [--limit-train 10000]
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn as nn


def run(*args):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                       env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"))
    if r.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed:\n{r.stderr}{r.stdout}")
    return r.stdout


def timed(*args):
    t0 = time.perf_counter()
    out = run(*args)
    return time.perf_counter() - t0, out


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def export(model, path, shape=(1, 1, 28, 28)):
    torch.onnx.export(model.eval(), torch.zeros(*shape), path, opset_version=17,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--verdant", required=True)
    ap.add_argument("--edge", required=True)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit-train", type=int, default=10000)
    ap.add_argument("--edge-images", type=int, default=2000)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="verdant_onnx_targets_")
    w = lambda name: os.path.join(work, name)
    torch.manual_seed(0)
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; {a.rounds} interleaved rounds")

    # 1. Import time.
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 256),
                        nn.ReLU(), nn.Linear(256, 10))
    params = sum(p.numel() for p in mlp.parameters())
    export(mlp, w("mlp1m.onnx"))
    imports, infos = [], []
    for _ in range(a.rounds):
        imports.append(timed(a.verdant, "import", w("mlp1m.onnx"), "--out", w("mlp1m.vckpt"))[0])
        infos.append(timed(a.verdant, "info", w("mlp1m.onnx"))[0])
    imp, info = statistics.median(imports), statistics.median(infos)
    print(f"\n1. import of a {params:,}-parameter MLP ({os.path.getsize(w('mlp1m.onnx')):,} B):"
          f" verdant import {imp:.3f} s, verdant info {info:.3f} s (whole processes, median);"
          f" target < 0.5 s: {'met' if imp < 0.5 else 'NOT met'}")

    # 2. Training speed of an imported lenet5-sized CNN against the built-in lenet5.
    lenet = nn.Sequential(nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(800, 500),
                          nn.ReLU(), nn.Linear(500, 10))
    export(lenet, w("lenet5.onnx"))
    assert "431,080" in run(a.verdant, "info", w("lenet5.onnx")), "not lenet5's shape"
    common = ["--data", a.data, "--epochs", "1", "--limit-train", a.limit_train, "--threads",
              a.threads, "--no-energy", "--no-eval"]
    secs = {"imported": [], "built-in": []}
    for r in range(a.rounds):
        for name, spec in (("imported", w("lenet5.onnx")), ("built-in", "lenet5")):
            out = w(f"train_{name}_{r}")
            run(a.verdant, "train", "--model", spec, "--out", out, *common)
            secs[name].append(json.load(open(os.path.join(out, "results.json")))
                              ["timing"]["median_epoch_seconds"])
    ti, tb = statistics.median(secs["imported"]), statistics.median(secs["built-in"])
    # Shared machines drift between rounds: the ratio within each round (the two runs back to
    # back) is the steadier figure.
    paired = statistics.median(i / b for i, b in zip(secs["imported"], secs["built-in"]))
    print(f"\n2. training, {a.limit_train} images, {a.threads} threads, batch 64, SGD: imported "
          f"lenet5.onnx {ti:.2f} s/epoch, built-in lenet5 {tb:.2f} s/epoch (medians), ratio "
          f"{ti / tb:.3f}, median ratio within rounds {paired:.3f}")
    print("   rounds, s/epoch: imported " + " ".join(f"{x:.2f}" for x in secs["imported"]) +
          "; built-in " + " ".join(f"{x:.2f}" for x in secs["built-in"]))

    # 3. verdant-edge latency: the imported model against lenet5 trained in Verdant, and that
    # trained model again after a trip through ONNX (export, then import: the same weights).
    images = os.path.join(a.data, "t10k-images-idx3-ubyte.gz")
    trained = w("train_built-in_0/checkpoint.vckpt")
    run(a.verdant, "export", trained, "--format", "onnx", "--out", w("verdant_lenet5.onnx"))
    models = {"imported from PyTorch": w("lenet5.onnx"), "trained in Verdant": trained,
              "Verdant's via ONNX": w("verdant_lenet5.onnx")}
    files = {name: f"m{k}" for k, name in enumerate(models)}
    lat, kernels = {}, "?"
    for precision in ("int8", "fp32"):
        for name, spec in models.items():
            extra = ["--calibration", a.data, "--agreement-samples", "0"] if precision == "int8" else []
            run(a.verdant, "export", spec, "--precision", precision,
                "--out", w(f"{files[name]}_{precision}.vdm"), *extra)
        for r in range(a.rounds):
            for name in models:
                out = run(a.edge, "run", w(f"{files[name]}_{precision}.vdm"), "--input", images,
                          "--limit", a.edge_images, "--show", "0")
                us = float(re.search(r"latency per inference: median ([0-9.]+) us", out).group(1))
                kernels = re.search(r"kernels (\S+)", out).group(1)
                lat.setdefault((precision, name), []).append(us)
    print(f"\n3. verdant-edge run, {a.edge_images} test images, 1 thread, batch 1, kernels "
          f"{kernels}; ratios against the model trained in Verdant:")
    for precision in ("int8", "fp32"):
        ref = lat[(precision, "trained in Verdant")]
        for name in models:
            us = lat[(precision, name)]
            paired = statistics.median(x / y for x, y in zip(us, ref))
            print(f"   {precision} {name}: median {statistics.median(us):.1f} us, ratio "
                  f"{statistics.median(us) / statistics.median(ref):.3f}, median ratio within "
                  f"rounds {paired:.3f}; rounds {us}")
    print(f"\n(work files in {work})")


if __name__ == "__main__":
    main()
