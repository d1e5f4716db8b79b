"""The examples in examples/python/, each on a small slice of Fashion-MNIST, and the tracker's
figures against `verdant measure` for the same workload."""
import json
import os
import re
import subprocess
import textwrap

import pytest

from conftest import FASHION_MNIST, PYTHON, SOURCE_DIR, read_csv, read_jsonl

EXAMPLES = os.path.join(SOURCE_DIR, "examples", "python")
pytestmark = pytest.mark.slow


def run_example(name, *args, cwd):
    if not os.path.isdir(FASHION_MNIST):
        pytest.skip("Fashion-MNIST is not installed (dataset-fashion-mnist)")
    r = subprocess.run([PYTHON, os.path.join(EXAMPLES, name), *args], capture_output=True,
                       text=True, cwd=cwd, timeout=600)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_tracked_pytorch_training(tmp_path):
    out = run_example("train_pytorch_tracked.py", "--epochs", "2", "--limit", "2000",
                      "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert re.search(r"epoch 2: .* test accuracy \d+\.\d+%, train \d+\.\d J", out), out
    rows = read_csv(tmp_path / "run" / "emissions.csv")
    assert len(rows) == 1 and rows[0]["project_name"] == "pytorch-mlp"
    assert rows[0]["country_iso_code"] == "FRA"
    phases = [r["phase"] for r in read_jsonl(tmp_path / "run" / "energy.jsonl")]
    assert phases == ["epoch 1", "eval 1", "epoch 2", "eval 2", "total"]


def test_carbon_pause_in_a_pytorch_loop(tmp_path):
    out = run_example("carbon_pause_pytorch.py", "--epochs", "4", "--limit", "500",
                      "--checkpoint", str(tmp_path / "ckpt.pt"), cwd=tmp_path)
    assert "checkpointed; pausing until" in out, out
    summary = out.strip().splitlines()[-1]
    m = re.fullmatch(r"4 epochs, (\d+) pauses, ([\d.]+) h waited", summary)
    assert m and int(m.group(1)) >= 1 and float(m.group(2)) > 0, summary
    for line in out.splitlines():  # every epoch ran at or below the threshold (250)
        e = re.search(r"epoch \d+, loss [\d.]+, (\d+) gCO2eq/kWh", line)
        if e:
            assert int(e.group(1)) <= 250, line


def test_exported_vdm_from_python(tmp_path, edge_model):
    out = run_example("edge_predict.py", edge_model, "--limit", "1000", cwd=tmp_path)
    acc = float(re.search(r"accuracy ([\d.]+)% on 1000 test images", out).group(1))
    assert acc > 60, out  # one short epoch on 3000 images
    assert re.search(r"latency per inference: median [\d.]+ us", out)


def test_tracker_agrees_with_verdant_measure(tmp_path, verdant_exe):
    """The same CPU-bound workload (a 2 s Python loop) under `verdant measure` and under the
    Python tracker: both figures are estimates here (no RAPL), from the same model, and the
    process's CPU energy must agree within noise on this shared machine."""
    busy = "import time\nend = time.perf_counter() + 2\nwhile time.perf_counter() < end: pass\n"
    subprocess.run([verdant_exe, "measure", "--out", str(tmp_path / "cli"), "--", PYTHON,
                    "-c", busy], check=True, capture_output=True)
    tracked = textwrap.dedent(f"""
        import verdant
        with verdant.EmissionsTracker(output_dir={str(tmp_path / "py")!r},
                                      tracking_mode="process", measure_power_secs=1):
    """) + textwrap.indent(busy, "    ")
    subprocess.run([PYTHON, "-c", tracked], check=True, capture_output=True)
    cli = read_jsonl(tmp_path / "cli" / "energy.jsonl")[-1]
    py = read_jsonl(tmp_path / "py" / "energy.jsonl")[-1]
    assert cli["sources"]["cpu"] == py["sources"]["cpu"]  # the same meter
    c, p = cli["process_joules"]["cpu"], py["process_joules"]["cpu"]
    assert c > 0 and p > 0
    assert abs(c - p) / max(c, p) < 0.3, (c, p)
    assert abs(cli["duration_s"] - py["duration_s"]) < 0.5
