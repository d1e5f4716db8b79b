"""CodeCarbon's tracker API and Zeus's measurement windows over Verdant's C++ tracker.

The meters are sampled by ``energy::Tracker`` on its own C++ thread, which never takes the
GIL; a Python call here only marks a boundary (one sample: about 35 us on a 2-core VM) or
writes the outputs, through the same C++ sinks as ``verdant measure``.

Arguments follow CodeCarbon's ``EmissionsTracker`` / ``OfflineEmissionsTracker`` /
``track_emissions`` (mlco2/codecarbon, ``codecarbon/emissions_tracker.py``, releases 2.x and
3.x, and its parameters page) in name, default and unit. Those Verdant cannot honour raise
``ValueError`` naming the argument (see ``_REFUSED``); none is silently ignored.
"""
from __future__ import annotations

import atexit
import csv
import functools
import inspect
import io
import logging
import os
import platform
import sys
import uuid
import weakref
from typing import Any, Callable, Dict, List, Optional

from . import _native

logger = logging.getLogger("verdant")

_MODES = ("machine", "process")

# CodeCarbon arguments Verdant does not support: the values that mean "off" (accepted, since
# they ask for what Verdant does anyway) and why any other value is refused.
_REFUSED: Dict[str, tuple] = {
    "api_call_interval": ((None,), "Verdant has no CodeCarbon API client"),
    "api_endpoint": ((None,), "Verdant has no CodeCarbon API client"),
    "api_key": ((None,), "Verdant has no CodeCarbon API client"),
    "save_to_api": ((None, False), "Verdant has no CodeCarbon API client"),
    "emissions_endpoint": ((None,), "Verdant sends nothing over the network"),
    "co2_signal_api_token": ((None,), "Verdant uses bundled intensity data, no online API"),
    "electricitymaps_api_token": ((None,), "Verdant uses bundled intensity data, no online API"),
    "country_2letter_iso_code": ((None,), "it only serves CodeCarbon's online intensity API"),
    "region": ((None,), "give grid_zone= (an EIA zone such as US-CISO, or a series file)"),
    "save_to_logger": ((None, False), "Verdant logs through the 'verdant' logger only"),
    "logging_logger": ((None,), "Verdant logs through the 'verdant' logger only"),
    "save_to_logfire": ((None, False), "Verdant has no Logfire output"),
    "output_handlers": ((None, [], ()), "Verdant's outputs are its CSV, JSONL and Prometheus"),
    "output_methods": ((None,), "Verdant's outputs are its CSV, JSONL and Prometheus"),
    "save_to_prometheus": (
        (None, False),
        "Verdant does not push to a Pushgateway: use prometheus_file= (node_exporter textfile) "
        "or metrics_port= (a /metrics endpoint)",
    ),
    "prometheus_url": ((None,), "Verdant does not push to a Pushgateway"),
    "experiment_name": ((None,), "Verdant writes no per-experiment task file"),
    "on_csv_write": (
        (None, "append"),
        "Verdant appends rows (every flush() and stop() adds one), like CodeCarbon's 'append'",
    ),
    "force_ram_power": ((None,), "Verdant models RAM as 0.392 W per GB in use or reads RAPL's dram"),
    "force_carbon_intensity_g_co2e_kwh": (
        (None,),
        "give grid_zone= a series file (timestamp,gco2eq_per_kwh) holding the intensity",
    ),
    # Asks for a CPU-load power model, Verdant's estimate already: both values say what happens.
    "force_mode_cpu_load": ((None, False, True), ""),
    "allow_multiple_runs": (
        (None, True),
        "Verdant always allows several trackers: one of them reports the machine "
        "(VERDANT_LOCAL_RANK=0 or the first to lock the machine file), the others their share",
    ),
    "wue": ((None, 0, 0.0), "Verdant does not estimate water use"),
    "rapl_include_dram": ((None, True), "Verdant always reads RAPL's dram domain when there is one"),
    "rapl_prefer_psys": ((None, False), "Verdant reads RAPL packages and dram, never psys"),
}

