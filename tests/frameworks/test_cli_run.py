"""`xentcompat run --targets torch --cases FILE` end to end: every schema field on the user's own cases."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from xentcompat.report.records import RECORD_FIELDS, read_results

pytest.importorskip("torch", reason="the end-to-end run needs PyTorch (tox -e torch)")

USER_CASES = {"cases": [
    {"id": "user-masked-batch", "logits": [[2.5, "-inf", 0.25, -1], [3, 3, 3, "nan"], [40, 0, 0, 0]],
     "labels": [0, 1, 3], "description": "a batch nobody wrote into the catalogue"},
    {"id": "user-<script>-id", "logits": [[1000, 0, -1000]], "labels": [2], "dtypes": ["float32"]},
]}


def xentcompat(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xentcompat.report.cli", *args], capture_output=True, text=True)


def test_run_with_user_cases_writes_complete_records(tmp_path):
    cases = tmp_path / "mine.json"
    cases.write_text(json.dumps(USER_CASES))
    done = xentcompat("run", "--targets", "torch", "--cases", str(cases), "--dtypes", "float32", "-n", "1",
                      "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    document = read_results(tmp_path / "out" / "results.json")
    user = [r for r in document["records"] if r["case"].startswith("user-")]
    assert {r["case"] for r in user} == {"user-masked-batch", "user-<script>-id"}
    assert len(user) == 2 * 5 - 0  # both cases through all five APIs (the probs API takes one-hot targets)
    for rec in user:
        assert set(RECORD_FIELDS) <= set(rec)
        assert rec["framework"] == "torch" and rec["dtype"] == "float32" and rec["device"] == "cpu"
        assert rec["loss"]["outcome"] in {"ok", "inaccurate", "nan", "inf", "finite", "raised"}
    masked = next(r for r in user if r["api"] == "torch.nn.CrossEntropyLoss" and r["case"] == "user-masked-batch")
    assert masked["loss"]["reference"] == "nan"  # the NaN row makes the mean NaN
    assert document["environments"][0]["frameworks"]["torch"].startswith("2.")
    assert "user-masked-batch" in (tmp_path / "out" / "report.md").read_text()


def test_malformed_case_file_exit_2(tmp_path):
    cases = tmp_path / "bad.json"
    cases.write_text(json.dumps({"cases": [{"id": "bad", "logits": [[1, 2]], "labels": ["x"]}]}))
    done = xentcompat("run", "--targets", "torch", "--cases", str(cases), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "field 'labels'" in done.stderr
