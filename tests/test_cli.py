"""The command line without a framework: missing frameworks listed as skipped, merge and render, failed shards.
Every bad input is in tests/test_bad_inputs.py."""

from __future__ import annotations

import json

from xentcompat import cli
from xentcompat.results.documents import read_results, results_document, write_json_atomic
from tests.test_records import record


def test_missing_framework_is_listed_as_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "missing_requirement", lambda target: f"{target} is not installed (target {target})")
    assert cli.main(["run", "--targets", "torch", "--out", str(tmp_path)]) == 0
    document = read_results(tmp_path / "results.json")
    assert document["targets"] == [{"name": "torch", "skipped": "torch is not installed (target torch)"}]
    assert "torch: torch is not installed" in (tmp_path / "report.md").read_text()


def test_merge_then_render(tmp_path):
    shards = []
    for name, case in (("one", "a"), ("two", "b")):
        shards.append(tmp_path / f"{name}.json")
        write_json_atomic(shards[-1], results_document([record(case, loss="inf", finding="XC-1")], []))
    assert cli.main(["merge", *map(str, shards), "--out", str(tmp_path / "merged")]) == 0
    report = (tmp_path / "merged" / "report.md").read_text()
    assert "XC-1" in report and "| torch.nn.CrossEntropyLoss |  | float32 | eager | a | loss 1 for 1 |" in report
    assert cli.main(["render", str(tmp_path / "merged" / "results.json"), "--out", str(tmp_path / "again")]) == 0
    assert read_results(tmp_path / "again" / "results.json")["records"] == read_results(
        tmp_path / "merged" / "results.json")["records"]


def test_a_failed_shard_keeps_the_earlier_results_and_what_it_measured(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    write_json_atomic(out / "results.json", results_document([record("earlier")], []))
    before = (out / "results.json").read_text()

    def dying_shards(targets, shard_dir, args):  # killed with two cells done, a third running, five planned
        parts = shard_dir / ".torch.json.parts"
        parts.mkdir(parents=True)
        (parts / "gw0.records.jsonl").write_text("".join(json.dumps(record(case)) + "\n" for case in ("a", "b")))
        running = record("c", loss="crashed")
        (parts / "gw0.standing.jsonl").write_text(json.dumps(record("b")) + "\n" + json.dumps(running) + "\n{\"cut")
        (parts / "planned.json").write_text('{"cells": 5}')
        return {"torch": -9}

    monkeypatch.setattr(cli, "missing_requirement", lambda target: None)
    monkeypatch.setattr(cli, "_run_shards", dying_shards)
    assert cli.main(["run", "--targets", "torch", "--out", str(out)]) == 3
    assert (out / "results.json").read_text() == before
    partial = read_results(out / "results.partial.json")
    assert [(r["case"], r["loss"]["outcome"]) for r in partial["records"]] == [("a", "ok"), ("b", "ok"),
                                                                              ("c", "crashed")]
    failed = partial["targets"][0]["failed"]
    assert "killed by signal SIGKILL" in failed and "after 3 records of 5 cells, 1 of them lost" in failed
    assert partial["not_run"] == [{"target": "torch", "reason": "2 of 5 collected cells did not run: the shard "
                                                                "stopped before them"}]
    assert "kept the earlier" in capsys.readouterr().err


def test_a_shard_that_stops_making_progress_is_stopped(tmp_path, capsys):
    """A child that prints once and then hangs is killed after the idle timeout, and its status says so."""
    import subprocess
    import sys

    log = tmp_path / "hung.log"
    with log.open("w") as stream:
        child = subprocess.Popen([sys.executable, "-c", "print('started', flush=True); import time; time.sleep(600)"],
                                 stdout=stream, start_new_session=True)
        status = cli._wait_while_busy(child, log, idle_timeout=5, target="fake")
    assert status == -9 and "no progress for" in capsys.readouterr().err
