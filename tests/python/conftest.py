"""Shared by the Python package's tests: paths from CTest's environment, a private machine
lock per test (so other trackers on this machine, and the tests between themselves, do not
decide who reports the machine), and an edge model exported by the real CLI."""
import csv
import json
import os
import subprocess
import sys

import pytest

SOURCE_DIR = os.environ.get(
    "VERDANT_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
)
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
PYTHON = "/usr/bin/python3"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: examples and end-to-end runs (seconds each)")


def tool(name):
    path = os.environ.get(name)
    if not path:
        pytest.skip(f"{name} is not set (CTest sets it)")
    return path


@pytest.fixture(autouse=True)
def machine_lock(tmp_path, monkeypatch):
    lock = tmp_path / "machine.lock"
    monkeypatch.setenv("VERDANT_MACHINE_LOCK", str(lock))
    monkeypatch.delenv("VERDANT_LOCAL_RANK", raising=False)
    return lock


@pytest.fixture
def verdant_exe():
    return tool("VERDANT_EXE")


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def child_env(**extra):
    """The environment a child Python needs to import this build's package."""
    env = dict(os.environ)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_python(code, *args, check=True, **kwargs):
    return subprocess.run(
        [PYTHON, "-c", code, *args], capture_output=True, text=True, check=check, **kwargs
    )


@pytest.fixture(scope="session")
def edge_model(tmp_path_factory):
    """An int8 mlp exported by `verdant export` after one short epoch of `verdant train`."""
    exe = tool("VERDANT_EXE")
    if not os.path.isdir(FASHION_MNIST):
        pytest.skip("Fashion-MNIST is not installed (dataset-fashion-mnist)")
    out = tmp_path_factory.mktemp("edge")
    env = child_env(VERDANT_MACHINE_LOCK=str(out / "lock"))
    subprocess.run(
        [exe, "train", "--model", "mlp", "--epochs", "1", "--limit-train", "3000",
         "--limit-test", "500", "--out", str(out / "run")],
        check=True, capture_output=True, env=env,
    )
    model = out / "m.vdm"
    subprocess.run(
        [exe, "export", str(out / "run" / "checkpoint.vckpt"), "--precision", "int8",
         "--calibration", FASHION_MNIST, "--out", str(model)],
        check=True, capture_output=True, env=env,
    )
    return str(model)
