#!/usr/bin/python3
"""A carbon-aware pause in a PyTorch loop: before each epoch, ask Verdant whether the grid is
above the threshold; if so, checkpoint your own model, sleep until a cleaner hour, reload.

    /usr/bin/python3 examples/python/carbon_pause_pytorch.py --epochs 6

By default it replays California's 2022 grid (the bundled EIA series for US-CISO) on a
simulated clock from 1 June 2022, one hour per epoch, so the pauses take no real time. With
--live and a forecast file that covers now (--zone FILE), the waits are real sleeps (the GIL
released; Ctrl-C still stops them).
"""
import argparse
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

import verdant
from fashion_mnist import load, normalize


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--zone", default="US-CISO", help="bundled EIA zone or a series file")
    ap.add_argument("--threshold", type=float, default=250, help="gCO2eq/kWh")
    ap.add_argument("--start", default="2022-06-01T00:00:00Z", help="simulated clock start")
    ap.add_argument("--live", action="store_true", help="the real clock (needs a forecast)")
    ap.add_argument("--checkpoint", default="carbon-pause.pt")
    a = ap.parse_args()

    torch.manual_seed(0)
    x, y = load("train", a.limit)
    x, y = torch.from_numpy(normalize(x)), torch.from_numpy(y)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    pause = verdant.schedule.CarbonPause(
        a.zone, a.threshold, simulate_clock=None if a.live else a.start,
        step_duration=None if a.live else "1h")
    epoch = 0
    while epoch < a.epochs:
        if pause.should_pause():
            # Your checkpoint, your format: everything needed to go on from here.
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                        "epoch": epoch}, a.checkpoint)
            until = pause.resume_time
            print(f"{pause.now:%Y-%m-%d %H:%M} UTC: "
                  f"{verdant.schedule.intensity(a.zone, pause.now):.0f} gCO2eq/kWh > "
                  f"{a.threshold:.0f}, checkpointed; pausing until {until:%Y-%m-%d %H:%M}")
            pause.wait()
            state = torch.load(a.checkpoint)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            epoch = state["epoch"]
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
        epoch += 1
        print(f"{pause.now:%Y-%m-%d %H:%M} UTC: epoch {epoch}, loss {loss.item():.3f}, "
              f"{verdant.schedule.intensity(a.zone, pause.now):.0f} gCO2eq/kWh")
        pause.step()
    r = pause.report()
    print(f"{r['steps']} epochs, {r['pauses']} pauses, {r['waited_s'] / 3600:.1f} h waited"
          f"{' (gave up waiting)' if r['gave_up'] else ''}")
    if os.path.exists(a.checkpoint):
        os.remove(a.checkpoint)


if __name__ == "__main__":
    main()
