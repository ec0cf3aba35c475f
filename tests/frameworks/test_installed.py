"""`pip install .` (a wheel, not an editable checkout) runs the matrix: the wheel holds the matrix tests, the plugin
and the causes, and `xentcompat run` from it, in a directory without a checkout, writes a complete report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from xentcompat.results.documents import read_results

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The package as `pip install .` lays it out: a wheel built from the sources alone, unpacked."""
    work = tmp_path_factory.mktemp("installed")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "xentcompat", source / "xentcompat", ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(work / "wheel"), str(source)], capture_output=True, text=True)
    if built.returncode != 0:
        pytest.fail(f"building the wheel failed: {built.stderr[-2000:]}")
    [wheel] = (work / "wheel").glob("xentcompat-*.whl")
    site = work / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(site)
    assert "xentcompat/matrix/test_agreement.py" in names and "xentcompat/run/plugin.py" in names
    assert any(name.startswith("xentcompat/expectations/causes/") for name in names)
    assert "xentcompat/expectations/causes/kernel_paths.toml" in names
    return site


def test_run_from_the_installed_package_outside_the_checkout(installed, tmp_path, target):
    if target != "torch":
        pytest.skip("one target shows it")
    environment = {**os.environ, "PYTHONPATH": str(installed)}
    where = subprocess.run([sys.executable, "-c", "import xentcompat; print(xentcompat.__file__)"], cwd=tmp_path,
                           env=environment, capture_output=True, text=True).stdout.strip()
    assert where.startswith(str(installed)), where
    cases = tmp_path / "mine.json"
    cases.write_text(json.dumps({"cases": [{"id": "mine", "logits": [[2.0, 0.5, -1.0]], "labels": [0],
                                            "dtypes": ["float32"]}]}))
    done = subprocess.run([sys.executable, "-m", "xentcompat.cli", "run", "--targets", "torch", "--cases",
                           str(cases), "--only-cases", "-n", "1", "--out", "out"], cwd=tmp_path, env=environment,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:] + (tmp_path / "out" / "shards" / "torch.log").read_text()[-3000:]
    records = read_results(tmp_path / "out" / "results.json")["records"]
    assert {r["case"] for r in records} == {"mine"} and len(records) >= 5
    assert all((r["loss"]["outcome"], r["grad"]["outcome"]) == ("ok", "ok") for r in records
               if r["api"] == "torch.nn.CrossEntropyLoss")
