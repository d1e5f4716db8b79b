#!/usr/bin/python3
"""PyTorch 1.13 peer for the edge benchmark (bench/edge_bench.cpp): the same mlp and lenet5
architectures, batch 1, one thread, eager fp32 (and dynamic int8 for mlp), timed for
--iters inferences each. Prints one JSON line: microseconds per inference and process CPU
seconds per model. Run with Debian's /usr/bin/python3 (python3-torch with OpenBLAS)."""
import argparse
import json
import time

import torch
import torch.nn as nn


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100),
                         nn.ReLU(), nn.Linear(100, 10))


def lenet5():
    return nn.Sequential(nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(800, 500), nn.ReLU(),
                         nn.Linear(500, 10))


def timed(model, x, iters):
    with torch.no_grad():
        for _ in range(max(10, iters // 10)):
            model(x)
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(iters):
            model(x)
        t1, c1 = time.perf_counter(), time.process_time()
    return (t1 - t0) / iters * 1e6, c1 - c0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters-mlp", type=int, default=2000)
    ap.add_argument("--iters-lenet5", type=int, default=300)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(1, 1, 28, 28)
    out = {}
    m = mlp().eval()
    out["mlp_fp32_us"], out["mlp_fp32_cpu_s"] = timed(m, x, a.iters_mlp)
    q = torch.quantization.quantize_dynamic(m, {nn.Linear}, dtype=torch.qint8)
    out["mlp_dynint8_us"], out["mlp_dynint8_cpu_s"] = timed(q, x, a.iters_mlp)
    l5 = lenet5().eval()
    out["lenet5_fp32_us"], out["lenet5_fp32_cpu_s"] = timed(l5, x, a.iters_lenet5)
    out["torch"] = torch.__version__
    print(json.dumps(out))


if __name__ == "__main__":
    main()
