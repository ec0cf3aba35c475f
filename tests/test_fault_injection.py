"""Faults injected into real runs of `xentcompat run` (the `fault` target of tests/fault_target.py, a user case file
of six cases, the fourth of which triggers the fault): a worker or a whole shard killed mid-cell, a cell that hangs,
an adapter that raises an error of its own, a disk that fills while the report is written. Nothing measured is lost; the cell that was running is recorded as
crashed, saying why; cells that never ran are counted."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fault_adapter import FAULT
from xentcompat import cli
from xentcompat.adapters import base
from xentcompat.results.documents import read_results
from xentcompat.report import files as report_files

REPOSITORY = Path(__file__).resolve().parents[1]
CASES = [{"id": f"c{index}", "logits": [[7.25 if index == 3 else 1.0, 0.0, -1.0]], "labels": [0]}
         for index in range(6)]


@pytest.fixture
def fault(tmp_path, monkeypatch):
    """Run the fault target with XC_FAULT=`kind` and the given -n; (exit status, out directory)."""
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps({"cases": CASES}))
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p tests.fault_target")  # the shards' pytest knows the target too
    monkeypatch.setitem(base.TARGETS, FAULT.name, FAULT)

    def run(kind: str, workers: str, *extra: str) -> tuple[int, object]:
        monkeypatch.setenv("XC_FAULT", kind)
        out = tmp_path / f"out-{kind}-{workers}"
        status = cli.main(["run", "--targets", "fault", "--dtypes", "float32", "--cases", str(cases), "--only-cases",
                           "-n", workers, "--idle-timeout", "60", *extra, "--out", str(out)])
        return status, out

    return run


def _by_case(document: dict) -> dict[str, dict]:
    return {record["case"]: record for record in document["records"]}


def _results(out) -> dict:
    path = out / "results.json"
    return read_results(path if path.exists() else out / "results.partial.json")


def test_a_killed_worker_loses_only_its_cell_which_is_recorded_as_crashed(fault):
    """Every other cell runs (on the other worker or the crashed one's replacement), and the cell that killed its
    worker runs once: xdist alone would run it again and lose a second worker (see `run.scheduling`)."""
    status, out = fault("kill", "2")
    document = _results(out)
    records = _by_case(document)
    assert records["c3"]["loss"]["outcome"] == "crashed" and "process running this cell died" in \
        records["c3"]["error"]["message"]
    assert sorted(records) == [f"c{i}" for i in range(6)]
    assert all(records[f"c{i}"]["loss"]["outcome"] == "ok" for i in (0, 1, 2, 4, 5))
    assert not document["not_run"] and status == 0
    assert (out / "shards" / "fault.log").read_text().count("node down") == 1


def test_a_killed_shard_keeps_what_it_measured_and_counts_the_rest(fault):
    status, out = fault("kill", "1")
    assert status == 3
    document = _results(out)
    records = _by_case(document)
    assert sorted(records) == ["c0", "c1", "c2", "c3"] and records["c3"]["loss"]["outcome"] == "crashed"
    assert "killed by signal SIGKILL" in document["targets"][0]["failed"]
    assert [entry["reason"] for entry in document["not_run"] if entry.get("target") == "fault"] == [
        "2 of 6 collected cells did not run: the shard stopped before them"]


def test_a_hung_cell_is_stopped_by_the_cell_timeout_and_recorded_as_crashed(fault):
    status, out = fault("hang", "1", "--cell-timeout", "3")
    records = _by_case(_results(out))
    assert records["c3"]["loss"]["outcome"] == "crashed"
    assert "cell timeout of 3 s" in records["c3"]["error"]["message"]
    assert status == 3 and sorted(records) == ["c0", "c1", "c2", "c3"]


def test_an_adapter_s_own_error_fails_the_run_and_keeps_every_other_cell(fault):
    """A check that raises before recording its cell is not a deviation: the run exits 3, says so, and keeps what
    the shard measured."""
    status, out = fault("adapter-error", "1")
    assert status == 3
    document = _results(out)
    assert sorted(_by_case(document)) == ["c0", "c1", "c2", "c4", "c5"]
    failed = document["targets"][0]["failed"]
    assert "raised before recording their cell" in failed
    assert "the first: " in failed and "KeyError" in failed and "a bug in the adapter itself" in failed


def test_a_full_disk_while_writing_the_report_is_one_line_and_keeps_the_measurements(fault, monkeypatch, capsys):
    def full_disk(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(report_files, "write_text_atomic", full_disk)
    status, out = fault("none", "1")
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert status == 2 and "No space left on device" in error and "report.md" in error
    assert len(read_results(out / "shards" / "fault.json")["records"]) == 6
    assert "xentcompat merge" in error


def test_a_run_leaves_nothing_in_the_system_temp_directory(fault, tmp_path, monkeypatch):
    """The shards' pytest temporary directories live in the run's own scratch directory, removed at the end: no
    pytest-of-USER tree (where pytest prunes all but the last three, a user's own included)."""
    import tempfile

    system_temp = tmp_path / "system-temp"
    system_temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(system_temp))
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    status, out = fault("none", "2")
    assert status == 0 and len(_results(out)["records"]) == 6
    assert sorted(path.name for path in system_temp.iterdir()) == []


def test_a_run_killed_with_sigkill_leaves_no_process_behind(tmp_path):
    """SIGKILL to `run` (no handler can run): its shard, which leads its own process group, gets SIGTERM from the
    kernel (a parent-death signal) and takes its xdist workers with it. Here every cell hangs."""
    if subprocess.run(["pgrep", "--version"], capture_output=True).returncode != 0:
        pytest.skip("pgrep is not installed")
    cases, out = tmp_path / "cases.json", tmp_path / "out"
    cases.write_text(json.dumps({"cases": [{"id": "c0", "logits": [[7.25, 0.0, -1.0]], "labels": [0]},
                                           {"id": "c1", "logits": [[7.25, 1.0, -1.0]], "labels": [0]}]}))
    program = ("import sys, tests.fault_target; from xentcompat import cli; "
               f"sys.exit(cli.main(['run', '--targets', 'fault', '--dtypes', 'float32', '--cases', {str(cases)!r}, "
               f"'--only-cases', '-n', '2', '--out', {str(out)!r}]))")
    environment = {**os.environ, "XC_FAULT": "hang", "PYTEST_ADDOPTS": "-p tests.fault_target",
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))}
    command = subprocess.Popen([sys.executable, "-c", program], env=environment, cwd=REPOSITORY,
                               stderr=subprocess.DEVNULL)
    group = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(group) < 3:  # the shard and its two workers, hanging
            time.sleep(0.2)
            group = _shard_group(out)
        assert len(group) >= 3, f"the shard and its workers never started: {group}"
        command.send_signal(signal.SIGKILL)
        command.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _still_alive(group):
            time.sleep(0.2)
        assert _still_alive(group) == []
    finally:
        for pid in _still_alive(group):
            os.kill(int(pid), signal.SIGKILL)


