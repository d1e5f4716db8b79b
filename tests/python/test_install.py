"""`cmake --install --component python` (what scripts/install-python runs) gives a package
that imports and works from outside the source and build trees."""
import os
import subprocess

import pytest

from conftest import PYTHON, child_env

pytestmark = pytest.mark.slow


def test_installed_package_imports_and_tracks(tmp_path):
    build = os.environ.get("VERDANT_BINARY_DIR")
    if not build:
        pytest.skip("VERDANT_BINARY_DIR is not set (CTest sets it)")
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", build, "--component", "python", "--prefix",
                    str(prefix)], check=True, capture_output=True)
    site = subprocess.run(
        [PYTHON, "-c", "import sysconfig; print(sysconfig.get_path('platlib', "
         "vars={'base': '', 'platbase': ''}).lstrip('/').removeprefix('local/'))"],
        check=True, capture_output=True, text=True).stdout.strip()
    assert (prefix / site / "verdant" / "__init__.py").exists()
    assert (prefix / "share" / "verdant" / "carbon").is_dir()
    env = child_env(PYTHONPATH=str(prefix / site), VERDANT_DATA_DIR=str(prefix / "share" /
                                                                        "verdant"))
    code = ("import verdant, os\n"
            "assert os.path.dirname(verdant.__file__).startswith(os.environ['PYTHONPATH'])\n"
            "with verdant.OfflineEmissionsTracker(country_iso_code='FRA') as t:\n"
            "    pass\n"
            "print(verdant.__version__, t.final_emissions >= 0)\n")
    r = subprocess.run([PYTHON, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[1] == "True"
    assert (tmp_path / "emissions.csv").exists()
