#!/usr/bin/env bash
# `verdant schedule` end to end: the answer, the SDK-shaped JSON, and one-line errors with
# a non-zero exit for each kind of bad input. Usage: cli_test.sh path/to/verdant
set -u
verdant=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() {  # check NAME EXPECTED_RC PATTERN -- command...
  local name=$1 want_rc=$2 pattern=$3
  shift 4
  local out rc err
  out=$("$@" 2>"$tmp/stderr")
  rc=$?
  err=$(cat "$tmp/stderr")
  out="$out$err"
  if [[ $rc -ne $want_rc ]] || ! grep -qF -- "$pattern" <<<"$out"; then
    echo "FAIL $name: rc=$rc (want $want_rc), output:"
    echo "$out"
    fail=1
  else
    echo "ok   $name"
  fi
  if [[ $want_rc -ne 0 && $(wc -l <<<"$err") -ne 1 ]]; then
    echo "FAIL $name: error is not one line"
    fail=1
  fi
}
now=2022-06-01T07:00:00Z
check "best window table" 0 "saving vs starting now in US-CISO" -- \
  "$verdant" schedule --zone US-CISO --duration 4h --within 24h --now $now
check "json optimal data point" 0 '"optimalDataPoints"' -- \
  "$verdant" schedule --zone US-CISO --zone US-WAAT --duration 4h --within 24h --now $now --json
check "json picks the cleanest zone" 0 '"location": "US-WAAT"' -- \
  "$verdant" schedule --zone US-CISO --zone US-WAAT --duration 4h --within 24h --now $now --json
check "energy and power" 0 "job: 6h, 3.000 kWh" -- \
  "$verdant" schedule --zone US-CISO --energy-kwh 3 --power-w 500 --within 12h --now $now
check "plot" 0 "plot: $tmp/p.svg" -- \
  "$verdant" schedule --zone US-CISO --duration 4h --within 24h --now $now --plot "$tmp/p.svg"
[[ -s $tmp/p.svg ]] || { echo "FAIL plot file missing"; fail=1; }
check "advisor" 0 "gcp:northamerica-northeast1" -- \
  "$verdant" schedule --advise --energy-kwh 10 --provider gcp
# Bad input: one line each, naming the flag / file / line.
check "window shorter than job" 2 "is shorter than the job (4h)" -- \
  "$verdant" schedule --zone US-CISO --duration 4h --start 2022-06-01T00:00Z --end 2022-06-01T03:00Z
check "series not covering the window" 1 "US-CISO.csv: series covers 2022-01-01T00:00:00Z to 2023-01-01T00:00:00Z" -- \
  "$verdant" schedule --zone US-CISO --duration 4h --within 24h --now 2022-12-31T07:00:00Z
check "unknown zone" 1 "closest: US-CISO" -- \
  "$verdant" schedule --zone US-CISOO --duration 4h --within 24h --now $now
printf 'timestamp,gco2eq_per_kwh\n2022-01-01T00:00Z,1\n2022-01-01T01:00Z,x\n' >"$tmp/bad.csv"
check "malformed series" 1 "$tmp/bad.csv:3:" -- \
  "$verdant" schedule --zone "$tmp/bad.csv" --duration 1h --within 1h --now 2022-01-01T00:00Z
printf 'timestamp,gco2eq_per_kwh\n2022-01-01T00:00Z,100\n2022-01-01T01:00Z,1e308\n' >"$tmp/huge.csv"
check "implausible intensity" 1 "$tmp/huge.csv:3: column 'gco2eq_per_kwh': intensity 1e308 is above 5000" -- \
  "$verdant" schedule --zone "$tmp/huge.csv" --duration 1h --within 1h --now 2022-01-01T00:00Z
check "missing series file" 1 "verdant: error: --zone $tmp/nope.csv: no such file" -- \
  "$verdant" schedule --zone "$tmp/nope.csv" --duration 1h --within 1h --now 2022-01-01T00:00Z
check "folder as series file" 1 "verdant: error: --zone $tmp/: is a directory" -- \
  "$verdant" schedule --zone "$tmp/" --duration 1h --within 1h --now 2022-01-01T00:00Z
check "bad duration" 2 "--duration: '4x'" -- \
  "$verdant" schedule --zone US-CISO --duration 4x --within 24h --now $now
check "no window" 2 "--start" -- "$verdant" schedule --zone US-CISO --duration 4h
check "advise without energy" 2 "--energy-kwh" -- "$verdant" schedule --advise
check "plot format" 2 "only .svg" -- \
  "$verdant" schedule --zone US-CISO --duration 4h --within 24h --now $now --plot "$tmp/p.png"
# verdant train --carbon-aware (needs the Fashion-MNIST package; skipped without it).
if [[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
  check "train --carbon-aware pause" 0 "1 pause(s)" -- \
    "$verdant" train --model mlp --epochs 1 --limit-train 640 --no-eval --carbon-aware pause \
    --grid-zone US-CISO --simulate-clock 2022-06-01T00:00:00Z --sim-step 30m --out "$tmp/ct"
  [[ -s $tmp/ct/carbon_aware.json ]] || { echo "FAIL carbon_aware.json missing"; fail=1; }
  # Live (real clock): the 2022 series does not cover now.
  check "train --carbon-aware live needs a series covering now" 1 "--simulate-clock" -- \
    "$verdant" train --model mlp --epochs 1 --limit-train 64 --no-eval --carbon-aware pause \
    --grid-zone US-CISO --out "$tmp/ct2"
  # Live with a flat forecast around now: nothing to wait for, nothing to pause for.
  echo "timestamp,gco2eq_per_kwh" >"$tmp/forecast.csv"
  for h in -2 -1 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26; do
    echo "$(date -u -d "$h hours" +%Y-%m-%dT%H:00:00Z),150" >>"$tmp/forecast.csv"
  done
  check "train --carbon-aware wait live" 0 "planned start" -- \
    "$verdant" train --model mlp --epochs 1 --limit-train 128 --no-eval --carbon-aware wait \
    --grid-zone "$tmp/forecast.csv" --carbon-horizon 2h --out "$tmp/ct3"
  check "train --carbon-aware pause live" 0 "(real clock), waited 0s in 0 pause(s)" -- \
    "$verdant" train --model mlp --epochs 1 --limit-train 128 --no-eval --carbon-aware pause \
    --threshold 200 --grid-zone "$tmp/forecast.csv" --out "$tmp/ct4"
fi
exit $fail
