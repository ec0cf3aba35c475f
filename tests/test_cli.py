"""The command line without a framework: input errors exit 2 in one line; missing frameworks are listed as skipped."""

from __future__ import annotations

import json

import pytest

from xentcompat.report import cli
from xentcompat.report.records import read_results, results_document, write_json_atomic
from tests.test_records import record


def test_malformed_case_file_exits_2_with_one_line(tmp_path, capsys):
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps({"cases": [{"id": "x", "logits": [[1, 2]], "labels": [5]}]}))
    status = cli.main(["run", "--targets", "torch", "--cases", str(cases), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip()
    assert status == 2
    assert error.count("\n") == 0 and "case 'x'" in error and "label 5" in error
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
