"""The stored GPU records (tests/data/h200-2026-12-04), re-judged in each framework's env with today's causes: every
measured cell is what a cause or the good outcome promises; the old harness's artefacts are set aside or not run."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

from xentcompat.results.documents import read_results
from xentcompat.results.record import Record
from xentcompat.run.rejudge import rejudge_target, target_of

STORED = Path(__file__).parents[1] / "data" / "h200-2026-12-04"
# The old harness's records, by target: invalid-label cells of a process that "died" after a device-side assert
# (set aside), and the APIs the release lacked (torch 2.11 has no linear_cross_entropy: 4 ids, 232 records).
SET_ASIDE = {"torch": 49, "huggingface": 54, "keras-torch": 36, "jax": 0, "keras-jax": 0}
LACKING = {"torch": 4}


pytestmark = pytest.mark.xdist_group("rejudge")  # one worker re-judges the records once for both tests


def _stored(target: str) -> tuple[list[dict], list[dict]]:
    documents = [read_results(path) for path in sorted(STORED.glob("*.json.gz"))]
    records = [r for d in documents for r in d["records"] if target_of(r) == target]
    return records, [e for d in documents for e in d.get("environments", [])]


@lru_cache(maxsize=None)
def _rejudged(target: str):
    records, environments = _stored(target)
    return records, rejudge_target(target, records, environments)


def test_every_stored_gpu_record_is_explained(target):
    records, found = _rejudged(target)
    if not records:
        pytest.skip(f"no stored GPU records of {target}")
    unexpected = [f"{r.api}|{r.case}|{r.dtype}|{r.mode}: {r.observed} for {r.promised}"
                  for r in map(Record.from_json, found.records) if not r.as_promised]
    assert unexpected == []
    assert found.kept_as_recorded == []
    assert len(found.set_aside) == SET_ASIDE[target]
    assert len({entry["api"] for entry in found.not_run}) == LACKING.get(target, 0)
    cuda = [r for r in found.records if r["device"] == "cuda"]
    assert len(cuda) == len(records) - len(found.set_aside) - (232 if target == "torch" else 0)


def test_a_device_side_assert_is_the_cause_not_an_adapter_error(target):
    if target not in ("torch", "huggingface", "keras-torch"):
        pytest.skip("the CUDA label assert is torch's")
    _, found = _rejudged(target)
    faults = [r for r in found.records if (r["error"] or {}).get("device_fault")]
    assert faults and all(r["finding"] == "XC-cuda-label-device-assert" for r in faults)
    assert all(r["loss"]["outcome"] == "crashed" for r in faults)
    measured = [r for r in faults if r["error"]["context_usable"] is not None]  # the new harness checks it
    assert all(r["error"]["context_usable"] is False for r in measured)
