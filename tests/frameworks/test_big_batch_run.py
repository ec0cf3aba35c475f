"""`xentcompat run --cases batch.npz` down the big-batch path (a 64 × 4096 batch, the threshold lowered to 1 MiB):
every API has its float32 and bfloat16 records; the cells that run give the verdicts the whole-array path gives (the
relations listed as skipped, with the reason); the cells over the memory budget say so, and are no finding."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from xentcompat.adapters import base
from xentcompat.reference.case_file import load_cases
from xentcompat.results.documents import read_results
from xentcompat.run.cell_memory import cell_need

BIG = {"XENTCOMPAT_BIG_BATCH_BYTES": str(2**20)}
DTYPES = ("float32", "bfloat16")  # a 32-bit and a 16-bit cell per API; the chunked path per dtype: tests/test_big_batch.py


def _batch(path) -> None:
    rng = np.random.default_rng(1)
    logits = (3 * rng.standard_normal((64, 4096))).astype(np.float32)
    labels = rng.integers(0, 4096, 64)
    logits[:4, :] -= 30.0
    logits[np.arange(4), labels[:4]] += 30.0  # confident rows
    logits[5, (labels[5] + 1) % 4096] = -np.inf
    np.savez(path, logits=logits, labels=labels)


def _run(target: str, cases, out, environment: dict) -> dict:
    done = subprocess.run([sys.executable, "-m", "xentcompat.cli", "run", "--targets", target, "--cases",
                           str(cases), "--only-cases", "--dtypes", *DTYPES, "-n", "1", "--out", str(out)],
                          capture_output=True, text=True, env={**os.environ, **environment})
    assert done.returncode == 0, done.stderr[-3000:]
    return {(r["api"], r["dtype"]): r for r in read_results(out / "results.json")["records"]}


def test_a_big_npz_batch_runs_within_the_budget_and_says_what_did_not_fit(tmp_path, monkeypatch, target):
    cases = tmp_path / "batch.npz"
    _batch(cases)
    apis = [api for api in base.apis(target) if api.areas is None or "user" in api.areas]
    [case] = load_cases(cases)
    with monkeypatch.context() as patch:
        patch.setenv("XENTCOMPAT_BIG_BATCH_BYTES", BIG["XENTCOMPAT_BIG_BATCH_BYTES"])
        needs = {(api.id, dtype): cell_need(api, case, dtype)[0] for api in apis for dtype in DTYPES
                 if case.runs_in(dtype) and case.has_targets(api.targets) and api.applies_to(case.options)}
    distinct = sorted(set(needs.values()))
    budget = distinct[(len(distinct) - 1) // 2]  # about half the cells fit, at least one does not
    big = _run(target, cases, tmp_path / "big", {**BIG, "XENTCOMPAT_MEMORY_BUDGET": str(budget)})
    whole = _run(target, cases, tmp_path / "whole", {})
    assert set(big) == set(whole) == set(needs)
    refused = {key for key, record in big.items() if (record["error"] or {}).get("type") == "MemoryBudget"}
    assert refused == {key for key, need in needs.items() if need > budget} and 0 < len(refused) < len(big)
    for key in refused:
        record = big[key]
        assert (record["loss"]["outcome"], record["grad"]["outcome"]) == ("crashed", "crashed")
        assert record["finding"] is None and record["expected"]["loss"] == "crashed"
        assert "over the memory budget" in record["error"]["message"]
    for key in set(big) - refused:
        mine, theirs = big[key], whole[key]
        assert "rows" not in mine["loss"]  # a big batch is not called again for its rows
        theirs_loss = {name: value for name, value in theirs["loss"].items() if name != "rows"}
        assert (mine["loss"], mine["finding"], mine["scale"]) == (theirs_loss, theirs["finding"], theirs["scale"])
        assert {name: mine["grad"][name] for name in ("outcome", "max_error_units", "nan_count", "inf_count")} == \
            {name: theirs["grad"][name] for name in ("outcome", "max_error_units", "nan_count", "inf_count")}
        if mine["relations"] is not None:
            assert {r["relation"] for r in mine["relations"]} == {"shift", "permute", "split"}
            assert all(r["holds"] is None and "not checked on a batch this big" in r["skipped"]
                       for r in mine["relations"])
