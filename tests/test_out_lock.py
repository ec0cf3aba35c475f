"""One writer per --out: a second command refuses in one line naming the holder, a stale lock is taken over, and
nothing is written through a symlinked lock."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from xentcompat import cli
from xentcompat.results.documents import results_document, write_json_atomic
from xentcompat.results.out_lock import LOCK_NAME
from tests.test_records import record


@pytest.fixture
def shard(tmp_path):
    path = tmp_path / "shard.json"
    write_json_atomic(path, results_document([record("a")], []))
    return path


def _lock(out, pid: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / LOCK_NAME).write_text(json.dumps({"pid": pid, "command": "run", "since": "2026-12-06T02:00:00"}))


def test_a_second_command_on_a_busy_out_refuses_and_touches_nothing(tmp_path, shard, capsys):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _lock(out, holder.pid)
        (out / "results.json").write_text("the first run's results")
        assert cli.main(["render", str(shard), "--out", str(out)]) == 2
        error = capsys.readouterr().err.strip()
        assert f"being written by another xentcompat run (pid {holder.pid}" in error and "\n" not in error
        assert (out / "results.json").read_text() == "the first run's results"
        assert not (out / "report.md").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_is_taken_over_and_released(tmp_path, shard):
    out = tmp_path / "out"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _lock(out, gone.pid)
    assert cli.main(["render", str(shard), "--out", str(out)]) == 0
    assert (out / "report.md").exists() and not (out / LOCK_NAME).exists()


def test_a_symlinked_lock_is_refused(tmp_path, shard, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).symlink_to(tmp_path / "elsewhere")
    assert cli.main(["render", str(shard), "--out", str(out)]) == 2
    assert "is a symlink" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere").exists()


def test_a_refused_command_leaves_no_directory_it_made(tmp_path, shard):
    out = tmp_path / "new"
    assert cli.main(["render", str(tmp_path / "missing.json"), "--out", str(out)]) == 2
    assert not out.exists()


@pytest.mark.parametrize("link", ["shards/torch.log", "shards", "report.md", "training/training-parts",
                                  "training-plots/accuracy.svg", "bench-parts/torch.log", "repro/XC-a.py",
                                  "shards/.torch.json.parts/gw0.jsonl"])
def test_a_symlink_where_a_command_writes_is_refused_and_its_target_untouched(tmp_path, shard, capsys, link):
    out, outside = tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("kept")
    path = out / link
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(outside / "precious" if "." in path.name else outside)
    assert cli.main(["render", str(shard), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert f"{path} is a symlink inside --out" in error and "\n" not in error
    assert (outside / "precious").read_text() == "kept" and sorted(p.name for p in outside.iterdir()) == ["precious"]
    assert not (out / "results.json").exists() and not (out / LOCK_NAME).exists()


def test_symlinks_elsewhere_in_out_are_left_alone(tmp_path, shard):
    out = tmp_path / "out"
    out.mkdir()
    (out / "my-notes").symlink_to(tmp_path)
    assert cli.main(["render", str(shard), "--out", str(out)]) == 0
