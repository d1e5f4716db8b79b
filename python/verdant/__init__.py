"""Verdant from Python: energy and carbon tracking, carbon-aware scheduling, edge inference.

One engine, Verdant's C++ library, behind three familiar shapes:

- CodeCarbon's tracker: ``EmissionsTracker``, ``OfflineEmissionsTracker``,
  ``@track_emissions``; ``start()``, ``stop()`` (kg CO2eq), ``flush()``, ``start_task()`` /
  ``stop_task()``, and use as a context manager. Outputs: ``emissions.csv`` (CodeCarbon's
  columns), ``energy.jsonl`` and Prometheus text, written by the same C++ code as the CLI's.
- Zeus's windows: ``tracker.begin_window(name)`` / ``tracker.end_window(name)``, nested or
  overlapping, returning a ``Measurement``.
- ``verdant.schedule`` (best_window, should_pause, CarbonPause) and ``verdant.edge.Model``.

Errors: a setting Verdant refuses is a ``ValueError``, a wrong input type a ``TypeError``,
anything else from the library a ``VerdantError`` (a ``RuntimeError``); each message is the
library's own line.
"""
from ._native import VerdantError, __version__
from .tracker import (
    EmissionsData,
    EmissionsTracker,
    Measurement,
    OfflineEmissionsTracker,
    track_emissions,
)
from . import edge, schedule

__all__ = [
    "EmissionsData",
    "EmissionsTracker",
    "Measurement",
    "OfflineEmissionsTracker",
    "VerdantError",
    "__version__",
    "edge",
    "schedule",
    "track_emissions",
]
