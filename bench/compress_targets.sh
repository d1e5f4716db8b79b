#!/usr/bin/env bash
# The compression targets of issue 4 on Fashion-MNIST, each against our own dense baseline
# trained with the same epochs, optimizer (SGD momentum 0.9, cosine, weight decay 5e-4) and
# seed. Independent chains run in parallel (THREADS threads each). Prints every report at the
# end (accuracy before/after, sparsity, FLOPs, bytes dense fp32 vs compact, energy with its label).
#   bench/compress_targets.sh [VERDANT_BINARY] [OUT_DIR]
# Env: EPOCHS (mlp int8, RigL, prune+int8; default 10), PRUNE_EPOCHS (the 92% pruning targets,
#      mlp and lenet5, default 30: both dense baselines have converged there), PRUNE_SEEDS
#      (default "42 1 2"), BLOCK_EPOCHS (mlp block/unstructured comparison, default 15),
#      LENET_EPOCHS (the teacher, default 10), STUDENT_EPOCHS (default 5), THREADS (per job,
#      default 4), DATA (Fashion-MNIST dir).
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
V="${1:-$here/build/src/cli/verdant}"
OUT="${2:-/tmp/verdant-compress-bench}"
E="${EPOCHS:-10}"; PE="${PRUNE_EPOCHS:-30}"; PS="${PRUNE_SEEDS:-42 1 2}"
BE="${BLOCK_EPOCHS:-15}"; LE="${LENET_EPOCHS:-10}"; SE="${STUDENT_EPOCHS:-5}"
T="${THREADS:-4}"
DATA="${DATA:-/usr/share/datasets/fashion-mnist}"
mkdir -p "$OUT/recipes"
R="$OUT/recipes"
common=(--data "$DATA" --threads "$T" --weight-decay 5e-4 --quiet)

# Recipes sized to the epoch budget (the shipped recipes/ are the commented versions).
cat > "$R/prune92.yaml" <<Y
lr: 0.05
modifiers:
  - prune: {scope: global, final_sparsity: 0.92, start_epoch: 1, end_epoch: $((PE * 6 / 10)), update_every: 0.25}
Y
# mlp at 92%: 4x4 blocks against unstructured, pruned from epoch 1 to 60% of the budget.
cat > "$R/block92.yaml" <<Y
lr: 0.05
modifiers:
  - prune: {structure: block, block: [4, 4], scope: global, final_sparsity: 0.92, start_epoch: 1, end_epoch: $((BE * 6 / 10)), update_every: 0.25}
Y
cat > "$R/unstr92_block_budget.yaml" <<Y
lr: 0.05
modifiers:
  - prune: {scope: global, final_sparsity: 0.92, start_epoch: 1, end_epoch: $((BE * 6 / 10)), update_every: 0.25}
Y
cat > "$R/prune_int8.yaml" <<Y
lr: 0.05
modifiers:
  - prune: {scope: global, final_sparsity: 0.95, start_epoch: 1, end_epoch: $((E * 6 / 10)), update_every: 0.25}
  - quantize: {mode: qat, start_epoch: $((E - 2))}
Y
# The same while distilling from the lenet5 teacher of chain 2 (the issue's "prune, then
# quantize, while distilling").
cat > "$R/prune_int8_distill.yaml" <<Y
lr: 0.05
modifiers:
  - prune: {scope: global, final_sparsity: 0.95, start_epoch: 1, end_epoch: $((E * 6 / 10)), update_every: 0.25}
  - quantize: {mode: qat, start_epoch: $((E - 2))}
  - distill: {teacher: ../lenet5_dense/model.vckpt, alpha: 0.5, temperature: 2}
Y
cat > "$R/qat.yaml" <<Y
lr: 0.002
modifiers:
  - quantize: {mode: qat}
Y
cat > "$R/ptq.yaml" <<Y
modifiers:
  - quantize: {mode: ptq, calibration: percentile, percentile: 99.99}
Y
cat > "$R/rigl90.yaml" <<Y
lr: 0.05
modifiers:
  - sparse_train: {method: rigl, sparsity: 0.9, distribution: erk, drop_fraction: 0.3, update_every: 100, end_epoch: $((E * 3 / 4))}
Y
cat > "$R/distill.yaml" <<Y
lr: 0.05
modifiers:
  - distill: {teacher: ../lenet5_dense/model.vckpt, alpha: 0.5, temperature: 2}
Y
# Student: 784-80-10, 63,610 parameters (< 1/4 of mlp's 266,610).
cat > "$R/student.yaml" <<Y
input: [1, 28, 28]
layers:
  - flatten
  - linear: {out_features: 80}
  - relu
  - linear: {out_features: 10}
Y
# A recipe that changes nothing: dense training through the same loop (baselines).
cat > "$R/alone.yaml" <<Y
lr: 0.05
modifiers:
  - prune: {final_sparsity: 0.0}
Y

vtrain() { "$V" train --threads "$T" --data "$DATA" --weight-decay 5e-4 --lr 0.05 --seed 42 "$@"; }
cz() { local name=$1; shift; "$V" compress "${common[@]}" --out "$OUT/$name" "$@" > "$OUT/$name.txt" 2>&1; echo "$name rc=$?"; }

