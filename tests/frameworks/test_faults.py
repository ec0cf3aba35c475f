"""Faults while a run is under way: a SIGTERM to `xentcompat run` reaches its shards, and no shard outlives it to
write a shard file beside older results later."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest


def test_sigterm_to_the_cli_stops_its_shards(tmp_path, target):
    if subprocess.run(["pgrep", "--version"], capture_output=True).returncode != 0:
        pytest.skip("pgrep is not installed")
    out = tmp_path / "out"
    run = subprocess.Popen([sys.executable, "-m", "xentcompat.cli", "run", "--targets", target, "--dtypes",
                            "float32", "-n", "1", "--out", str(out)], stderr=subprocess.PIPE, text=True)
    log = out / "shards" / f"{target}.log"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (log.exists() and log.stat().st_size > 0):
        time.sleep(0.2)
    assert log.exists(), "the shard never started"
    run.send_signal(signal.SIGTERM)
    status = run.wait(timeout=120)
    assert status == 128 + signal.SIGTERM, run.stderr.read()
    time.sleep(1)
    leftover = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True).stdout.split()
    assert leftover == [], f"processes of the run still alive: {leftover}"
    assert not (out / "results.json").exists() and not (out / "shards" / f"{target}.json").exists()
