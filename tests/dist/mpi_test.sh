#!/usr/bin/env bash
# Data-parallel training under mpirun on this machine: equivalence with one process, the
# bucketed overlap against one allreduce, a rank killed mid-epoch (the job ends within 10 s
# naming it, the checkpoint survives, resuming gives the uninterrupted run's weights), energy
# counted once per node, and a mismatch found at start-up.
# Usage: mpi_test.sh VERDANT MAKE_FAKE_DATA COMPARE_RUNS
set -u
verdant=$1
fake_data=$2
compare=$3
if ! command -v mpirun >/dev/null; then
  echo "skipped: no mpirun (Debian openmpi-bin)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=PASSIVE
# Containers often forbid the cross-memory attach that OpenMPI's shared memory prefers.
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
mpi=(mpirun --oversubscribe -np 2)
fail=0
die() { echo "FAIL $*"; fail=1; }

"$fake_data" "$tmp/fmnist" 1600 200 || { echo "FAIL data"; exit 1; }
# 1600 images, global batch 64: 25 steps per epoch, 100 steps in 4 epochs.
train=(train --model mlp --data "$tmp/fmnist" --epochs 4 --batch-size 64 --seed 3 --threads 1
       --no-energy)
"$verdant" "${train[@]}" --out "$tmp/one" >"$tmp/one.txt" 2>&1 || { cat "$tmp/one.txt"; die "1 process"; }
"${mpi[@]}" "$verdant" "${train[@]}" --out "$tmp/two" >"$tmp/two.txt" 2>&1 || { cat "$tmp/two.txt"; die "2 processes"; }
grep -q "distributed: 2 processes" "$tmp/two.txt" || die "the 2-process run did not say it was distributed"
"$compare" "$tmp/one" "$tmp/two" 1e-5 || die "2 processes differ from 1 beyond 1e-5"
"${mpi[@]}" "$verdant" "${train[@]}" --no-overlap --out "$tmp/plain" >"$tmp/plain.txt" 2>&1 ||
  { cat "$tmp/plain.txt"; die "--no-overlap"; }
"$compare" "$tmp/two" "$tmp/plain" 0 || die "the bucketed overlap differs from one allreduce"

# Kill rank 1 mid-epoch (after step 37 of 100; checkpoints every 10 steps).
start=$(date +%s)
VERDANT_DEBUG_SIGKILL_AT_STEP=37 VERDANT_DEBUG_SIGKILL_RANK=1 \
  "${mpi[@]}" "$verdant" "${train[@]}" --checkpoint-every 10 --out "$tmp/killed" >"$tmp/killed.txt" 2>&1
rc=$?
took=$(( $(date +%s) - start ))
[[ $rc -ne 0 ]] || die "the job survived a killed rank"
[[ $took -le 10 ]] || die "the job took ${took}s to end after a rank died"
grep -qi "rank 1" "$tmp/killed.txt" || { cat "$tmp/killed.txt"; die "the error does not name rank 1"; }
"$verdant" info "$tmp/killed/checkpoint.vckpt" >/dev/null || die "the last checkpoint does not load"
"${mpi[@]}" "$verdant" "${train[@]}" --checkpoint-every 10 --out "$tmp/killed" --resume \
  >"$tmp/resumed.txt" 2>&1 || { cat "$tmp/resumed.txt"; die "resume"; }
"${mpi[@]}" "$verdant" "${train[@]}" --checkpoint-every 10 --out "$tmp/straight" >/dev/null 2>&1 ||
  die "uninterrupted 2-process run"
"$compare" "$tmp/straight" "$tmp/killed" 0 || die "resumed weights differ from the uninterrupted run"

# Two ranks pretending to be two nodes: each node's machine counted once, one row.
energy=(train --model mlp --data "$tmp/fmnist" --epochs 1 --batch-size 64 --threads 1 --no-eval)
mpirun --oversubscribe -np 1 -x VERDANT_NODE_ID=a "$verdant" "${energy[@]}" --out "$tmp/nodes" : \
  -np 1 -x VERDANT_NODE_ID=b "$verdant" "${energy[@]}" --out "$tmp/nodes" >"$tmp/nodes.txt" 2>&1 ||
  { cat "$tmp/nodes.txt"; die "two pretend nodes"; }