(  # chain 1: dense mlp, then int8 from it, then RigL from scratch
  vtrain --model mlp --epochs "$E" --out "$OUT/mlp_dense" > "$OUT/mlp_dense.txt" 2>&1; echo "mlp_dense rc=$?"
  cz mlp_qat --model "$OUT/mlp_dense/checkpoint.vckpt" --recipe "$R/qat.yaml" --epochs 1
  cz mlp_ptq --model "$OUT/mlp_dense/checkpoint.vckpt" --recipe "$R/ptq.yaml" --epochs 0
  cz mlp_rigl90 --model mlp --recipe "$R/rigl90.yaml" --epochs "$E" --seed 42
  # The dense baselines through the same loop (a no-op recipe), for time, energy and the
  # pruned + int8 comparison.
  for s in $PS; do cz "mlp_dense_loop_s$s" --model mlp --recipe "$R/alone.yaml" --epochs "$E" --seed "$s"; done
) &
(  # chain 2: dense lenet5 through the same loop (baseline, and the teacher), then the students
  cz lenet5_dense --model lenet5 --recipe "$R/alone.yaml" --epochs "$LE" --seed 42
  for s in 1 2 3; do cz "student_kd_$s" --model "$R/student.yaml" --recipe "$R/distill.yaml" --epochs "$SE" --seed "$s"; done
  for s in $PS; do cz "mlp_prune_int8_distill_s$s" --model mlp --recipe "$R/prune_int8_distill.yaml" --epochs "$E" --seed "$s"; done
) &
(  # chain 3: lenet5 pruned to 92% during training, PRUNE_EPOCHS, each seed
  for s in $PS; do cz "lenet5_prune92_s$s" --model lenet5 --recipe "$R/prune92.yaml" --epochs "$PE" --seed "$s"; done
) &
(  # chain 4: its dense baselines, the same budget and seeds
  for s in $PS; do cz "lenet5_dense_prune_budget_s$s" --model lenet5 --recipe "$R/alone.yaml" --epochs "$PE" --seed "$s"; done
) &
(  # chain 5: mlp pruned to 92% and dense, PRUNE_EPOCHS, each seed; pruned + int8; students alone
  for s in $PS; do
    cz "mlp_prune92_s$s" --model mlp --recipe "$R/prune92.yaml" --epochs "$PE" --seed "$s"
    cz "mlp_dense_prune_budget_s$s" --model mlp --recipe "$R/alone.yaml" --epochs "$PE" --seed "$s"
  done
  for s in $PS; do cz "mlp_prune_int8_s$s" --model mlp --recipe "$R/prune_int8.yaml" --epochs "$E" --seed "$s"; done
  for s in 1 2 3; do cz "student_alone_$s" --model "$R/student.yaml" --recipe "$R/alone.yaml" --epochs "$SE" --seed "$s"; done
) &
(  # chain 6: mlp dense vs unstructured vs 4x4 blocks at 92%, the same BLOCK_EPOCHS budget
  cz mlp_dense_block_budget --model mlp --recipe "$R/alone.yaml" --epochs "$BE" --seed 42
  cz mlp_unstr92_block_budget --model mlp --recipe "$R/unstr92_block_budget.yaml" --epochs "$BE" --seed 42
  cz mlp_block92 --model mlp --recipe "$R/block92.yaml" --epochs "$BE" --seed 42
) &
wait
echo "== results ($OUT)"
for f in "$OUT"/*/report.json "$OUT"/*/results.json; do echo "--- $f"; head -c 1500 "$f"; echo; done 2>/dev/null
for f in "$OUT"/*.txt; do echo "--- $f"; tr '\r' '\n' < "$f" | grep -v '^$' | tail -22; done
echo "== against dense, mean of seeds $PS (92% pruning: $PE epochs, at most 0.3 points lost;"
echo "   pruned + int8 + compact: $E epochs, at least 40x smaller, at most 0.5 points lost)"
/usr/bin/python3 - "$OUT" $PS <<'PY'
import json, sys
out, seeds = sys.argv[1], sys.argv[2:]
def report(name):
    try:
        with open(f"{out}/{name}/report.json") as f: return json.load(f)
    except (OSError, ValueError): return None
pairs = [("mlp pruned 92%", "mlp_dense_prune_budget", "mlp_prune92"),
         ("lenet5 pruned 92%", "lenet5_dense_prune_budget", "lenet5_prune92"),
         ("mlp pruned 95% + int8", "mlp_dense_loop", "mlp_prune_int8"),
         ("mlp pruned 95% + int8, distilled from lenet5", "mlp_dense_loop", "mlp_prune_int8_distill")]
for label, dense, compressed in pairs:
    gaps, ratios = [], []
    for s in seeds:
        d, c = report(f"{dense}_s{s}"), report(f"{compressed}_s{s}")
        if not d or not c or "accuracy_after" not in d or "accuracy_after" not in c:
            print(f"{label}, seed {s}: missing report"); continue
        da, ca = 100 * d["accuracy_after"], 100 * c["accuracy_after"]
        gaps.append(ca - da); ratios.append(c.get("compression_ratio", 0.0))
        print(f"{label}, seed {s}: dense {da:.2f}%, compressed {ca:.2f}% ({ca - da:+.2f}), "
              f"{ratios[-1]:.1f}x smaller than dense fp32")
    if gaps:
        print(f"{label}: mean {sum(gaps) / len(gaps):+.2f} points over {len(gaps)} seeds, "
              f"at least {min(ratios):.1f}x smaller")
PY
