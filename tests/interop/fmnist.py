"""Shared by the Python ONNX tests: Fashion-MNIST as Verdant normalises it, and running the
Verdant tools."""
import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np

MEAN, STD = 0.2860, 0.3530  # data::kFashionMnistMean / kFashionMnistStd
SKIP = 77  # CTest's SKIP_RETURN_CODE


def parser(doc):
    """The options every ONNX test script takes (CTest passes the built tools)."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--verdant", required=True)
    ap.add_argument("--edge", required=True)
    ap.add_argument("--logits", required=True)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--work", required=True)
    return ap


def work_folder(path):
    """Empties `path` and returns a function naming files in it."""
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return lambda name: os.path.join(path, name)


def _idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(folder, stem):
    for name in (stem + ".gz", stem):
        if os.path.exists(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


def load(folder, train, limit=None):
    """(images [N, 1, 28, 28] float32 normalised like Verdant, labels [N] int64)."""
    prefix = "train" if train else "t10k"
    images = find(folder, prefix + "-images-idx3-ubyte")
    labels = find(folder, prefix + "-labels-idx1-ubyte")
    if not images or not labels:
        print(f"Fashion-MNIST not found in {folder}; skipping")
        sys.exit(SKIP)
    x, y = _idx(images), _idx(labels).astype(np.int64)
    if limit:
        x, y = x[:limit], y[:limit]
    x = ((x.astype(np.float32) / 255.0 - MEAN) / STD).astype(np.float32)
    return x.reshape(-1, 1, 28, 28), y


def run(*args, env=None):
    """Runs a tool; fails the test with its stderr when it fails. Returns stdout."""
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {r.returncode}:\n{r.stderr}{r.stdout}")
    return r.stdout


def percent(text, what):
    """The first "<what> 12.34%" in text, as a float."""
    m = re.search(re.escape(what) + r"\s*([0-9.]+)%", text)
    if not m:
        raise AssertionError(f"no '{what} N%' in:\n{text}")
    return float(m.group(1))


def edge_predictions(text):
    """The class list after "predictions:" in `verdant-edge run --show N` output."""
    line = text.split("predictions:", 1)[1].split("\n", 1)[0]
    return np.array([int(t) for t in line.split() if t != "..."])


def logits(tool, model, data, count, out):
    """Verdant's logits for the first `count` test images (tests/interop/onnx_logits.cpp)."""
    text = run(tool, model, data, count, out)
    return np.fromfile(out, np.float32).reshape(count, -1), percent(text, "accuracy")


def close(ours, ref, rel=1e-4):
    """Elementwise |ours - ref| <= rel * max(|ref|, 1): relative, or absolute near zero."""
    bound = rel * np.maximum(np.abs(ref), 1.0)
    worst = float(np.max(np.abs(ours - ref) / bound))
    return worst <= 1.0, worst


class Checks:
    """Prints each check as it is made, with the seconds since the start; exit_code() says
    whether all passed."""

    def __init__(self):
        self.t0 = time.time()
        self.failures = []

    def __call__(self, ok, what):
        print(("ok   " if ok else "FAIL ") + what + f" [{self.elapsed():.0f} s]", flush=True)
        if not ok:
            self.failures.append(what)

    def elapsed(self):
        return time.time() - self.t0

    def exit_code(self):
        print(f"{self.elapsed():.1f} s")
        if self.failures:
            print(f"{len(self.failures)} check(s) failed")
        return 1 if self.failures else 0
