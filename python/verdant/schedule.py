"""Carbon-aware helpers: when (and where) to run, and pausing a training loop in dirty hours.

``best_window`` gives the answer ``verdant schedule --json`` gives, from the same C++ code.
``should_pause`` answers one question for a loop that decides itself; ``CarbonPause`` runs
Verdant's pause policy (schedule::CarbonAwareController) and sleeps for you.

Pausing a PyTorch loop, with your own checkpoint::

    pause = verdant.schedule.CarbonPause("US-CISO", threshold=250)
    for epoch in range(epochs):
        if pause.should_pause():                      # the grid is above 250 gCO2eq/kWh
            torch.save({"model": model.state_dict(),  # checkpoint what you need to go on
                        "optimizer": optimizer.state_dict(), "epoch": epoch}, "ckpt.pt")
            pause.wait()                              # sleeps until a slot at or below it
            state = torch.load("ckpt.pt")             # resume (a new process could, too)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        train_one_epoch(model, optimizer)
        pause.step()                                  # records the step on the clock

Times are UTC. A zone is a bundled EIA zone (``"US-CISO"``, ...) or a series file (EIA CSV,
Electricity Maps CSV, ``timestamp,gco2eq_per_kwh`` CSV, Carbon Aware SDK JSON). The bundled
zones hold 2022: to replay them, give ``now=`` or ``simulate_clock=`` a 2022 time.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import time
from typing import Any, Dict, List, Optional, Sequence, Union

from . import _native

When = Union[None, str, _dt.datetime, float, int]
Span = Union[str, _dt.timedelta, int, float]


def _iso(when: When) -> str:
    """A time as ISO-8601 UTC text ('' for None: the clock)."""
    if when is None:
        return ""
    if isinstance(when, str):
        return when
    if isinstance(when, _dt.datetime):
        if when.tzinfo is None:
            raise ValueError(f"now={when!r}: give an aware datetime (UTC) or ISO-8601 text")
        return when.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(when, (int, float)):
        return _dt.datetime.fromtimestamp(when, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    raise TypeError(f"a time must be ISO-8601 text, a datetime or Unix seconds, not {when!r}")


def _unix(when: When) -> float:
    if when is None:
        return time.time()
    if isinstance(when, (int, float)):
        return float(when)
    if isinstance(when, str):
        text = when.replace("Z", "+00:00")
        parsed = _dt.datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=_dt.timezone.utc)
        return parsed.timestamp()
    if isinstance(when, _dt.datetime):
        if when.tzinfo is None:
            raise ValueError(f"now={when!r}: give an aware datetime (UTC) or ISO-8601 text")
        return when.timestamp()
    raise TypeError(f"a time must be ISO-8601 text, a datetime or Unix seconds, not {when!r}")


def _span(value: Span, setting: str) -> str:
    """A duration as Verdant's text ('4h', '90m', '3600')."""
    if isinstance(value, str):
        return value
    if isinstance(value, _dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(int(round(value)))
    raise TypeError(f"{setting} must be text like '4h', a timedelta or seconds, not {value!r}")


def _utc(text: str) -> _dt.datetime:
    return _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclasses.dataclass(frozen=True)
class Window:
    """The best start: where, when, and what it saves. ``json`` is exactly what
    ``verdant schedule --json`` prints (the Carbon Aware SDK's forecast shape)."""

    location: str
    start: _dt.datetime
    duration: _dt.timedelta
    intensity: float  # mean gCO2eq/kWh over the run
    emissions_g: float  # estimated, for the job's energy
    saving_percent: Optional[float]  # against starting now; None when that run hits a gap
    json: Dict[str, Any] = dataclasses.field(repr=False)

    @property
    def runner_ups(self) -> List[Dict[str, Any]]:
        return self.json["runnerUps"]


def best_window(
    zones: Union[str, Sequence[str]],
    duration: Span,
    within: Span,
    now: When = None,
    *,
    energy_kwh: Optional[float] = None,
    location: str = "",
    max_gap: Span = "6h",
    runner_ups: int = 3,
) -> Window:
    """The start in the next `within` (from `now`, default the clock) and the zone where a job
    of `duration` emits least. Same settings, same answer as
    ``verdant schedule --zone Z... --duration D --within W --now T --json``."""
    text = _native.plan_json(
        zones=[zones] if isinstance(zones, str) else list(zones),
        location=location,
        duration=_span(duration, "duration"),
        energy_kwh=energy_kwh,
        within=_span(within, "within"),
        now=_iso(now),
        max_gap=_span(max_gap, "max_gap"),
        runner_ups=runner_ups,
    )
    data = json.loads(text)
    best = data["optimalDataPoints"][0]
    return Window(
        location=best["location"],
        start=_utc(best["timestamp"]),
        duration=_dt.timedelta(minutes=best["duration"]),
        intensity=best["value"],
        emissions_g=best["emissions_g"],
        saving_percent=data["saving_percent"],
        json=data,
    )


_series_cache: Dict[tuple, Any] = {}


def _series(zone: str, max_gap: str):
    key = (zone, max_gap)
    if key not in _series_cache:
        _series_cache[key] = _native.Series(zone, max_gap)
    return _series_cache[key]


def intensity(zone: str, now: When = None, *, max_gap: Span = "6h") -> Optional[float]:
    """The zone's intensity (gCO2eq/kWh) at `now`; None inside a data gap. A time the series
    does not cover is a VerdantError naming the series and its range."""
    return _series(zone, _span(max_gap, "max_gap")).value_at(_unix(now))


def should_pause(zone: str, threshold: float, now: When = None, *, max_gap: Span = "6h") -> bool:
    """True when the zone's intensity at `now` (default the clock) is above `threshold`
    gCO2eq/kWh, or unknown (a gap is never taken as clean)."""
    if not threshold >= 0:
        raise ValueError(f"threshold must be a number of gCO2eq/kWh >= 0, got {threshold!r}")
    value = intensity(zone, now, max_gap=max_gap)
    return value is None or value > threshold


class CarbonPause:
    """Verdant's pause policy for your own loop: ``should_pause()`` before a step,
    ``wait()`` to sleep until the next slot at or below `threshold`, ``step()`` after each step.

    The real clock sleeps (the GIL released; Ctrl-C still interrupts). With
    ``simulate_clock="2022-06-01T00:00:00Z"`` a simulated clock replays the series instead:
    ``wait()`` jumps ahead and every ``step()`` advances it by `step_duration`. Pauses stop
    once they add up to `max_delay`: the loop then runs on, and ``report()["gave_up"]`` says so.
    """

    def __init__(
        self,
        zone: str,
        threshold: float,
        *,
        max_delay: Span = "7d",
        simulate_clock: When = None,
        step_duration: Optional[Span] = None,
        max_gap: Span = "6h",
    ):
        self._native = _native.PauseController(
            zone,
            float(threshold),
            _span(max_delay, "max_delay"),
            _iso(simulate_clock),
            _span(max_gap, "max_gap"),
        )
        if self._native.simulated and step_duration is None:
            raise ValueError("a simulated clock needs step_duration (e.g. '1h'): what one step takes")
        self._step = (
            None
            if step_duration is None
            else _native.duration_seconds(_span(step_duration, "step_duration"), "step_duration")
        )
        self._last = time.monotonic()

    def should_pause(self) -> bool:
        return self._native.should_pause()

    def wait(self) -> float:
        """Sleeps (or, simulated, jumps) to the next low slot; returns the seconds waited."""
        before = self._native.now()
        self._native.wait()
        self._last = time.monotonic()
        return self._native.now() - before

    def step(self, seconds: Optional[float] = None, joules: float = 0.0) -> None:
        """Records one step: `seconds` it took (default: step_duration on a simulated clock,
        the time since the last step or wait on the real one) and its energy, if known."""
        if seconds is None:
            now = time.monotonic()
            seconds = self._step if self._step is not None else now - self._last
            self._last = now
        self._native.record_step(seconds, joules)

    @property
    def now(self) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(self._native.now(), _dt.timezone.utc)

    @property
    def resume_time(self) -> Optional[_dt.datetime]:
        """When wait() would resume; None when it would not sleep."""
        t = self._native.resume_time()
        return None if t is None else _dt.datetime.fromtimestamp(t, _dt.timezone.utc)

    def report(self) -> Dict[str, Any]:
        """Steps, pauses, waits (UTC), total seconds waited, and whether it gave up."""
        return self._native.report()