_GPU_ENV = "CUDA_VISIBLE_DEVICES"


def _refuse_unsupported(kwargs: Dict[str, Any]) -> None:
    for name, value in kwargs.items():
        if name not in _REFUSED:
            raise TypeError(f"EmissionsTracker() got an unexpected keyword argument '{name}'")
        harmless, why = _REFUSED[name]
        if any(value is h or (type(value) is type(h) and value == h) for h in harmless):
            continue
        raise ValueError(f"{name}={value!r} is not supported by Verdant: {why}")


def _gpu_ids(value: Any) -> Optional[List[int]]:
    """CodeCarbon's gpu_ids: NVML indices as a list or a comma-separated string; None: every
    GPU, or those CUDA_VISIBLE_DEVICES lists as CodeCarbon does (CUDA's order is NVML's
    unless CUDA_DEVICE_ORDER says otherwise)."""
    source = "gpu_ids"
    if value is None:
        env = os.environ.get(_GPU_ENV)
        if env is None or env.strip() == "":
            return None
        value, source = env, _GPU_ENV
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
    elif isinstance(value, int):
        parts = [value]
    else:
        parts = list(value)
    ids = []
    for p in parts:
        try:
            ids.append(int(p))
        except (TypeError, ValueError):
            if source == _GPU_ENV:
                logger.warning(
                    "%s=%s is not a list of GPU indices: tracking every GPU", _GPU_ENV, value
                )
                return None
            raise ValueError(
                f"gpu_ids={value!r}: Verdant takes GPU indices (e.g. [0, 1] or '0,1'), "
                f"not {p!r}"
            ) from None
    return ids


class EmissionsData:
    """One ``emissions.csv`` row, as CodeCarbon's ``EmissionsData``: an attribute per column,
    in the column's unit (duration s, emissions kg CO2eq, *_power W, *_energy kWh).
    ``values`` holds them in column order."""

    _INTS = ("cpu_count", "gpu_count")
    _TEXT = (
        "timestamp", "project_name", "run_id", "experiment_id", "country_name",
        "country_iso_code", "region", "cloud_provider", "cloud_region", "os", "python_version",
        "codecarbon_version", "cpu_model", "gpu_model", "tracking_mode", "on_cloud",
    )

    def __init__(self, values: Dict[str, Any]):
        self.values = values
        for k, v in values.items():
            setattr(self, k, v)

    @classmethod
    def from_row(cls, row: str) -> "EmissionsData":
        fields = next(csv.reader(io.StringIO(row)))
        values: Dict[str, Any] = {}
        for name, text in zip(_native.codecarbon_columns(), fields):
            if name in cls._TEXT:
                values[name] = text
            elif text == "":
                values[name] = None
            else:
                try:
                    values[name] = int(text) if name in cls._INTS else float(text)
                except ValueError:  # a text column this list does not know yet
                    values[name] = text
        return cls(values)

    def __repr__(self) -> str:
        return f"EmissionsData({self.values!r})"


