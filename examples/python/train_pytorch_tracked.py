#!/usr/bin/python3
"""A PyTorch training script tracked by Verdant, CodeCarbon-style: one task per epoch, a
Zeus-style window around each evaluation, and the run's emissions.csv / energy.jsonl.

    /usr/bin/python3 examples/python/train_pytorch_tracked.py --epochs 3 --out run

If you use CodeCarbon, the only change is the import: `from verdant import
OfflineEmissionsTracker`. The meters run on Verdant's C++ thread, never holding the GIL.
"""
import argparse
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import verdant
from fashion_mnist import load, normalize


def mlp():  # LeNet-300-100, Verdant's built-in `mlp`
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100),
                         nn.ReLU(), nn.Linear(100, 10))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=0, help="first N training images (0: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--country", default="FRA", help="ISO alpha-3 code of the grid")
    ap.add_argument("--out", default="run-pytorch")
    a = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    x, y = load("train", a.limit)
    xt, yt = load("t10k", max(a.limit // 5, 0))
    x, xt = torch.from_numpy(normalize(x)), torch.from_numpy(normalize(xt))
    y, yt = torch.from_numpy(y), torch.from_numpy(yt)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    tracker = verdant.OfflineEmissionsTracker(
        project_name="pytorch-mlp", country_iso_code=a.country, output_dir=a.out,
        measure_power_secs=1, tracking_mode="process")
    with tracker:
        for epoch in range(1, a.epochs + 1):
            tracker.start_task(f"epoch {epoch}")
            t0 = time.perf_counter()
            perm = torch.randperm(len(x))
            for i in range(0, len(x), 64):
                idx = perm[i:i + 64]
                opt.zero_grad()
                F.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
            task = tracker.stop_task()

            tracker.begin_window(f"eval {epoch}")
            with torch.no_grad():
                accuracy = (model(xt).argmax(1) == yt).float().mean().item()
            ev = tracker.end_window(f"eval {epoch}")
            print(f"epoch {epoch}: {time.perf_counter() - t0:.2f} s, test accuracy "
                  f"{accuracy:.2%}, train {task.energy_consumed * 3.6e6:.1f} J "
                  f"({task.emissions * 1e3:.4f} g CO2eq), eval {ev.total_energy:.2f} J "
                  f"[{ev.kinds['cpu']}]")
    print(f"total {tracker.final_emissions * 1e3:.4f} g CO2eq ({tracker.carbon_intensity})")
    print(f"wrote {os.path.join(a.out, 'emissions.csv')} and "
          f"{os.path.join(a.out, 'energy.jsonl')}")


if __name__ == "__main__":
    main()
