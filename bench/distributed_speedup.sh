#!/usr/bin/env bash
# Data-parallel training on this machine: one epoch of Fashion-MNIST (global batch 64, SGD
# momentum) for mlp and lenet5 as 1 process x 1 thread, 2 processes x 1 thread (bucketed
# overlap, and one allreduce after backward), and 1 process x 2 threads; rounds interleaved,
# medians, speed-up and efficiency against 1 x 1, and the share of step time spent waiting for
# the allreduce.  Usage: bench/distributed_speedup.sh build/src/cli/verdant [ROUNDS]
set -euo pipefail
verdant=$1
rounds=${2:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores"
/usr/bin/python3 - "$verdant" "$tmp" "$rounds" <<'PY'
import json, re, statistics, subprocess, sys
verdant, tmp, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
mpi = ["mpirun", "--oversubscribe", "-np", "2"]
configs = [("1 x 1 thread", [], ["--threads", "1"]),
           ("2 x 1 thread, overlap", mpi, ["--threads", "1"]),
           ("2 x 1 thread, one allreduce", mpi, ["--threads", "1", "--no-overlap"]),
           ("1 x 2 threads", [], ["--threads", "2"])]
for model in ("mlp", "lenet5"):
    times = {c[0]: [] for c in configs}
    share = {c[0]: [] for c in configs}
    for r in range(rounds):
        for name, pre, extra in configs:
            out = "%s/%s" % (tmp, model)
            p = subprocess.run(pre + [verdant, "train", "--model", model, "--epochs", "1",
                                      "--no-eval", "--no-energy", "--out", out] + extra,
                               capture_output=True, text=True, check=True)
            times[name].append(json.load(open(out + "/results.json"))["epochs"][0]["seconds"])
            m = re.search(r"allreduce waits ([0-9.]+)%", p.stdout)
            if m:
                share[name].append(float(m.group(1)))
    base = statistics.median(times[configs[0][0]])
    print("\n%s, one epoch (median of %d), speed-up and efficiency against 1 x 1:" % (model, rounds))
    for name, pre, extra in configs:
        t = statistics.median(times[name])
        n = 2 if pre or "2 threads" in name else 1
        s = base / t
        wait = " allreduce waits %.1f%% of step time" % statistics.median(share[name]) if share[name] else ""
        print("  %-30s %7.2f s  %.2fx  efficiency %3.0f%%%s" % (name, t, s, 100 * s / n, wait))
PY
