#!/usr/bin/env bash
# Times `verdant schedule` on a year-long series (US-CISO, 8760 hours) with a 24-hour window
# for a 4-hour job, end to end (process start, CSV load, search, output), against the NumPy
# peer (bench/schedule_peer.py, the Carbon Aware SDK's rolling-average method), interleaved.
# Target: verdant schedule answers in under 50 ms. Prints medians and the ratio.
# Usage: bench/schedule_cli_timing.sh [path/to/verdant] [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
verdant=${1:-build/src/cli/verdant}
runs=${2:-21}
now=2022-06-01T07:00:00Z
file=data/carbon/grid-hourly-2022/US-CISO.csv
ours=() peer=() peer_inproc=()
ms() { /usr/bin/python3 -c "import sys; print(f'{(int(sys.argv[2]) - int(sys.argv[1])) / 1e6:.3f}')" "$@"; }
for ((i = 0; i < runs; i++)); do
  a=$(date +%s%N); "$verdant" schedule --zone US-CISO --duration 4h --within 24h --now $now >/dev/null; b=$(date +%s%N)
  ours+=("$(ms "$a" "$b")")
  a=$(date +%s%N); out=$(/usr/bin/python3 bench/schedule_peer.py $file $now 4 24); b=$(date +%s%N)
  peer+=("$(ms "$a" "$b")")
  peer_inproc+=("$(echo "$out" | awk '{print $3}')")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mo=$(median "${ours[@]}"); mp=$(median "${peer[@]}"); mpi=$(median "${peer_inproc[@]}")
echo "verdant schedule (end to end, year-long series, 24h window): median ${mo} ms over $runs runs (target < 50 ms)"
echo "numpy peer (end to end incl. interpreter start):             median ${mp} ms"
echo "numpy peer (in-process load + answer only):                  median ${mpi} ms"
/usr/bin/python3 -c "import sys; print(f'ratio peer/verdant end to end: {float(sys.argv[2])/float(sys.argv[1]):.1f}x; vs peer in-process: {float(sys.argv[3])/float(sys.argv[1]):.2f}x')" "$mo" "$mp" "$mpi"
echo "answers: verdant: $("$verdant" schedule --zone US-CISO --duration 4h --within 24h --now $now --json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin)["optimalDataPoints"][0]; print(d["timestamp"], round(d["value"], 6))')"
echo "         peer:    $(/usr/bin/python3 bench/schedule_peer.py $file $now 4 24 | awk '{print $1, $2}')"
