"""The tracker: CodeCarbon's names, return units and CSV columns; Zeus's windows; the outputs
against the CLI's; errors as Python exceptions with Verdant's message; Ctrl-C; the
one-reporter-per-machine rule."""
import inspect
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import verdant
from verdant import _native
from verdant.tracker import _REFUSED

from conftest import PYTHON, child_env, read_csv, read_jsonl, run_python

WORLD_KG_PER_KWH = 0.475  # the default intensity, 475 gCO2eq/kWh


def burn(seconds):
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        for i in range(1000):
            x += i
    return x


def quiet(tmp_path, **kw):
    kw.setdefault("output_dir", str(tmp_path))
    kw.setdefault("measure_power_secs", 3600)  # only boundaries sample
    return verdant.EmissionsTracker(**kw)


# ---- CodeCarbon's API -------------------------------------------------------------------
def test_names_and_signatures_follow_codecarbon():
    for cls in (verdant.EmissionsTracker, verdant.OfflineEmissionsTracker):
        for name in ("start", "stop", "flush", "start_task", "stop_task", "__enter__",
                     "__exit__", "begin_window", "end_window"):
            assert callable(getattr(cls, name)), name
    params = inspect.signature(verdant.EmissionsTracker.__init__).parameters
    for name in ("project_name", "output_dir", "output_file", "measure_power_secs",
                 "country_iso_code", "cloud_provider", "cloud_region", "pue", "tracking_mode",
                 "gpu_ids", "save_to_file", "experiment_id", "log_level"):
        assert name in params, name
    assert list(inspect.signature(verdant.EmissionsTracker.begin_window).parameters)[1:] == [
        "key", "sync_execution"]
    assert list(inspect.signature(verdant.EmissionsTracker.end_window).parameters)[1:] == [
        "key", "sync_execution", "cancel"]


