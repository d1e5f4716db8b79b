#!/usr/bin/python3
"""Energy to accuracy: the seconds and joules until a model first reaches a test accuracy,
ours against PyTorch 1.13 in the same invocation.

  /usr/bin/python3 bench/energy_to_accuracy.py --verdant build/src/cli/verdant
      [--model lenet5] [--target 0.90] [--rounds 1] [--ours-epochs 15] [--ours-schedule restarts]

Each side is one whole process run under `verdant measure` (the same meter, or the same
estimate model, for both; start-up, data loading and the per-epoch evaluations included) that
stops after the first epoch whose Fashion-MNIST test accuracy reaches --target:
ours `verdant train --stop-at-accuracy`, the peer bench/pytorch_peer.py with the usual peer
recipe (SGD lr 0.02, momentum 0.9, constant lr, batch 64, weight decay 5e-4), 2 threads each.
Rounds are interleaved; medians and the ratios are printed, with how each joule was obtained.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def measured(verdant, command):
    """Runs command under `verdant measure`; returns (seconds, joules, label, stdout)."""
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run([verdant, "measure", "--out", d, "--"] + command,
                           capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit("failed (%d): %s\n%s%s" % (p.returncode, " ".join(command), p.stdout,
                                               p.stderr))
        total = [json.loads(line) for line in open(os.path.join(d, "energy.jsonl"))][-1]
    joules = sum(total["process_joules"].values())
    label = total["sources"]["cpu"]["source"]
    return total["duration_s"], joules, label, p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--verdant", default=os.path.join(HERE, "..", "build", "src", "cli", "verdant"))
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--model", default="lenet5")
    ap.add_argument("--target", type=float, default=0.90)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ours-epochs", type=int, default=15, help="our schedule's length")
    ap.add_argument("--ours-schedule", default="restarts", help="ours: restarts is the default")
    ap.add_argument("--peer-epochs", type=int, default=30, help="the peer's budget (it stops)")
    a = ap.parse_args()

    ours_cmd = [a.verdant, "train", "--model", a.model, "--data", a.data, "--epochs",
                str(a.ours_epochs), "--schedule", a.ours_schedule, "--threads", str(a.threads),
                "--stop-at-accuracy", str(a.target), "--no-energy"]
    peer_cmd = ["/usr/bin/python3", os.path.join(HERE, "pytorch_peer.py"), "--model", a.model,
                "--data", a.data, "--epochs", str(a.peer_epochs), "--threads", str(a.threads),
                "--lr", "0.02", "--momentum", "0.9", "--schedule", "constant",
                "--stop-at-accuracy", str(a.target)]
    cpu = open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": \t")
    print("energy to %.1f%% test accuracy, %s, %d threads, cpu: %s"
          % (100 * a.target, a.model, a.threads, cpu))
    rows = {"ours": [], "torch": []}
    label = ""
    for r in range(a.rounds):
        with tempfile.TemporaryDirectory() as out:
            s, j, label, _ = measured(a.verdant, ours_cmd + ["--out", out, "--seed", str(42 + r)])
            res = json.load(open(os.path.join(out, "results.json")))
        acc = [e["test_accuracy"] for e in res["epochs"]]
        rows["ours"].append((s, j, len(acc), acc[-1]))
        s, j, _, text = measured(a.verdant, peer_cmd + ["--seed", str(42 + r)])
        accs = json.loads(text.strip().splitlines()[-1])["test_accuracies"]
        rows["torch"].append((s, j, len(accs), accs[-1]))
        for side in ("ours", "torch"):
            s, j, n, acc = rows[side][-1]
            print("round %d %-5s %7.1f s %9.1f J  reached %.2f%% after epoch %d%s"
                  % (r + 1, side, s, j, 100 * acc, n, "" if acc >= a.target else " (NOT reached)"))
        sys.stdout.flush()
    med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
           for k, v in rows.items()}
    print("median: ours %.1f s, %.1f J; torch %.1f s, %.1f J; torch/ours: time %.2fx, energy %.2fx"
          % (med["ours"][0], med["ours"][1], med["torch"][0], med["torch"][1],
             med["torch"][0] / med["ours"][0], med["torch"][1] / med["ours"][1]))
    print("joules: whole processes, " + label)


if __name__ == "__main__":
    main()
