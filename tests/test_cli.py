"""The command line without a framework: input errors exit 2 in one line; missing frameworks are listed as skipped."""

from __future__ import annotations

import json

import pytest

from xentcompat.report import cli
from xentcompat.report.records import read_results, results_document, write_json_atomic
from tests.test_records import record


def test_malformed_case_file_exits_2_with_one_line(tmp_path, capsys):
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps({"cases": [{"id": "x", "logits": [[1, 2]], "labels": [1],
                                            "options": {"label_smoothing": "0.1"}}]}))
    status = cli.main(["run", "--targets", "torch", "--cases", str(cases), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip()
    assert status == 2
    assert error.count("\n") == 0 and "case 'x'" in error and "field 'options.label_smoothing'" in error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argument, message", [(["--targets", "mxnet"], "unknown target 'mxnet'"),
                                               (["--dtypes", "float8"], "unknown dtype 'float8'")])
def test_bad_arguments_exit_2(tmp_path, capsys, argument, message):
    assert cli.main(["run", *argument, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


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
    assert "**inf / ok** !" in report and "XC-1" in report
    assert cli.main(["render", str(tmp_path / "merged" / "results.json"), "--out", str(tmp_path / "again")]) == 0
    assert read_results(tmp_path / "again" / "results.json")["records"] == read_results(
        tmp_path / "merged" / "results.json")["records"]


def test_corrupt_shard_exits_2(tmp_path, capsys):
    shard = tmp_path / "shard.json"
    shard.write_text("garbage")
    assert cli.main(["merge", str(shard), "--out", str(tmp_path / "out")]) == 2
    assert "corrupt results file" in capsys.readouterr().err


def test_out_at_a_file_exits_2_in_one_line(tmp_path, capsys):
    shard = tmp_path / "shard.json"
    write_json_atomic(shard, results_document([record("a")], []))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert cli.main(["merge", str(shard), "--out", str(blocker)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "cannot write" in error and "a-file" in error


def test_a_failed_shard_keeps_the_earlier_results_and_what_it_measured(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    write_json_atomic(out / "results.json", results_document([record("earlier")], []))
    before = (out / "results.json").read_text()

    def dying_shards(targets, shard_dir, args):  # a shard killed after writing two records of its parts
        parts = shard_dir / ".torch.json.parts"
        parts.mkdir(parents=True)
        (parts / "gw0.jsonl").write_text("".join(json.dumps(record(case)) + "\n" for case in ("a", "b")))
        return {"torch": -9}

    monkeypatch.setattr(cli, "missing_requirement", lambda target: None)
    monkeypatch.setattr(cli, "_run_shards", dying_shards)
    assert cli.main(["run", "--targets", "torch", "--out", str(out)]) == 3
    assert (out / "results.json").read_text() == before
    partial = read_results(out / "results.partial.json")
    assert [r["case"] for r in partial["records"]] == ["a", "b"]
    assert "after 2 records" in partial["targets"][0]["failed"]
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
