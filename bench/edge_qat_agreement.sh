#!/usr/bin/env bash
# Issue 5's consistency target: the runtime's int8 predictions against the quantization-aware
# model's simulated (fake-quant) predictions on the 10,000 Fashion-MNIST test images.
# Usage: bench/edge_qat_agreement.sh [BUILD_DIR] [DATA_DIR]   (defaults: build-edge, Debian's copy)
# A short QAT of `mlp` from scratch (1 epoch, 2 threads), 7-bit activations (the runtime's grid),
# then `verdant export` with the learned ranges; export prints both agreements.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-edge}
data=${2:-/usr/share/datasets/fashion-mnist}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
verdant=$build/src/cli/verdant
"$verdant" compress --model mlp --recipe "$root/bench/edge_qat7_mlp.yaml" --data "$data" \
  --out "$work/qat7" --threads 2 --no-energy --seed 1 --quiet
"$verdant" export "$work/qat7/model.vckpt" --out "$work/mlp_qat7.vdm" --precision int8 \
  --calibration "$data" --agreement-samples 10000
# For comparison: the 8-bit QAT of recipes/qat_int8.yaml (same schedule), re-gridded to 7 bits.
"$verdant" compress --model mlp --recipe "$root/recipes/qat_int8.yaml" --epochs 1 --lr 0.05 \
  --data "$data" --out "$work/qat8" --threads 2 --no-energy --seed 1 --quiet
"$verdant" export "$work/qat8/model.vckpt" --out "$work/mlp_qat8.vdm" --precision int8 \
  --calibration "$data" --agreement-samples 10000
