"""`xentcompat run --targets <this env's target> --cases FILE` end to end: every schema field on the user's own cases.

Runs in each framework env (`tox -e torch`, `tox -e keras-jax`, ...) for the target given with `--framework`.
"""

from __future__ import annotations

import json
import subprocess
import sys

from xentcompat.adapters import base
from xentcompat.results.documents import read_results
from xentcompat.results.record import RECORD_FIELDS

USER_CASES = {"cases": [
    {"id": "user-masked-batch", "logits": [[2.5, "-inf", 0.25, -1], [3, 3, 3, "nan"], [40, 0, 0, 0]],
     "labels": [0, 1, 3], "description": "a batch nobody wrote into the catalogue"},
    {"id": "user-<script>-id", "logits": [[1000, 0, -1000]], "labels": [2], "dtypes": ["float32"]},
]}


def xentcompat(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xentcompat.cli", *args], capture_output=True, text=True)


def test_run_with_user_cases_writes_complete_records_of_them_alone(tmp_path, target):
    """`--only-cases`: the user's cases, every API of the target, every schema field; no catalogue case (the
    matrix runs those)."""
    cases = tmp_path / "mine.json"
    cases.write_text(json.dumps(USER_CASES))
    done = xentcompat("run", "--targets", target, "--cases", str(cases), "--only-cases", "--dtypes", "float32",
                      "-n", "1", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    document = read_results(tmp_path / "out" / "results.json")
    assert {r["case"] for r in document["records"]} == {case["id"] for case in USER_CASES["cases"]}
    assert not any(entry.get("case") == "random-moderate" for entry in document["not_run"])
    user = document["records"]
    apis = [api for api in base.apis(target) if api.areas is None or "user" in api.areas]  # not the probes
    assert {(r["api"], r["case"]) for r in user} == {(api.id, case["id"]) for api in apis
                                                       for case in USER_CASES["cases"]}
    assert len(user) == 2 * len(apis)
    for rec in user:
        assert set(RECORD_FIELDS) <= set(rec)
        assert rec["dtype"] == "float32" and rec["device"] == "cpu" and rec["mode"] == "eager"
        assert rec["framework"] in document["environments"][0]["frameworks"]
        assert rec["loss"]["outcome"] in {"ok", "inaccurate", "nan", "inf", "finite", "raised"}
    masked = [r for r in user if r["case"] == "user-masked-batch"]
    assert all(r["loss"]["reference"] == "nan" for r in masked)  # the NaN row makes the mean NaN
    if any(r["finding"] for r in masked):  # a finding names its cells' case (every API right: nothing to name)
        assert "user-masked-batch" in (tmp_path / "out" / "report.md").read_text()


def test_malformed_case_file_exit_2(tmp_path, target):
    cases = tmp_path / "bad.json"
    cases.write_text(json.dumps({"cases": [{"id": "bad", "logits": [[1, 2]], "labels": ["x"]}]}))
    done = xentcompat("run", "--targets", target, "--cases", str(cases), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "field 'labels'" in done.stderr


def test_every_expectation_names_an_api_of_its_target(target):
    """The expectation files of this target's frameworks name only APIs its adapters register."""
    from xentcompat import expectations

    apis = base.apis(target)
    for framework in {api.framework for api in apis}:
        expectations.check_apis(expectations.load(framework), {api.id for api in apis}, framework)


def test_only_cases_without_cases_exits_2(tmp_path, target):
    done = xentcompat("run", "--targets", target, "--only-cases", "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "--only-cases needs --cases" in done.stderr