def test_stop_returns_kg_and_the_csv_has_codecarbons_columns_in_its_units(tmp_path):
    t = quiet(tmp_path, project_name="p", experiment_id="e1", pue=1.5)
    t.start()
    burn(0.3)
    kg = t.stop()
    rows = read_csv(tmp_path / "emissions.csv")
    assert len(rows) == 1
    row = rows[0]
    with open(tmp_path / "emissions.csv") as f:
        header = f.readline().rstrip("\n").split(",")
    assert header == list(_native.codecarbon_columns())
    for col in ("timestamp", "project_name", "run_id", "experiment_id", "duration", "emissions",
                "emissions_rate", "cpu_power", "gpu_power", "ram_power", "cpu_energy",
                "gpu_energy", "ram_energy", "energy_consumed", "country_name",
                "country_iso_code", "cloud_provider", "cloud_region", "os", "python_version",
                "cpu_count", "cpu_model", "gpu_count", "ram_total_size", "tracking_mode",
                "on_cloud", "pue"):
        assert col in header, col
    # kg CO2eq = kWh x intensity x PUE, as CodeCarbon computes it.
    kwh = float(row["energy_consumed"])
    assert kwh > 0
    assert float(row["emissions"]) == pytest.approx(kwh * WORLD_KG_PER_KWH * 1.5, rel=1e-9)
    assert kg == pytest.approx(float(row["emissions"]), rel=1e-9)
    assert t.final_emissions == kg
    assert t.final_emissions_data.emissions == kg
    assert t.final_emissions_data.energy_consumed == pytest.approx(kwh)
    assert float(row["duration"]) == pytest.approx(0.3, abs=0.2)  # seconds
    # W = J / s with energy in kWh: cpu_power x duration = cpu_energy x 3.6e6.
    assert float(row["cpu_power"]) * float(row["duration"]) == pytest.approx(
        float(row["cpu_energy"]) * 3.6e6, rel=1e-6)
    assert row["project_name"] == "p" and row["experiment_id"] == "e1"
    assert row["run_id"] == str(t.run_id)
    assert row["tracking_mode"] == "machine"  # CodeCarbon's default
    assert row["python_version"] == sys.version.split()[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", row["timestamp"])


def test_process_mode_writes_and_returns_this_process_share(tmp_path):
    t = quiet(tmp_path, tracking_mode="process")
    t.start()
    burn(0.2)
    kg = t.stop()
    row = read_csv(tmp_path / "emissions.csv")[0]
    assert row["tracking_mode"] == "process"
    total = read_jsonl(tmp_path / "energy.jsonl")[-1]
    assert total["phase"] == "total"
    assert kg == pytest.approx(total["emissions_kg"], rel=1e-9)
    assert float(row["cpu_energy"]) * 3.6e6 == pytest.approx(total["process_joules"]["cpu"])
    # The machine (reported by this tracker) used at least this process's share.
    assert total["machine_kwh"] >= total["process_kwh"]


def test_flush_writes_a_row_and_keeps_tracking(tmp_path):
    t = quiet(tmp_path)
    t.start()
    burn(0.1)
    first = t.flush()
    burn(0.1)
    final = t.stop()
    rows = read_csv(tmp_path / "emissions.csv")
    assert len(rows) == 2
    assert rows[0]["run_id"] == rows[1]["run_id"]
    assert 0 < first < final
    assert float(rows[0]["duration"]) < float(rows[1]["duration"])


def test_tasks_return_emissions_data_and_land_in_energy_jsonl(tmp_path, caplog):
    t = quiet(tmp_path)
    t.start()
    t.start_task("load")
    t.start_task("second while one is open")  # CodeCarbon: warns, keeps the first
    burn(0.1)
    load = t.stop_task()
    t.start_task("train")
    burn(0.15)
    train = t.stop_task()
    assert t.stop_task() is None
    t.stop()
    assert "A task is already under measure" in caplog.text
    assert isinstance(load, verdant.EmissionsData)
    assert load.duration == pytest.approx(0.1, abs=0.08)
    assert train.duration == pytest.approx(0.15, abs=0.08)
    assert train.emissions > 0 and train.energy_consumed > 0  # kg, kWh
    assert list(load.values) == list(_native.codecarbon_columns())
    phases = [r["phase"] for r in read_jsonl(tmp_path / "energy.jsonl")]
    assert phases == ["load", "train", "total"]
    assert len(read_csv(tmp_path / "emissions.csv")) == 1  # the run's row, like CodeCarbon


def test_context_manager_and_decorator(tmp_path):
    with quiet(tmp_path, output_file="ctx.csv") as t:
        burn(0.05)
    assert t.final_emissions > 0
    assert len(read_csv(tmp_path / "ctx.csv")) == 1

    @verdant.track_emissions(output_dir=str(tmp_path), output_file="deco.csv",
                             project_name="deco")
    def work(n):
        burn(0.05)
        return n * 2

    assert work(21) == 42
    assert work(1) == 2
    rows = read_csv(tmp_path / "deco.csv")
    assert [r["project_name"] for r in rows] == ["deco", "deco"]
    assert rows[0]["run_id"] != rows[1]["run_id"]

    @verdant.track_emissions(output_dir=str(tmp_path), output_file="fail.csv")
    def fails():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fails()
    assert len(read_csv(tmp_path / "fail.csv")) == 1

    @verdant.track_emissions
    def bare():
        return "ok"

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert bare() == "ok"
    finally:
        os.chdir(cwd)
    assert (tmp_path / "emissions.csv").exists()


def test_offline_tracker_needs_a_location_and_uses_it(tmp_path):
    with pytest.raises(ValueError, match="country_iso_code"):
        verdant.OfflineEmissionsTracker(output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="country_iso_code"):
        verdant.track_emissions(offline=True)
    t = verdant.OfflineEmissionsTracker(country_iso_code="FRA", output_dir=str(tmp_path),
                                        measure_power_secs=3600)
    with t:
        burn(0.05)
    row = read_csv(tmp_path / "emissions.csv")[0]
    assert row["country_iso_code"] == "FRA" and row["country_name"] == "France"
    assert "FRA" in t.carbon_intensity
    c = verdant.OfflineEmissionsTracker(cloud_provider="gcp", cloud_region="europe-west1",
                                        output_dir=str(tmp_path), output_file="cloud.csv")
    with c:
        pass
    row = read_csv(tmp_path / "cloud.csv")[0]
    assert (row["cloud_provider"], row["cloud_region"], row["on_cloud"]) == (
        "gcp", "europe-west1", "Y")
    with pytest.raises(ValueError, match="cloud_region"):
        verdant.EmissionsTracker(cloud_provider="aws")


def test_every_unsupported_codecarbon_argument_raises_value_error_by_name(tmp_path):
    for name, (harmless, _) in _REFUSED.items():
        for value in harmless:  # what Verdant does anyway is accepted
            quiet(tmp_path, **{name: value})
        if name == "force_mode_cpu_load":
            continue  # both values describe Verdant's estimate
        with pytest.raises(ValueError, match=f"^{name}=.*not supported by Verdant"):
            quiet(tmp_path, **{name: "something"})
    with pytest.raises(TypeError, match="unexpected keyword argument 'not_an_argument'"):
        quiet(tmp_path, not_an_argument=1)
    with pytest.raises(ValueError, match="save_to_api"):
        verdant.track_emissions(save_to_api=True)
    with pytest.raises(ValueError, match="tracking_mode"):
        quiet(tmp_path, tracking_mode="gpu")


def test_save_to_file_false_writes_nothing(tmp_path):
    t = quiet(tmp_path / "out", save_to_file=False)
    with t:
        pass
    assert t.final_emissions >= 0
    assert not (tmp_path / "out").exists()


def test_prometheus_textfile_and_live_endpoint(tmp_path):
    import urllib.request

    prom = tmp_path / "verdant.prom"
    t = quiet(tmp_path, prometheus_file=str(prom), metrics_port=0)
    t.start()
    url = f"http://127.0.0.1:{t._server.port}/metrics"
    live = urllib.request.urlopen(url, timeout=10).read().decode()
    assert 'phase="live"' in live and "verdant_energy_joules_total{" in live
    t.start_task("epoch 1")
    t.stop_task()
    t.stop()
    text = prom.read_text()
    assert 'phase="epoch 1"' in text and 'phase="total"' in text
    assert "# TYPE verdant_emissions_grams_total counter" in text
    promtool = shutil.which("promtool")
    if promtool:  # Debian's prometheus package, installed by scripts/setup
        checked = subprocess.run([promtool, "check", "metrics"], input=text, text=True,
                                 capture_output=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


# ---- the same format as the CLI ---------------------------------------------------------
def test_outputs_have_the_clis_format(tmp_path, verdant_exe):
    cli = tmp_path / "cli"
    subprocess.run([verdant_exe, "measure", "--out", str(cli), "--prometheus-file",
                    str(cli / "m.prom"), "--", "true"], check=True, capture_output=True)
    py = tmp_path / "py"
    with verdant.EmissionsTracker(output_dir=str(py), tracking_mode="process",
                                  prometheus_file=str(py / "m.prom")):
        pass
    first_line = lambda p: p.read_text().split("\n", 1)[0]
    assert first_line(cli / "emissions.csv") == first_line(py / "emissions.csv")
    cli_row, py_row = read_csv(cli / "emissions.csv")[0], read_csv(py / "emissions.csv")[0]
    assert cli_row.keys() == py_row.keys()
    for col in cli_row:  # numbers as numbers, empty as empty, text as text
        assert (cli_row[col] == "") == (py_row[col] == "") or col == "python_version", col
    assert cli_row["tracking_mode"] == py_row["tracking_mode"] == "process"
    cli_rec, py_rec = read_jsonl(cli / "energy.jsonl")[0], read_jsonl(py / "energy.jsonl")[0]
    assert sorted(cli_rec) == sorted(py_rec)
    metric_names = lambda p: sorted({line.split("{")[0] for line in p.read_text().splitlines()})
    assert metric_names(cli / "m.prom") == metric_names(py / "m.prom")


# ---- Zeus's windows ---------------------------------------------------------------------
def test_nested_windows_add_up(tmp_path):
    t = quiet(tmp_path, tracking_mode="process")
    t.begin_window("epoch")  # starts the tracker, as a ZeusMonitor needs no start()
    t.begin_window("step 1")
    burn(0.2)
    s1 = t.end_window("step 1")
    t.begin_window("step 2")
    burn(0.2)
    s2 = t.end_window("step 2")
    epoch = t.end_window("epoch")
    t.stop()
    assert isinstance(epoch, verdant.Measurement)
    assert epoch.time == pytest.approx(s1.time + s2.time, rel=0.02, abs=0.002)
    for domain in ("cpu_energy", "dram_energy"):
        whole, parts = getattr(epoch, domain), getattr(s1, domain) + getattr(s2, domain)
        assert whole >= parts * (1 - 1e-9)
        assert whole == pytest.approx(parts, rel=0.05, abs=1e-3), domain
    assert epoch.total_energy == pytest.approx(s1.total_energy + s2.total_energy, rel=0.05)
    assert s1.cpu_energy > 0
    assert epoch.scope == "process"
    # How each figure was obtained: no RAPL or NVML here, so estimated, and from what.
    assert epoch.kinds["cpu"] in ("measured", "estimated")
    assert epoch.kinds["gpu"] in ("measured", "none")
    assert epoch.label.startswith(("measured", "estimated", "partly"))
    if epoch.kinds["cpu"] == "estimated":
        assert "model" in epoch.sources["cpu"] and not epoch.measured
    assert epoch.emissions == pytest.approx(epoch.phase.emissions_kg)
    phases = [r["phase"] for r in read_jsonl(tmp_path / "energy.jsonl")]
    assert phases == ["step 1", "step 2", "epoch", "total"]


def test_window_keys_overlap_cancel_and_misuse(tmp_path):
    t = quiet(tmp_path)
    t.begin_window("a")
    t.begin_window("b")
    with pytest.raises(ValueError, match="Measurement window 'a' already exists"):
        t.begin_window("a")
    a = t.end_window("a")  # overlapping, not nested
    t.end_window("b", cancel=True)
    with pytest.raises(ValueError, match="Measurement window 'b' does not exist"):
        t.end_window("b")
    t.begin_window("left open")
    t.stop()
    assert a.time > 0
    phases = [r["phase"] for r in read_jsonl(tmp_path / "energy.jsonl")]
    assert phases == ["a", "left open", "total"]  # the cancelled one is not written
    with pytest.raises(RuntimeError, match="stopped"):
        t.begin_window("after")


def test_machine_scope_windows_report_the_machine(tmp_path):
    t = quiet(tmp_path)  # tracking_mode "machine", and this tracker holds the machine
    t.begin_window("w")
    burn(0.1)
    w = t.end_window("w")
    t.stop()
    assert w.scope == "machine"
    assert w.cpu_energy == w.phase.machine_joules["cpu"]
    assert w.cpu_energy >= w.phase.process_joules["cpu"]


def test_gpus_by_index_with_gpu_ids(tmp_path, monkeypatch):
    fake = os.environ.get("VERDANT_FAKE_NVML")
    if not fake:
        pytest.skip("VERDANT_FAKE_NVML is not set (CTest sets it)")
    monkeypatch.setenv("VERDANT_NVML_LIBRARY", fake)
    monkeypatch.setenv("FAKE_NVML_DEVICES", "3")
    monkeypatch.setenv("FAKE_NVML_MODE", "energy")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    t = quiet(tmp_path, gpu_ids=[0, 2])
    t.begin_window("w")
    w = t.end_window("w")
    t.stop()
    # The fake counter grows 1.5 J per read: one read inside the window, per GPU.
    assert w.gpu_energy == {0: pytest.approx(1.5), 2: pytest.approx(1.5)}
    assert w.kinds["gpu"] == "measured"
    row = read_csv(tmp_path / "emissions.csv")[0]
    assert row["gpu_count"] == "2" and row["gpu_model"] == "2 x Fake GPU 0"
    s = quiet(tmp_path, gpu_ids="1", output_file="one.csv")
    s.begin_window("w")
    assert s.end_window("w").gpu_energy == {1: pytest.approx(1.5)}
    s.stop()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    e = quiet(tmp_path, output_file="env.csv")
    e.begin_window("w")
    assert list(e.end_window("w").gpu_energy) == [2]
    e.stop()
    with pytest.raises(ValueError, match=r"^gpu_ids: no GPU 5 \(NVML sees 3, 0 to 2\)$"):
        quiet(tmp_path, gpu_ids=[5])
    with pytest.raises(ValueError, match="GPU indices"):
        quiet(tmp_path, gpu_ids=["GPU-1234"])
    monkeypatch.setenv("VERDANT_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1")
    with pytest.raises(ValueError, match="^gpu_ids: GPUs asked for, but NVML unavailable"):
        quiet(tmp_path, gpu_ids=[0])


# ---- errors cross as Python exceptions with Verdant's message ---------------------------
def test_library_errors_keep_verdants_message(tmp_path):
    with pytest.raises(ValueError, match=r"^PUE must be a number >= 1\.0, got 0\.5$"):
        quiet(tmp_path, pue=0.5)
    with pytest.raises(ValueError, match="price must be a finite number"):
        quiet(tmp_path, price_per_kwh=-1)
    with pytest.raises(ValueError, match="^measure_power_secs must be > 0 seconds$"):
        quiet(tmp_path, measure_power_secs=0)
    with pytest.raises(verdant.VerdantError) as unknown:
        quiet(tmp_path, country_iso_code="FRX")
    assert isinstance(unknown.value, RuntimeError)
    assert "FRA" in str(unknown.value)  # the closest valid names
    with pytest.raises(ValueError, match="^give only one location, not country_iso_code and grid_zone$"):
        quiet(tmp_path, country_iso_code="FRA", grid_zone="US-CISO")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(verdant.VerdantError, match=str(blocker)):
        verdant.EmissionsTracker(output_dir=str(blocker))


# ---- Ctrl-C -----------------------------------------------------------------------------
def test_keyboard_interrupt_in_a_tracked_block_still_writes_the_row(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with quiet(tmp_path) as t:
            t.start_task("epoch 1")
            burn(0.05)
            raise KeyboardInterrupt
    assert len(read_csv(tmp_path / "emissions.csv")) == 1
    assert [r["phase"] for r in read_jsonl(tmp_path / "energy.jsonl")] == ["epoch 1", "total"]


def test_a_real_sigint_in_another_process_still_writes_the_row(tmp_path):
    code = textwrap.dedent(f"""
        import os, signal, time, verdant
        with verdant.EmissionsTracker(output_dir={str(tmp_path)!r}, measure_power_secs=0.05):
            time.sleep(0.2)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        print("not reached")
    """)
    r = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "KeyboardInterrupt" in r.stderr
    assert "not reached" not in r.stdout
    row = read_csv(tmp_path / "emissions.csv")[0]
    assert 0.15 < float(row["duration"]) < 3


def test_a_tracker_left_running_writes_its_row_at_exit(tmp_path):
    code = textwrap.dedent(f"""
        import verdant
        t = verdant.EmissionsTracker(output_dir={str(tmp_path)!r})
        t.start()
    """)
    run_python(code)
    assert len(read_csv(tmp_path / "emissions.csv")) == 1


# ---- one reporter per machine -----------------------------------------------------------
def test_two_trackers_in_one_process_report_the_machine_once(tmp_path):
    first = quiet(tmp_path, output_file="first.csv")
    second = quiet(tmp_path, output_file="second.csv")
    assert first.tracking_mode == "machine"
    assert "this process reports the machine" in first.machine_reason
    assert second.tracking_mode == "process"  # it asked for machine; the first reports it
    assert "is held by" in second.machine_reason
    with first, second:
        burn(0.1)
    assert read_csv(tmp_path / "first.csv")[0]["tracking_mode"] == "machine"
    assert read_csv(tmp_path / "second.csv")[0]["tracking_mode"] == "process"
    second_total = read_jsonl(tmp_path / "energy.jsonl")
    assert any(r["machine_joules"] is None for r in second_total)
    del first  # the lease goes with the tracker: a new one reports the machine again
    import gc

    gc.collect()
    assert quiet(tmp_path).tracking_mode == "machine"


def test_two_trackers_in_two_processes_report_the_machine_once(tmp_path):
    holder = subprocess.Popen(
        [PYTHON, "-c", textwrap.dedent(f"""
            import sys, verdant
            t = verdant.EmissionsTracker(output_dir={str(tmp_path)!r}, output_file="a.csv")
            print(t.tracking_mode, flush=True)
            sys.stdin.readline()
            with t:
                pass
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "machine"
        mine = quiet(tmp_path, output_file="b.csv")
        assert mine.tracking_mode == "process"
        assert f"pid {holder.pid}" in mine.machine_reason
        with mine:
            pass
    finally:
        holder.communicate("go\n", timeout=60)
    assert read_csv(tmp_path / "a.csv")[0]["tracking_mode"] == "machine"
    assert read_csv(tmp_path / "b.csv")[0]["tracking_mode"] == "process"


def test_local_rank_decides_before_the_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("VERDANT_LOCAL_RANK", "1")
    t = quiet(tmp_path)
    assert t.tracking_mode == "process" and "VERDANT_LOCAL_RANK=1" in t.machine_reason
    monkeypatch.setenv("VERDANT_LOCAL_RANK", "0")
    held = quiet(tmp_path)
    assert held.tracking_mode == "machine"
    assert quiet(tmp_path).tracking_mode == "machine"  # rank 0 reports whoever holds the lock


# ---- the sampler runs on a C++ thread, without the GIL ----------------------------------
def test_sampling_thread_does_not_slow_a_python_loop(tmp_path):
    def loop_rate():
        n, end = 0, time.perf_counter() + 0.3
        while time.perf_counter() < end:
            n += 1
        return n

    plain, tracked = [], []
    for _ in range(5):
        plain.append(loop_rate())
        t = quiet(tmp_path, measure_power_secs=0.002, save_to_file=False)  # 500 samples/s
        with t:
            tracked.append(loop_rate())
    plain.sort()
    tracked.sort()
    # A sampler that held the GIL while it waits between samples would all but stop the loop.
    # Half is the bar, not a closer one: a 2-vCPU VM's speed drifts by a third and more from
    # one loop to the next (seen: 1.7 M against 2.6 M iterations with nothing tracked).
    assert tracked[2] > 0.5 * plain[2], (plain, tracked)


def test_window_boundaries_let_other_python_threads_run(tmp_path):
    t = quiet(tmp_path, save_to_file=False)
    t.start()
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(1)

    other = threading.Thread(target=count)
    other.start()
    for _ in range(300):
        t.begin_window("w")
        t.end_window("w")
    stop.set()
    other.join()
    t.stop()
    assert len(ticks) > 0