def _shard_group(out) -> list[str]:
    """The processes of the shard's group (the shard leads it: its pid is the group id)."""
    shard = subprocess.run(["pgrep", "-f", f"{out}/shards/fault.json"], capture_output=True, text=True).stdout.split()
    if len(shard) != 1:
        return []
    return subprocess.run(["pgrep", "-g", shard[0]], capture_output=True, text=True).stdout.split()


def _still_alive(pids: list[str]) -> list[str]:
    alive = []
    for pid in pids:
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            continue
        status = Path(f"/proc/{pid}/status")
        if status.exists() and "\nState:\tZ" not in status.read_text():  # a zombie is gone, not yet reaped
            alive.append(pid)
    return alive


def _start_run(tmp_path, kind: str, out: Path) -> subprocess.Popen:
    """`xentcompat run` of the fault target (XC_FAULT=`kind`, one process) as a command of its own."""
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps({"cases": CASES}))
    program = ("import sys, tests.fault_target; from xentcompat import cli; "
               f"sys.exit(cli.main(['run', '--targets', 'fault', '--dtypes', 'float32', '--cases', {str(cases)!r}, "
               f"'--only-cases', '-n', '1', '--out', {str(out)!r}]))")
    environment = {**os.environ, "XC_FAULT": kind, "PYTEST_ADDOPTS": "-p tests.fault_target",
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-c", program], env=environment, cwd=REPOSITORY,
                            stderr=subprocess.PIPE, text=True)


def test_a_run_stopped_by_sigterm_keeps_what_it_measured_and_merge_reads_its_part_files(tmp_path, capsys):
    """SIGTERM while the fourth cell hangs: the three cells measured and the one running (crashed) go into
    results.partial.json, an earlier results.json is left as it was, and the part files merge on their own."""
    from xentcompat.run.parts import RecordCounter, parts_dir

    out = tmp_path / "out"
    (out / "results.json").parent.mkdir()
    (out / "results.json").write_text("an earlier report")
    command = _start_run(tmp_path, "hang", out)
    counter = RecordCounter(parts_dir(out / "shards" / "fault.json"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and counter()[0] < 3:
        time.sleep(0.2)
    time.sleep(1.0)  # the fourth cell has started (and hangs)
    command.send_signal(signal.SIGTERM)
    _, error = command.communicate(timeout=60)
    assert command.returncode == 128 + signal.SIGTERM, error
    assert (out / "results.json").read_text() == "an earlier report"
    records = _by_case(read_results(out / "results.partial.json"))
    assert sorted(records) == ["c0", "c1", "c2", "c3"] and records["c3"]["loss"]["outcome"] == "crashed"
    assert f"the 4 records measured before the stop are in {out / 'results.partial.json'}" in error

    directory = parts_dir(out / "shards" / "fault.json")
    assert cli.main(["merge", str(directory / "main.records.jsonl"), str(directory), "--out",
                     str(tmp_path / "merged")]) == 0
    merged = read_results(tmp_path / "merged" / "results.json")
    assert sorted(_by_case(merged)) == ["c0", "c1", "c2", "c3"]
    assert "read from its part files" in merged["targets"][0]["failed"]
    assert cli.main(["merge", str(out / "shards"), "--out", str(tmp_path / "refused")]) == 2
    said = capsys.readouterr().err.strip()
    assert "\n" not in said and f"part files of stopped shards here: {directory}" in said
    assert not (tmp_path / "refused" / "results.json").exists()