class Measurement:
    """One window's figures, like Zeus's ``Measurement``: ``time`` in s and energy in J.

    ``cpu_energy`` and ``dram_energy`` are Verdant's domains as wholes (Zeus maps RAPL
    packages instead); ``gpu_energy`` maps each GPU's index to its joules, as Zeus does.
    ``total_energy`` is their sum (Zeus sums the GPUs only). ``scope`` says whose energy it
    is: ``"process"`` (this process's share) or ``"machine"``; ``kinds`` says, per domain,
    ``"measured"``, ``"estimated"`` or ``"none"``, ``sources`` from what, ``label`` both in
    one line. ``phase`` is the C++ result with both scopes. Figures are read from it when
    asked for, so ending a window costs no more than its sample.
    """

    __slots__ = ("phase", "scope")

    def __init__(self, phase: Any, scope: str):
        self.phase = phase
        self.scope = scope

    @property
    def name(self) -> str:
        return self.phase.name

    @property
    def time(self) -> float:
        return self.phase.duration_s

    def _joules(self) -> Dict[str, float]:
        return self.phase.machine_joules if self.scope == "machine" else self.phase.process_joules

    @property
    def cpu_energy(self) -> float:
        return self._joules()["cpu"]

    @property
    def dram_energy(self) -> float:
        return self._joules()["dram"]

    @property
    def gpu_energy(self) -> Dict[int, float]:
        return self.phase.gpu_joules

    @property
    def total_energy(self) -> float:
        j = self._joules()
        return j["cpu"] + j["dram"] + j["gpu"]

    @property
    def emissions(self) -> float:
        """kg CO2eq (PUE included)."""
        p = self.phase
        return p.machine_emissions_kg if self.scope == "machine" else p.emissions_kg

    @property
    def kinds(self) -> Dict[str, str]:
        return self.phase.kinds

    @property
    def sources(self) -> Dict[str, str]:
        return self.phase.sources

    @property
    def label(self) -> str:
        return self.phase.label

    @property
    def measured(self) -> bool:
        """True when every figure with a meter was measured (none estimated)."""
        return self.phase.kind == "measured"

    def __repr__(self) -> str:
        return (
            f"Measurement(name={self.name!r}, time={self.time:.6f}, "
            f"cpu_energy={self.cpu_energy:.6g}, dram_energy={self.dram_energy:.6g}, "
            f"gpu_energy={self.gpu_energy!r}, scope={self.scope!r}, label={self.label!r})"
        )


_running: "weakref.WeakSet[BaseEmissionsTracker]" = weakref.WeakSet()


@atexit.register
def _stop_at_exit() -> None:
    # A tracker still running when the interpreter exits still writes its row.
    for tracker in list(_running):
        try:
            tracker.stop()
        except Exception as e:  # noqa: BLE001 - nothing to raise to at exit
            logger.error("stopping the tracker at exit: %s", e)


_warned: set = set()


