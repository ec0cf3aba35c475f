"""An API too slow beyond some number of classes on the CPU (`LossApi.slow_above`): its cells there are not run, and
their records say so (`crashed` as promised, error `TimeBudget` with the reason); elsewhere they run."""

from __future__ import annotations

import numpy as np

from xentcompat.adapters import base
from xentcompat.reference.cases import by_id
from xentcompat.run.harness import Cell, check

CALLS = []


def versions() -> dict[str, str]:  # this module is the fake API's adapter
    return {"slow": "1.0"}


def repro(api, call, logits_code) -> str:
    return f"{api.expression}  # {call.problem.logits.shape}"


def _run(call):
    CALLS.append(call.problem.logits.shape)
    logits = call.problem.logits
    return np.zeros(logits.shape[0]).mean(), np.zeros(logits.shape)


def _api(limit: int) -> base.LossApi:
    return base.LossApi("slow.loss", "slow", "labels", "slow.loss(x, y)", _run,
                        slow_above=(limit, "1 x 65,536 logits: 7 s"))


def test_a_row_of_more_classes_than_the_limit_is_not_run_on_the_cpu():
    CALLS.clear()
    checked = check(Cell(_api(8), by_id("random-moderate"), "float32"), [])
    assert CALLS == []
    assert checked.observed == checked.expected == ("crashed", "crashed")
    assert checked.record["error"]["type"] == "TimeBudget"
    assert checked.record["error"]["message"] == ("not run: 10 classes, over the 8 that slow.loss takes on the CPU in "
                                                  "seconds (1 x 65,536 logits: 7 s)")
    assert checked.record["finding"] is None


def test_within_the_limit_or_on_another_device_it_runs():
    api = _api(10)
    assert api.too_slow(10, "cpu") is None
    assert api.too_slow(11, "cuda") is None
    assert api.too_slow(11, "cpu") is not None
    assert base.LossApi("fast.loss", "fast", "labels", "fast.loss(x, y)", _run).too_slow(10**6, "cpu") is None
