#!/usr/bin/env bash
# `verdant report` on 100 trials: time to write the HTML page and the appendix (target < 1 s),
# and the page's size (target < 1 MB). The trials are copies of one real trial of a sweep
# (each with its own id and figures), so the page holds 100 marks per plot and 100 curves.
# Usage: bench/report_timing.sh build/src/cli/verdant SWEEP_RESULTS_DIR
set -euo pipefail
verdant=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$src/sweep.json" "$tmp/"
mkdir -p "$tmp/trials"
first=$(ls "$src/trials" | head -1)
/usr/bin/python3 - "$src/trials/$first" "$tmp/trials" <<'PY'
import json, sys, random
t = json.load(open(sys.argv[1]))
random.seed(1)
for i in range(100):
    u = dict(t)
    u["id"] = "%s-copy%03d" % (t["id"], i)
    u["candidate"] = "%s-copy%03d" % (t["candidate"], i)
    u["accuracy"] = t["accuracy"] - random.random() * 0.05
    u["train_joules"] = t["train_joules"] * (0.5 + random.random())
    u["inference_joules_per_1000"] = t["inference_joules_per_1000"] * (0.2 + random.random())
    u["bytes"] = int(t["bytes"] * (0.1 + random.random()))
    u["latency_us"] = t["latency_us"] * (0.2 + random.random())
    json.dump(u, open("%s/%s.json" % (sys.argv[2], u["id"]), "w"))
PY
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
/usr/bin/python3 - "$verdant" "$tmp" <<'PY'
import os, subprocess, sys, time
verdant, tmp = sys.argv[1], sys.argv[2]
times = []
for _ in range(5):
    t = time.perf_counter()
    subprocess.run([verdant, "report", tmp, "--html", tmp + "/report.html", "--appendix",
                    tmp + "/appendix.md"], check=True, stdout=subprocess.DEVNULL)
    times.append(time.perf_counter() - t)
size = os.path.getsize(tmp + "/report.html")
print("verdant report, 100 trials: best of 5 %.3f s, median %.3f s (target < 1 s); "
      "report.html %d bytes (target < 1,000,000)" % (min(times), sorted(times)[2], size))
PY
