#!/usr/bin/env bash
# `verdant report` end to end: a tiny sweep and a single training run on a fake Fashion-MNIST,
# the HTML page rendered by headless Chromium (one mark per trial in each Pareto plot, the pick
# marked, the curves drawn) and a screenshot, and the compute appendix.
# Usage: report_test.sh path/to/verdant path/to/make_fake_data SCREENSHOT.png
set -u
verdant=$1
fake_data=$2
shot=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
say() { echo "$@"; }
die() { echo "FAIL $*"; fail=1; }

"$fake_data" "$tmp/fmnist" || { echo "FAIL cannot write the data"; exit 1; }
cat >"$tmp/s.yaml" <<YAML
models: [mlp]
data: fmnist
epochs: 2
batch_size: 32
latency_samples: 20
candidates:
  grid:
    sparsity: [0, 0.5, 0.9]
YAML
"$verdant" sweep "$tmp/s.yaml" --out "$tmp/sweep" --threads 1 --max-accuracy-loss 50 >"$tmp/sweep.txt" 2>&1 ||
  { cat "$tmp/sweep.txt"; die "sweep"; }
"$verdant" train --model mlp --data "$tmp/fmnist" --epochs 2 --threads 1 --out "$tmp/run" \
  >"$tmp/train.txt" 2>&1 || { cat "$tmp/train.txt"; die "train"; }
"$verdant" report "$tmp/sweep" --html "$tmp/report.html" --appendix "$tmp/appendix.md" ||
  die "report on the sweep"
"$verdant" report "$tmp/run" --html "$tmp/run.html" --appendix "$tmp/run.md" ||
  die "report on one run"

trials=$(ls "$tmp/sweep/trials" | wc -l)
[[ $trials -eq 3 ]] || die "expected 3 trials, found $trials"
size=$(stat -c %s "$tmp/report.html")
[[ $size -lt 1000000 ]] || die "report.html is $size bytes"
grep -q "http" "$tmp/report.html" && die "report.html refers to the network"

browser=$(command -v chromium || true)
if [[ -z $browser ]]; then
  die "chromium is not installed (scripts/setup installs it)"
else
  flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
         --disable-background-networking --disable-component-update --disable-sync
         --user-data-dir="$tmp/profile")
  "$browser" "${flags[@]}" --dump-dom "file://$tmp/report.html" >"$tmp/dom.html" 2>/dev/null ||
    die "chromium could not render report.html"
  marks=$(grep -o 'class="mark[^"]*"' "$tmp/dom.html" | wc -l)
  [[ $marks -eq $((4 * trials)) ]] || die "expected $((4 * trials)) marks (4 plots x $trials trials), found $marks"
  picks=$(grep -o 'class="mark[^"]* pick"' "$tmp/dom.html" | wc -l)
  [[ $picks -eq 4 ]] || die "expected the pick marked in 4 plots, found $picks"
  curves=$(grep -o 'class="curve"' "$tmp/dom.html" | wc -l)
  [[ $curves -ge $trials ]] || die "expected training curves, found $curves"
  "$browser" "${flags[@]}" --window-size=1360,1500 --screenshot="$shot" "file://$tmp/report.html" \
    >/dev/null 2>&1 || die "screenshot"
  [[ -s $shot ]] || die "no screenshot"
  "$browser" "${flags[@]}" --dump-dom "file://$tmp/run.html" >"$tmp/run_dom.html" 2>/dev/null
  grep -q 'class="curve"' "$tmp/run_dom.html" || die "the single run's page has no curves"
fi
grep -q "co2_eq_emissions:" "$tmp/appendix.md" || die "appendix lacks the model card block"
grep -q "The whole search (3 runs)" "$tmp/appendix.md" || die "appendix lacks the search totals"
grep -q "training FLOPs" "$tmp/run.md" || die "run appendix lacks FLOPs"
[[ $fail -eq 0 ]] && say "report_test: all passed"
exit $fail
