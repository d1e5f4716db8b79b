#!/usr/bin/python3
"""Sparse training against dense, in one invocation: the median training epoch, the test
accuracy and the joules of `mlp` trained dense and with RigL at 90% sparsity
(recipes/rigl_mlp_90.yaml: ERK, drop fraction 0.3 every 100 steps until epoch 7), the same
epochs, lr, weight decay, seed and threads on both sides.

  /usr/bin/python3 bench/sparse_training.py --verdant build/src/cli/verdant [--rounds 3]
      [--epochs 10] [--recipe recipes/rigl_mlp_90.yaml]

Each run is one whole process under `verdant measure` (so both sides' joules come from the same
meter or estimate model, and the label says which). Rounds are interleaved, dense first;
medians and the ratios are printed, and each round's own ratio of the two with their median.
The RigL side trains its masked Linear layers through the CSR kernels (forward, input gradient,
weight gradient at the kept positions), and computes the dense weight gradient only on its
mask-update steps.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from energy_to_accuracy import measured  # noqa: E402


def run(verdant, args, extra):
    with tempfile.TemporaryDirectory() as out:
        seconds, joules, label, _ = measured(verdant, extra + ["--out", out])
        res = json.load(open(os.path.join(out, "results.json")))
    return {"epoch": res["timing"]["median_epoch_seconds"], "accuracy": res["test"]["accuracy"],
            "seconds": seconds, "joules": joules, "label": label}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--verdant", default=os.path.join(HERE, "..", "build", "src", "cli", "verdant"))
    ap.add_argument("--recipe", default=os.path.join(HERE, "..", "recipes", "rigl_mlp_90.yaml"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    common = ["--model", "mlp", "--epochs", str(a.epochs), "--lr", "0.05", "--weight-decay",
              "5e-4", "--seed", str(a.seed), "--threads", str(a.threads)]
    sides = {"dense": [a.verdant, "train"] + common,
             "rigl 90%": [a.verdant, "compress", "--recipe", a.recipe] + common}
    results = {k: [] for k in sides}
    for r in range(a.rounds):
        for name, cmd in sides.items():
            results[name].append(run(a.verdant, a, cmd))
            x = results[name][-1]
            print("round %d %-9s epoch %.3f s  accuracy %.2f%%  %.1f s  %.1f J" %
                  (r + 1, name, x["epoch"], 100 * x["accuracy"], x["seconds"], x["joules"]),
                  flush=True)
    med = {k: {f: statistics.median(x[f] for x in v) for f in ("epoch", "accuracy", "seconds",
                                                               "joules")}
           for k, v in results.items()}
    d, s = med["dense"], med["rigl 90%"]
    print("\nmedians over %d rounds, %d epochs, %d threads" % (a.rounds, a.epochs, a.threads))
    print("%-9s %10s %10s %10s %10s" % ("", "epoch s", "accuracy", "process s", "joules"))
    for k, m in med.items():
        print("%-9s %10.3f %9.2f%% %10.1f %10.1f" % (k, m["epoch"], 100 * m["accuracy"],
                                                   m["seconds"], m["joules"]))
    print("rigl / dense: epoch %.2fx, joules %.2fx, accuracy %+.2f points" %
          (s["epoch"] / d["epoch"], s["joules"] / d["joules"],
           100 * (s["accuracy"] - d["accuracy"])))
    # Each round's two runs follow each other, so their ratio shares the machine's state; on a
    # VM whose speed drifts between runs, the median of these ratios is the steadier figure.
    paired = [r["epoch"] / q["epoch"] for q, r in zip(results["dense"], results["rigl 90%"])]
    print("rigl / dense epoch, round by round: %s; median %.2fx" %
          (", ".join("%.2fx" % x for x in paired), statistics.median(paired)))
    print("joules:", results["dense"][0]["label"])


if __name__ == "__main__":
    main()