class BaseEmissionsTracker:
    """What ``EmissionsTracker`` and ``OfflineEmissionsTracker`` share (CodeCarbon's names).

    Verdant-only keyword arguments: ``grid_zone`` (a bundled EIA zone such as ``"US-CISO"``,
    or an intensity series file), ``price_per_kwh`` and ``currency`` (cost), and
    ``prometheus_file`` / ``metrics_port`` (Prometheus textfile, live ``/metrics``).
    """

    _offline = False

    def __init__(
        self,
        project_name: Optional[str] = None,
        *,
        measure_power_secs: Optional[float] = None,
        output_dir: Optional[str] = None,
        output_file: Optional[str] = None,
        save_to_file: Optional[bool] = None,
        gpu_ids: Any = None,
        experiment_id: Optional[str] = None,
        tracking_mode: Optional[str] = None,
        log_level: Any = None,
        logger_preamble: Optional[str] = None,
        force_cpu_power: Optional[float] = None,
        default_cpu_power: Optional[float] = None,
        pue: Optional[float] = None,
        country_iso_code: Optional[str] = None,
        cloud_provider: Optional[str] = None,
        cloud_region: Optional[str] = None,
        grid_zone: Optional[str] = None,
        price_per_kwh: Optional[float] = None,
        currency: str = "USD",
        prometheus_file: Optional[str] = None,
        metrics_port: Optional[int] = None,
        **codecarbon_only: Any,
    ):
        _refuse_unsupported(codecarbon_only)
        self._mode = "machine" if tracking_mode is None else tracking_mode
        if self._mode not in _MODES:
            raise ValueError(f"tracking_mode must be 'machine' or 'process', got {tracking_mode!r}")
        if log_level is not None:
            logger.setLevel(log_level.upper() if isinstance(log_level, str) else log_level)
        self._log = (
            logging.LoggerAdapter(logger, {}) if not logger_preamble else _Preamble(logger_preamble)
        )
        if cloud_provider is not None and cloud_region is None:
            raise ValueError("cloud_region must be given with cloud_provider (e.g. 'us-east-1')")
        if cloud_region is not None and cloud_provider is None:
            raise ValueError("cloud_provider must be given with cloud_region (e.g. 'aws')")
        given = [n for n, v in (("country_iso_code", country_iso_code),
                                ("cloud_provider", cloud_provider), ("grid_zone", grid_zone)) if v]
        if len(given) > 1:
            raise ValueError(f"give only one location, not {' and '.join(given)}")
        if self._offline and country_iso_code is None and cloud_provider is None and not grid_zone:
            raise ValueError(
                "OfflineEmissionsTracker needs the location: country_iso_code (e.g. 'FRA'), "
                "cloud_provider with cloud_region, or grid_zone"
            )
        interval = 15.0 if measure_power_secs is None else float(measure_power_secs)
        self._save = True if save_to_file is None else bool(save_to_file)
        self._output_dir = "." if output_dir is None else os.fspath(output_dir)
        self._output_file = "emissions.csv" if output_file is None else os.fspath(output_file)
        self._prometheus_file = None if prometheus_file is None else os.fspath(prometheus_file)

        self._tracker = _native.Tracker(
            interval_s=interval,
            project_name="codecarbon" if project_name is None else project_name,
            experiment_id="" if experiment_id is None else str(experiment_id),
            country=country_iso_code or "",
            cloud=f"{cloud_provider}:{cloud_region}" if cloud_provider else "",
            grid_zone=grid_zone or "",
            pue=pue,
            price_per_kwh=price_per_kwh,
            currency=currency,
            gpu_ids=_gpu_ids(gpu_ids),
            cpu_power_w=force_cpu_power,
            default_cpu_power_w=default_cpu_power,
            nvml_library=os.environ.get("VERDANT_NVML_LIBRARY", "libnvidia-ml.so.1"),
        )
        for w in self._tracker.warnings:
            self._warn_once(w)

        # The CSV's rows follow tracking_mode, but only one tracker per machine reports the
        # machine: the others write their own share, and say so in the row.
        self._info = self._tracker.run_info.copy()
        self._info.python_version = platform.python_version()
        if self._mode == "machine" and not self._info.machine_leader:
            self._warn_once(
                f"tracking_mode 'machine': {self._info.machine_reason}; writing this process's "
                "share instead"
            )
            self._mode = "process"
        self._info.tracking_mode = self._mode

        if self._save:
            _native.create_writable_folder(self._output_dir)
            for name in (self._output_file, "energy.jsonl"):
                _native.check_writable_file(os.path.join(self._output_dir, name))
        if self._prometheus_file:
            _native.check_writable_file(self._prometheus_file)
        self._metrics_port = metrics_port
        self._server = None

        self.run_id = uuid.UUID(self._info.run_id)
        self.final_emissions: Optional[float] = None
        self.final_emissions_data: Optional[EmissionsData] = None
        self._started = False
        self._stopped = False
        self._tasks: Dict[str, int] = {}
        self._active_task: Optional[str] = None
        self._task_results: Dict[str, EmissionsData] = {}
        self._windows: Dict[str, int] = {}
        self._finished: List[Any] = []  # phases not yet written to energy.jsonl

    # ---- CodeCarbon ----------------------------------------------------------------------
    def start(self) -> None:
        """Starts tracking (the C++ sampler thread). A second call only warns, as in CodeCarbon."""
        if self._started and not self._stopped:
            self._log.warning("Already started tracking")
            return
        if self._stopped:
            raise RuntimeError("this tracker has stopped; create a new one to track again")
        self._tracker.start()
        self._started = True
        _running.add(self)
        if self._metrics_port is not None:
            self._server = _native.MetricsServer(self._tracker, self._metrics_port, self._info)
            self._log.info("metrics at http://127.0.0.1:%d/metrics", self._server.port)

    def stop(self) -> Optional[float]:
        """Stops tracking, writes the outputs and returns the run's emissions in kg CO2eq (the
        machine's in tracking_mode 'machine', this process's share in 'process')."""
        if not self._started:
            self._log.error("You first need to start the tracker.")
            return None
        if self._stopped:
            self._log.warning("Tracker already stopped !")
            return self.final_emissions
        self._stopped = True
        _running.discard(self)
        self._server = None
        # Windows and tasks still open end with the run, innermost first.
        for name, phase_id in sorted(
            list(self._windows.items()) + list(self._tasks.items()), key=lambda kv: -kv[1]
        ):
            self._finished.append(self._tracker.end_phase(phase_id))
        self._windows.clear()
        self._tasks.clear()
        self._active_task = None
        total = self._tracker.stop()
        self._write(total)
        self.final_emissions_data = self._emissions_data(total)
        self.final_emissions = self.final_emissions_data.emissions
        return self.final_emissions

    def flush(self) -> Optional[float]:
        """Writes a row for the run so far and keeps tracking; returns kg CO2eq so far."""
        if not self._started or self._stopped:
            self._log.error("You first need to start the tracker.")
            return None
        live = self._tracker.snapshot()
        self._write(live)
        return self._emissions_data(live).emissions

    def start_task(self, task_name: Optional[str] = None) -> None:
        """Starts a named task (one at a time, as in CodeCarbon); its record goes to
        energy.jsonl."""
        if self._active_task is not None:
            self._log.warning("A task is already under measure")
            return
        self._ensure_started("start_task")
        if not task_name:
            task_name = str(uuid.uuid4())
        if task_name in self._task_results or task_name in self._windows:
            task_name += "_" + str(uuid.uuid4())
        self._tasks[task_name] = self._tracker.begin_phase(task_name)
        self._active_task = task_name

    def stop_task(self, task_name: Optional[str] = None) -> Optional[EmissionsData]:
        """Ends the task and returns its figures as CodeCarbon's EmissionsData."""
        name = task_name or self._active_task
        if name is None or name not in self._tasks:
            self._log.warning("stop_task : No active task to stop.")
            return None
        phase = self._tracker.end_phase(self._tasks.pop(name))
        if name == self._active_task:
            self._active_task = None
        self._finished.append(phase)
        data = self._emissions_data(phase)
        self._task_results[name] = data
        return data

    def __enter__(self) -> "BaseEmissionsTracker":
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # The row is written whatever ended the block, Ctrl-C (KeyboardInterrupt) included;
        # the exception then goes on. A failure to write never hides the block's own error.
        if exc_type is None:
            self.stop()
            return
        try:
            self.stop()
        except Exception as e:  # noqa: BLE001
            self._log.error("stopping the tracker after %s: %s", exc_type.__name__, e)

    # ---- Zeus ----------------------------------------------------------------------------
    def begin_window(self, key: str, sync_execution: bool = True) -> None:
        """Begins a measurement window; windows may nest or overlap, each under its own key.
        Starts the tracker if it has not been started (as a ZeusMonitor needs no start)."""
        if key in self._windows:
            raise ValueError(f"Measurement window '{key}' already exists")
        self._ensure_started("begin_window")
        if sync_execution:
            _sync_gpu()
        self._windows[key] = self._tracker.begin_phase(key)

    def end_window(self, key: str, sync_execution: bool = True, cancel: bool = False) -> Measurement:
        """Ends a window and returns its Measurement. cancel=True drops it from the outputs."""
        try:
            phase_id = self._windows.pop(key)
        except KeyError:
            raise ValueError(f"Measurement window '{key}' does not exist") from None
        if sync_execution:
            _sync_gpu()
        phase = self._tracker.end_phase(phase_id)
        if not cancel:
            self._finished.append(phase)
        return Measurement(phase, self._mode)

    # ---- Verdant --------------------------------------------------------------------------
    @property
    def tracking_mode(self) -> str:
        """What stop() and the CSV report: 'machine' or 'process' (see the machine rule)."""
        return self._mode

    @property
    def machine_reason(self) -> str:
        """Why this tracker does or does not report the whole machine."""
        return self._info.machine_reason

    @property
    def carbon_intensity(self) -> str:
        """The intensity and PUE that apply, in words."""
        return f"{self._info.carbon_description}; {self._info.pue_description}"

    def _warn_once(self, message: str) -> None:
        # Said once per process: a loop that makes a tracker per epoch need not repeat it.
        if message not in _warned:
            _warned.add(message)
            self._log.warning("%s", message)

    def _ensure_started(self, what: str) -> None:
        if self._stopped:
            raise RuntimeError(f"{what}: this tracker has stopped")
        if not self._started:
            self.start()

    def _emissions_data(self, phase) -> EmissionsData:
        return EmissionsData.from_row(_native.emissions_csv_row(phase, self._info))

    def _write(self, phase) -> None:
        phases = self._finished + [phase]
        self._finished = []
        if self._save:
            warning = _native.append_emissions_csv(
                os.path.join(self._output_dir, self._output_file), [phase], self._info
            )
            if warning:
                self._log.warning("%s", warning)
            _native.append_energy_jsonl(
                os.path.join(self._output_dir, "energy.jsonl"), phases, self._info
            )
        if self._prometheus_file:
            _native.write_prometheus_textfile(
                self._prometheus_file, _native.prometheus_text(phases, self._info)
            )


