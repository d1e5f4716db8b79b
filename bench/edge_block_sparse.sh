#!/usr/bin/env bash
# Issue 5's sparse target on a trained model: `mlp` trained dense, pruned unstructured to 90%
# and pruned in 4x4 blocks to 90% (same epochs, optimizer and seed), each exported to int8
# (.vdm: dense, CSR and block-sparse), then run by verdant-edge on the 10,000 Fashion-MNIST test
# images: accuracy and latency per inference (1 thread, batch 1) side by side, with fp32.
# Also prints the training time per epoch once pruning is done: block-pruned Linear layers
# then train through the block-sparse kernels, unstructured ones still run dense products.
# Usage: bench/edge_block_sparse.sh [BUILD_DIR] [DATA_DIR]   (defaults: build, Debian's copy)
# Env: EPOCHS (default 15), THREADS (training threads, default 2), REPEAT (passes, default 5).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
data=${2:-/usr/share/datasets/fashion-mnist}
epochs=${EPOCHS:-15}
threads=${THREADS:-2}
repeat=${REPEAT:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
verdant=$build/src/cli/verdant
edge=$build/src/edge/verdant-edge
# Pruning runs from epoch 1 to 60% of training (Zhu & Gupta's cubic schedule), then fine-tunes.
end=$((epochs * 6 / 10))
cat > "$work/unstructured90.yaml" <<Y
modifiers:
  - prune: {scope: global, final_sparsity: 0.9, start_epoch: 1, end_epoch: $end, update_every: 0.25}
Y
cat > "$work/block90.yaml" <<Y
modifiers:
  - prune: {structure: block, block: [4, 4], scope: global, final_sparsity: 0.9, start_epoch: 1, end_epoch: $end, update_every: 0.25}
Y
train=("$verdant" train --model mlp --epochs "$epochs" --threads "$threads" --data "$data" --seed 42)
"${train[@]}" --out "$work/dense" > "$work/dense.log" 2>&1
"${train[@]}" --recipe "$work/unstructured90.yaml" --out "$work/unstructured90" > "$work/u.log" 2>&1
"${train[@]}" --recipe "$work/block90.yaml" --out "$work/block90" > "$work/b.log" 2>&1
export_vdm() {  # checkpoint dir, precision, output name
  "$verdant" export "$work/$1/checkpoint.vckpt" --precision "$2" --calibration "$data" \
    --agreement-samples 0 --out "$work/$3.vdm" > /dev/null
}
export_vdm dense fp32 dense_fp32
export_vdm dense int8 dense_int8
export_vdm unstructured90 int8 unstructured90_int8
export_vdm block90 int8 block90_int8
printf '%-22s %10s %10s %12s %10s  %s\n' model accuracy "us/inf" "vs fp32" "file B" encodings
fp32_us=""
for m in dense_fp32 dense_int8 unstructured90_int8 block90_int8; do
  out=$(OMP_NUM_THREADS=1 "$edge" run "$work/$m.vdm" --input "$data/t10k-images-idx3-ubyte.gz" \
    --labels "$data/t10k-labels-idx1-ubyte.gz" --repeat "$repeat" --show 0 2>&1)
  acc=$(sed -n 's/.*accuracy: \([0-9.]*%\).*/\1/p' <<< "$out" | head -1)
  us=$(sed -n 's/.*latency per inference: median \([0-9.]*\) us.*/\1/p' <<< "$out" | head -1)
  [ -z "$fp32_us" ] && fp32_us=$us
  enc=$("$edge" info "$work/$m.vdm" | awk 'NR>1 && $2!="flatten" {printf "%s ", $3}')
  printf '%-22s %10s %10s %11.2fx %10s  %s\n' "$m" "$acc" "$us" \
    "$(awk -v a="$fp32_us" -v b="$us" 'BEGIN{print a/b}')" "$(stat -c %s "$work/$m.vdm")" "$enc"
done
echo "(verdant-edge run, 1 thread, batch 1, median over $repeat passes of the test set; mlp trained $epochs epochs, seed 42)"
echo "training, $threads threads: median s/epoch over epochs $((end + 2))-$epochs (sparsity final), total s"
for m in dense unstructured90 block90; do
  python3 - "$work/$m/results.json" "$((end + 2))" "$m" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))
late = [e["seconds"] for e in r["epochs"] if e["epoch"] >= int(sys.argv[2])]
print(f"  {sys.argv[3]:<16} {statistics.median(late):8.3f} s/epoch  {sum(e['seconds'] for e in r['epochs']):8.1f} s total  test accuracy {100 * r['epochs'][-1]['test_accuracy']:.2f}%")
PY
done
