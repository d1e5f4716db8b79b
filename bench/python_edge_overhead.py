#!/usr/bin/python3
"""verdant.edge.Model.predict's per-call overhead over the C++ call, batch 1 (target: under
2 us). The same sample, float32 and C-contiguous (read in place), through Model.predict in a
Python loop and through runtime::Model::predict in a C++ loop (the binding's
cpp_predict_seconds), interleaved; medians and their difference. The model is an int8 `mlp`
(trained briefly and exported with the CLI unless --model is given).

    PYTHONPATH=build/python /usr/bin/python3 bench/python_edge_overhead.py \\
        --verdant build/src/cli/verdant
"""
import argparse
import gzip
import os
import statistics
import struct
import subprocess
import tempfile
import time

import numpy as np

import verdant

DATA = "/usr/share/datasets/fashion-mnist"


def first_image():
    with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz"), "rb") as f:
        data = f.read(16 + 784)
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(28, 28)


def export_mlp(verdant_exe, folder):
    run = os.path.join(folder, "run")
    subprocess.run([verdant_exe, "train", "--model", "mlp", "--epochs", "1", "--limit-train",
                    "5000", "--out", run], check=True, capture_output=True)
    model = os.path.join(folder, "mlp_int8.vdm")
    subprocess.run([verdant_exe, "export", os.path.join(run, "checkpoint.vckpt"), "--precision",
                    "int8", "--calibration", DATA, "--out", model], check=True,
                   capture_output=True)
    return model


def python_seconds(model, x, calls):
    predict = model.predict
    t0 = time.perf_counter()
    for _ in range(calls):
        predict(x)
    return (time.perf_counter() - t0) / calls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="a .vdm (default: export an int8 mlp with --verdant)")
    ap.add_argument("--verdant", default="build/src/cli/verdant")
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        path = a.model or export_mlp(a.verdant, folder)
        model = verdant.edge.Model(path)
        info = model.info()
        img = first_image()
        x = (img.astype(np.float32) * np.float32(info["byte_scale"])
             + np.float32(info["byte_offset"]))  # (28, 28) float32, C-contiguous
        print(f"{os.path.basename(path)}: {info['input_shape']} -> {info['output_size']}, "
              f"kernels {info['kernels']}, one thread, batch 1")
        py, cpp, u8 = [], [], []
        python_seconds(model, x, 1000)  # warm-up
        for _ in range(a.rounds):
            cpp.append(model._model.cpp_predict_seconds(x, a.calls))
            py.append(python_seconds(model, x, a.calls))
            u8.append(python_seconds(model, img, a.calls))
        c, p, b = (statistics.median(v) * 1e6 for v in (cpp, py, u8))
        diffs = sorted((q - r) * 1e6 for q, r in zip(py, cpp))
        print(f"C++ runtime::Model::predict   {c:.2f} us per call (median of {a.rounds} x "
              f"{a.calls})")
        print(f"Model.predict(float32 (28,28)) {p:.2f} us per call")
        print(f"Model.predict(uint8 (28,28))   {b:.2f} us per call (byte transform in C++)")
        print(f"overhead over the C++ call: {p - c:.2f} us per call (per round "
              f"{diffs[0]:.2f}..{diffs[-1]:.2f} us; target < 2 us)")


if __name__ == "__main__":
    main()
