#!/usr/bin/python3
"""Issue-2 benchmark: `verdant train` against PyTorch 1.13 in the same invocation.

  /usr/bin/python3 bench/train_vs_pytorch.py --verdant build/src/cli/verdant [--rounds 3]
      [--models mlp lenet5] [--accuracy]

Speed: per model, `--rounds` interleaved rounds of (ours, PyTorch), each a fresh process
training `--epochs` epoch(s) of the full 60k training set at batch 64 with SGD momentum on
`--threads` threads; the per-epoch training time (data loading and start-up excluded, both
sides) is collected and the medians and their ratio printed. Peak RSS of each child comes
from wait4(). Each timed process runs under `verdant measure` (the same meter, or the same
estimate model, for both sides): joules per epoch are the process's joules times the share of
its time spent in training epochs, with the label saying how they were obtained. The kernels
ours ran (BLAS core, oneDNN ISA, sparse-kernel clone) are printed as the run reports them.
With --accuracy, ours also trains each model for 15 epochs with the default
hyper-parameters and the Fashion-MNIST test accuracy is printed.
The machine is shared and noisy: compare ratios, not absolute times.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run_child(cmd):
    """Runs cmd, returns (stdout, peak RSS in MiB from the kernel's accounting of this child)."""
    with tempfile.TemporaryFile() as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        err = p.stderr.read().decode()
        out.seek(0)
        text = out.read().decode()
    if p.returncode != 0:
        sys.exit("benchmark child failed (%d): %s\n%s%s" % (p.returncode, " ".join(cmd), text, err))
    return text, ru.ru_maxrss / 1024.0


def run_measured(a, cmd):
    """run_child under `verdant measure`: (stdout, peak RSS, process joules, seconds, label)."""
    with tempfile.TemporaryDirectory() as d:
        text, rss = run_child([a.verdant, "measure", "--out", d, "--"] + cmd)
        with open(os.path.join(d, "energy.jsonl")) as f:
            total = [json.loads(line) for line in f][-1]
    return (text, rss, sum(total["process_joules"].values()), total["duration_s"],
            total["sources"]["cpu"]["source"])


def ours(a, model, epochs, extra=(), measure=False):
    with tempfile.TemporaryDirectory() as d:
        cmd = [a.verdant, "train", "--model", model, "--data", a.data, "--epochs", str(epochs),
               "--batch-size", "64", "--threads", str(a.threads), "--out", d, *extra]
        if a.limit_train and "--no-eval" in extra:
            cmd += ["--limit-train", str(a.limit_train)]
        energy = None
        if measure:
            _, rss, joules, seconds, label = run_measured(a, cmd)
        else:
            _, rss = run_child(cmd)
        with open(os.path.join(d, "results.json")) as f:
            res = json.load(f)
    if measure:
        energy = (joules * sum(e["seconds"] for e in res["epochs"]) / seconds / len(res["epochs"]),
                  label)
    return res, rss, energy


def peer(a, model, epochs):
    cmd = ["/usr/bin/python3", os.path.join(HERE, "pytorch_peer.py"), "--model", model, "--data", a.data,
           "--epochs", str(epochs), "--threads", str(a.threads)]
    if a.limit_train:
        cmd += ["--limit-train", str(a.limit_train)]
    text, rss, joules, seconds, label = run_measured(a, cmd)
    res = json.loads(text.strip().splitlines()[-1])
    times = res["epoch_seconds"]
    return res, rss, (joules * sum(times) / seconds / len(times), label)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--verdant", default=os.path.join(HERE, "..", "build", "src", "cli", "verdant"))
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--models", nargs="+", default=["mlp", "lenet5"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=1, help="epochs per timed process")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit-train", type=int, default=0,
                    help="time epochs over only the first N training images (both sides; "
                         "for a loaded machine); the accuracy runs always use all 60k")
    ap.add_argument("--accuracy", action="store_true", help="also train ours 15 epochs per model")
    ap.add_argument("--accuracy-epochs", type=int, default=15)
    ap.add_argument("--json", help="write all figures to this file")
    a = ap.parse_args()

    report = {"threads": a.threads, "rounds": a.rounds, "limit_train": a.limit_train, "models": {}}
    print("training speed, ours vs PyTorch %s threads, batch 64, SGD momentum, %d interleaved rounds%s"
          % (a.threads, a.rounds, ", epochs of %d images" % a.limit_train if a.limit_train else ""))
    print("%-7s %12s %12s %8s %10s %10s %14s %14s" % (
        "model", "ours s/ep", "torch s/ep", "speedup", "ours J/ep", "torch J/ep",
        "ours RSS MiB", "torch RSS MiB"))
    labels = set()
    for model in a.models:
        o_times, p_times, o_rss, p_rss, o_j, p_j = [], [], [], [], [], []
        for r in range(a.rounds):
            res, rss, (joules, label) = ours(
                a, model, a.epochs, ["--no-eval", "--no-energy", "--seed", str(r + 1)], True)
            o_times += [e["seconds"] for e in res["epochs"]]
            o_rss.append(rss)
            o_j.append(joules)
            report["kernels"] = res.get("kernels", "not reported")
            labels.add(label)
            pres, prss, (pjoules, plabel) = peer(a, model, a.epochs)
            p_times += pres["epoch_seconds"]
            p_rss.append(prss)
            p_j.append(pjoules)
            labels.add(plabel)
        om, pm = statistics.median(o_times), statistics.median(p_times)
        oj, pj = statistics.median(o_j), statistics.median(p_j)
        m = {"ours_epoch_seconds": o_times, "torch_epoch_seconds": p_times,
             "ours_median_s": om, "torch_median_s": pm, "speedup": pm / om,
             "ours_joules_per_epoch": oj, "torch_joules_per_epoch": pj,
             "ours_peak_rss_mib": max(o_rss), "torch_peak_rss_mib": max(p_rss)}
        report["models"][model] = m
        print("%-7s %12.2f %12.2f %7.2fx %10.1f %10.1f %14.0f %14.0f" % (
            model, om, pm, pm / om, oj, pj, max(o_rss), max(p_rss)))
        sys.stdout.flush()
    print("ours ran: %s" % report.get("kernels", "not reported"))
    print("joules: %s" % "; ".join(sorted(labels)))
    report["joules_source"] = sorted(labels)

    if a.accuracy:
        print("\ntest accuracy of ours after %d epochs (default hyper-parameters)" % a.accuracy_epochs)
        for model in a.models:
            res, rss, _ = ours(a, model, a.accuracy_epochs)
            acc = res["test"]["accuracy"]
            best = max(e.get("test_accuracy", 0) for e in res["epochs"])
            report["models"].setdefault(model, {})["accuracy_%d_epochs" % a.accuracy_epochs] = acc
            report["models"][model]["accuracy_run"] = res
            print("%-7s final %.2f%%  (best epoch %.2f%%)  median epoch %.2f s  peak RSS %.0f MiB"
                  % (model, 100 * acc, 100 * best, res["timing"]["median_epoch_seconds"], rss))
            sys.stdout.flush()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
