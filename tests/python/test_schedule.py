"""verdant.schedule: best_window gives `verdant schedule --json`'s answer; should_pause and
CarbonPause pause in dirty hours, simulated and on the real clock (Ctrl-C still works)."""
import datetime as dt
import json
import subprocess
import textwrap
import time

import pytest

import verdant
from verdant import schedule

from conftest import PYTHON

UTC = dt.timezone.utc


def cli_json(exe, *args):
    r = subprocess.run([exe, "schedule", *args, "--json"], check=True, capture_output=True,
                       text=True)
    return json.loads(r.stdout)


def test_best_window_is_the_clis_answer(verdant_exe):
    expected = cli_json(verdant_exe, "--zone", "US-CISO", "--zone", "US-ERCO", "--duration",
                        "4h", "--within", "24h", "--now", "2022-06-01T07:00:00Z")
    w = schedule.best_window(["US-CISO", "US-ERCO"], "4h", "24h", now="2022-06-01T07:00:00Z")
    assert w.json == expected
    best = expected["optimalDataPoints"][0]
    assert w.location == best["location"]
    assert w.start == dt.datetime.fromisoformat(best["timestamp"].replace("Z", "+00:00"))
    assert w.intensity == best["value"] and w.emissions_g == best["emissions_g"]
    assert w.saving_percent == expected["saving_percent"]
    assert w.duration == dt.timedelta(hours=4)
    assert w.runner_ups == expected["runnerUps"]
    # datetime / timedelta arguments mean the same.
    same = schedule.best_window(("US-CISO", "US-ERCO"), dt.timedelta(hours=4),
                                dt.timedelta(days=1), now=dt.datetime(2022, 6, 1, 7, tzinfo=UTC))
    assert same.json == expected
    energy = cli_json(verdant_exe, "--zone", "US-CISO", "--duration", "2h", "--energy-kwh",
                      "3", "--within", "12h", "--now", "2022-01-10T00:00:00Z")
    assert schedule.best_window("US-CISO", "2h", "12h", "2022-01-10T00:00:00Z",
                                energy_kwh=3).json == energy


def test_schedule_errors_name_the_setting():
    with pytest.raises(ValueError, match=r"^duration: '4x' is not a positive duration"):
        schedule.best_window("US-CISO", "4x", "24h", now="2022-06-01T00:00:00Z")
    with pytest.raises(verdant.VerdantError, match="US-CISO"):
        schedule.best_window("US-CISX", "4h", "24h", now="2022-06-01T00:00:00Z")
    with pytest.raises(ValueError, match="aware datetime"):
        schedule.best_window("US-CISO", "4h", "24h", now=dt.datetime(2022, 6, 1))
    with pytest.raises(ValueError, match="threshold"):
        schedule.should_pause("US-CISO", -1, now="2022-06-01T00:00:00Z")


def test_should_pause_compares_the_hour_with_the_threshold():
    t = "2022-06-01T12:30:00Z"
    value = schedule.intensity("US-CISO", t)
    assert value > 0
    assert schedule.should_pause("US-CISO", value - 1, now=t) is True
    assert schedule.should_pause("US-CISO", value, now=t) is False
    assert schedule.should_pause("US-CISO", value + 1, now=dt.datetime(2022, 6, 1, 12, 5,
                                                                     tzinfo=UTC)) is False
    with pytest.raises(verdant.VerdantError, match="series covers 2022"):
        schedule.should_pause("US-CISO", 100)  # today: the bundled zones hold 2022


def test_carbon_pause_on_a_simulated_clock_pauses_in_dirty_hours():
    zone, start = "US-CISO", "2022-06-01T00:00:00Z"
    day = [schedule.intensity(zone, f"2022-06-01T{h:02d}:00:00Z") for h in range(24)]
    threshold = sorted(day)[len(day) // 2]  # the day's median: some hours above, some below
    pause = schedule.CarbonPause(zone, threshold, simulate_clock=start, step_duration="1h")
    checkpoints, steps = 0, 0
    while steps < 12:
        if pause.should_pause():
            checkpoints += 1
            assert schedule.intensity(zone, pause.now) > threshold
            waited = pause.wait()
            assert waited > 0
        assert schedule.intensity(zone, pause.now) <= threshold  # every step runs clean
        pause.step()
        steps += 1
    report = pause.report()
    assert report["steps"] == 12
    assert report["pauses"] == checkpoints and checkpoints > 0
    assert report["waited_s"] == sum(
        (dt.datetime.fromisoformat(b[:-1]) - dt.datetime.fromisoformat(a[:-1])).total_seconds()
        for a, b in report["waits"])
    assert not report["gave_up"]
    with pytest.raises(ValueError, match="step_duration"):
        schedule.CarbonPause(zone, threshold, simulate_clock=start)


def test_carbon_pause_gives_up_after_max_delay():
    pause = schedule.CarbonPause("US-CISO", 0, simulate_clock="2022-06-01T00:00:00Z",
                                 step_duration="1h", max_delay="3h")
    for _ in range(3):
        assert not pause.should_pause()  # nothing is ever <= 0: run on, and say so
        pause.step()
    assert pause.report()["gave_up"]


def _series_file(path, values):
    """An hourly plain series starting at the current hour."""
    hour = int(time.time()) // 3600 * 3600
    lines = ["timestamp,gco2eq_per_kwh"]
    for i, v in enumerate(values):
        t = dt.datetime.fromtimestamp(hour + 3600 * i, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"{t},{v}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_real_clock_pause_sleeps_until_the_clean_hour_and_ctrl_c_ends_it(tmp_path):
    # Two dirty hours (so a test run across an hour boundary still starts in one), then clean.
    series = _series_file(tmp_path / "now.csv", [500, 500, 100, 100])
    start = dt.datetime.fromisoformat(
        (tmp_path / "now.csv").read_text().splitlines()[1].split(",")[0].replace("Z", "+00:00"))
    assert schedule.should_pause(series, 250)
    pause = schedule.CarbonPause(series, 250)
    assert pause.should_pause()
    assert pause.resume_time == start + dt.timedelta(hours=2)
    code = textwrap.dedent(f"""
        import sys, verdant
        pause = verdant.schedule.CarbonPause({series!r}, 250)
        assert pause.should_pause()
        print("waiting", flush=True)
        try:
            pause.wait()
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(3)
    """)
    child = subprocess.Popen([PYTHON, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "waiting"
    time.sleep(0.3)
    sent = time.monotonic()
    child.send_signal(subprocess.signal.SIGINT)
    out, _ = child.communicate(timeout=30)
    assert child.returncode == 3 and "interrupted" in out
    assert time.monotonic() - sent < 5  # the wait checks for signals between short sleeps
