#!/usr/bin/python3
"""PyTorch 1.13 peer for the issue-2 training benchmark: the same model, data, batch size,
optimizer and normalisation as `verdant train`, timed per epoch. Prints one JSON line.

Run with Debian's /usr/bin/python3 (python3-torch, OpenBLAS as the system BLAS). Batches are
cut from in-memory tensors (no DataLoader workers), the fastest fair way to feed PyTorch.
"""
import argparse
import gzip
import json
import os
import resource
import struct
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN, STD = 0.2860, 0.3530  # same constants as verdant::data::kFashionMnist{Mean,Std}


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data_dir, train, limit):
    prefix = "train" if train else "t10k"
    x = read_idx(os.path.join(data_dir, prefix + "-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(data_dir, prefix + "-labels-idx1-ubyte.gz"))
    if limit:
        x, y = x[:limit], y[:limit]
    # Bytes kept, normalised per batch like ours.
    return torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64))


def make_model(name):
    if name == "mlp":  # LeNet-300-100
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100),
                             nn.ReLU(), nn.Linear(100, 10))
    if name == "lenet5":  # Caffe LeNet-5
        return nn.Sequential(nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5),
                             nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(800, 500), nn.ReLU(),
                             nn.Linear(500, 10))
    raise SystemExit("unknown model " + name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit-train", type=int, default=0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--eval", action="store_true", help="report test accuracy at the end")
    ap.add_argument("--schedule", choices=["cosine", "constant"], default="cosine")
    ap.add_argument("--stop-at-accuracy", type=float, default=0,
                    help="evaluate after every epoch and stop at the first that reaches this")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    x, y = load(a.data, True, a.limit_train)
    model = make_model(a.model)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay)
    n = x.shape[0]
    steps = (n + a.batch_size - 1) // a.batch_size
    if a.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=a.epochs * steps)
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    xt, yt = load(a.data, False, 0) if (a.eval or a.stop_at_accuracy) else (None, None)

    def test_accuracy():
        model.eval()
        with torch.no_grad():
            pred = model((xt.unsqueeze(1).float() / 255.0 - MEAN) / STD).argmax(1)
        return float((pred == yt).float().mean())

    epoch_seconds, accuracies = [], []
    for epoch in range(a.epochs):
        model.train()
        perm = torch.randperm(n)
        t0 = time.perf_counter()
        for s in range(steps):
            idx = perm[s * a.batch_size:(s + 1) * a.batch_size]
            xb = (x[idx].unsqueeze(1).float() / 255.0 - MEAN) / STD
            yb = y[idx]
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            sched.step()
        epoch_seconds.append(time.perf_counter() - t0)
        if a.stop_at_accuracy:
            accuracies.append(test_accuracy())
            if accuracies[-1] >= a.stop_at_accuracy:
                break
    out = {"model": a.model, "epoch_seconds": epoch_seconds, "threads": torch.get_num_threads(),
           "torch": torch.__version__,
           "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    if accuracies:
        out["test_accuracies"] = accuracies
    if a.eval:
        out["test_accuracy"] = accuracies[-1] if accuracies else test_accuracy()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
