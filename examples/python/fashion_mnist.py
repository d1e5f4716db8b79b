"""Fashion-MNIST for the examples: Debian's dataset-fashion-mnist IDX files read with NumPy.

    x, y = load("train", limit=2000)   # uint8 (N, 28, 28), int64 (N,)
"""
import gzip
import os
import struct

import numpy as np

DATA = os.environ.get("FASHION_MNIST", "/usr/share/datasets/fashion-mnist")
MEAN, STD = 0.2860, 0.3530  # the training set's pixel statistics, as `verdant train` uses


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(part, limit=0, data=DATA):
    """Images and labels of the "train" or "t10k" part, the first `limit` of them (0: all)."""
    x = read_idx(os.path.join(data, f"{part}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(data, f"{part}-labels-idx1-ubyte.gz")).astype(np.int64)
    return (x[:limit], y[:limit]) if limit else (x, y)


def normalize(x):
    """uint8 pixels to the float32 inputs the models train on."""
    return (x.astype(np.float32) / 255.0 - MEAN) / STD
