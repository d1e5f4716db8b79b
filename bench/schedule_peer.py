#!/usr/bin/python3
"""Peer for `verdant schedule`: the Carbon Aware SDK's method (minimum of a rolling average
over the series) in NumPy, on the same EIA file, the same 4-hour job and 24-hour window.
Hourly starts only (the SDK's granularity). Prints the best start, its mean intensity and
the in-process time in ms (load + answer), so bench/schedule_cli_timing.sh can compare.
Usage: schedule_peer.py FILE NOW_ISO [JOB_HOURS] [WITHIN_HOURS]"""
import csv
import sys
import time
from datetime import datetime, timedelta, timezone

import numpy as np


def main():
    path, now_text = sys.argv[1], sys.argv[2]
    job = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    within = int(sys.argv[4]) if len(sys.argv) > 4 else 24
    t0 = time.perf_counter()
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    col = header.index("avg_CI")
    stamps = [datetime.fromisoformat(r[0]) for r in rows]
    values = np.array([float(r[col]) if r[col] else np.nan for r in rows])
    # Same gap rule as Verdant for short gaps: linear interpolation.
    idx = np.arange(len(values))
    known = ~np.isnan(values)
    values = np.interp(idx, idx[known], values[known])
    now = datetime.fromisoformat(now_text.replace("Z", "+00:00"))
    first = stamps.index(now)
    window = values[first:first + within + job]
    rolling = np.convolve(window, np.ones(job) / job, mode="valid")
    best = int(np.argmin(rolling))
    ms = (time.perf_counter() - t0) * 1000
    print(f"{(stamps[first + best]).isoformat()} {rolling[best]:.6f} {ms:.3f}")


if __name__ == "__main__":
    main()