class EmissionsTracker(BaseEmissionsTracker):
    """CodeCarbon's ``EmissionsTracker``. Verdant never looks the location up online: give
    ``country_iso_code``, ``cloud_provider`` + ``cloud_region`` or ``grid_zone``; without one
    the world average (475 gCO2eq/kWh) applies and every output says so."""


class OfflineEmissionsTracker(BaseEmissionsTracker):
    """CodeCarbon's ``OfflineEmissionsTracker``: the location is required
    (``country_iso_code``, ``cloud_provider`` + ``cloud_region``, or ``grid_zone``)."""

    _offline = True


def track_emissions(fn: Optional[Callable] = None, *, offline: bool = False, **kwargs: Any):
    """CodeCarbon's decorator: tracks each call of the function (an OfflineEmissionsTracker
    when offline=True) and writes its row even when the call raises."""
    codecarbon_only = {k: v for k, v in kwargs.items() if k not in _ACCEPTED}
    _refuse_unsupported(codecarbon_only)
    if offline and not (kwargs.get("country_iso_code") or kwargs.get("cloud_provider")
                        or kwargs.get("grid_zone")):
        raise ValueError("track_emissions(offline=True) needs country_iso_code (or "
                         "cloud_provider with cloud_region, or grid_zone)")
    cls = OfflineEmissionsTracker if offline else EmissionsTracker

    def decorate(f: Callable) -> Callable:
        @functools.wraps(f)
        def wrapped(*args, **kw):
            tracker = cls(**kwargs)
            tracker.start()
            try:
                return f(*args, **kw)
            finally:
                tracker.stop()

        return wrapped

    return decorate(fn) if fn is not None else decorate


_ACCEPTED = {
    name
    for name, p in inspect.signature(BaseEmissionsTracker.__init__).parameters.items()
    if p.kind is not inspect.Parameter.VAR_KEYWORD and name != "self"
}


class _Preamble(logging.LoggerAdapter):
    """CodeCarbon's logger_preamble: a prefix on every message of this tracker."""

    def __init__(self, preamble: str):
        super().__init__(logger, {})
        self._preamble = preamble

    def process(self, msg, kwargs):
        return f"{self._preamble}{msg}", kwargs


def _sync_gpu() -> None:
    # Zeus's sync_execution: wait for queued GPU work so the window holds it. Only when the
    # program itself has started CUDA; importing torch here would cost a second.
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.synchronize()