rows=$(( $(wc -l <"$tmp/nodes/emissions.csv") - 1 ))
[[ $rows -eq 1 ]] || die "emissions.csv has $rows rows, not one for the job"
node_records=$(grep -c '"phase":"node ' "$tmp/nodes/energy.jsonl")
[[ $node_records -eq 2 ]] || die "energy.jsonl has $node_records node records, not 2"
/usr/bin/python3 - "$tmp/nodes/energy.jsonl" <<'PY' || die "machine energy not counted once per node"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
total = [r for r in recs if r["phase"] == "total"][-1]
nodes = [r for r in recs if r["phase"].startswith("node ")]
m = sum(sum(n["machine_joules"].values()) for n in nodes)
assert all(n["machine_joules"] is not None for n in nodes), "a node without its machine"
assert abs(sum(total["machine_joules"].values()) - m) < 1e-6 * max(m, 1), (total, m)
p = sum(sum(n["process_joules"].values()) for n in nodes)
assert abs(sum(total["process_joules"].values()) - p) < 1e-6 * max(p, 1)
print("energy: %.1f J machine over 2 nodes, %.1f J process share" % (m, p))
PY
# And two ranks on one node: the machine reported by one of them only.
"${mpi[@]}" "$verdant" "${energy[@]}" --out "$tmp/onenode" >/dev/null 2>&1 || die "one node"
grep -c '"phase":"node ' "$tmp/onenode/energy.jsonl" | grep -qx 1 || die "one node gave more than one node record"

# A mismatch at start-up: rank 1 trains another model.
mpirun --oversubscribe -np 1 "$verdant" "${train[@]}" --out "$tmp/mis" : \
  -np 1 "$verdant" train --model lenet5 --data "$tmp/fmnist" --epochs 4 --batch-size 64 --seed 3 \
  --threads 1 --no-energy --out "$tmp/mis" >"$tmp/mis.txt" 2>&1
[[ $? -ne 0 ]] || die "a mismatched job ran"
grep -q "rank 1 differs from rank 0" "$tmp/mis.txt" || { cat "$tmp/mis.txt"; die "mismatch not named"; }
[[ $(grep -c "verdant: error" "$tmp/mis.txt") -eq 1 ]] || { cat "$tmp/mis.txt"; die "mismatch reported more than once"; }
# A sweep over two processes: the trials of a serial sweep; restarted with another number of
# processes, it skips what is done.
cat >"$tmp/s.yaml" <<YAML
models: [mlp]
data: fmnist
epochs: 1
batch_size: 64
latency_samples: 20
candidates:
  grid:
    sparsity: [0, 0.5, 0.8]
YAML
sweep=(sweep "$tmp/s.yaml" --threads 1 --max-accuracy-loss 50 --objective bytes)
"$verdant" "${sweep[@]}" --out "$tmp/serial" >/dev/null 2>&1 || die "serial sweep"
VERDANT_DEBUG_SIGKILL_AFTER_TRIALS=1 "$verdant" "${sweep[@]}" --out "$tmp/shared" >/dev/null 2>&1
"${mpi[@]}" "$verdant" "${sweep[@]}" --out "$tmp/shared" >"$tmp/shared.txt" 2>&1 ||
  { cat "$tmp/shared.txt"; die "sweep over 2 processes"; }
grep -q "<- pick" "$tmp/shared.txt" || die "the shared sweep printed no pick"
[[ $(grep -c "<- pick" "$tmp/shared.txt") -eq 1 ]] || die "more than one process reported the sweep"
/usr/bin/python3 - "$tmp/serial/trials" "$tmp/shared/trials" <<'PY' || die "the shared sweep's trials differ from the serial one's"
import json, os, sys
a, b = sys.argv[1], sys.argv[2]
names = sorted(os.listdir(a))
assert names == sorted(os.listdir(b)), (names, os.listdir(b))
for n in names:
    x, y = json.load(open(os.path.join(a, n))), json.load(open(os.path.join(b, n)))
    for k in ("accuracy", "nonzero", "bytes", "flops", "params"):
        assert x[k] == y[k], (n, k, x[k], y[k])
print("sweep: %d trials, the same over 1 and 2 processes" % len(names))
PY
[[ $fail -eq 0 ]] && echo "mpi_test: all passed"
exit $fail
