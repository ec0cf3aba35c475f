"""An API too slow beyond some number of classes on the CPU (`LossApi.slow_above`): its cells there are left out of
the matrix and listed as not run, with the reason; elsewhere they run."""

from __future__ import annotations

import numpy as np

from xentcompat.adapters import base
from xentcompat.reference.cases import by_id
from xentcompat.run.harness import cells, too_slow_cells


def _run(call):
    return np.float64(0.0), np.zeros(call.problem.logits.shape)


def _api(limit: int) -> base.LossApi:
    return base.LossApi("slow.loss", "slow", "labels", "slow.loss(x, y)", _run,
                        slow_above=(limit, "1 x 65,536 logits: 7 s"))


def test_a_row_of_more_classes_than_the_limit_is_left_out_on_the_cpu_only():
    api, case = _api(8), by_id("random-moderate")  # 10 classes
    assert [cell.device for cell in cells([api], [case], ["float32"], ("cpu", "cuda"))] == ["cuda"]
    assert [cell.device for cell in too_slow_cells([api], [case], ["float32"], ("cpu", "cuda"))] == ["cpu"]
    assert len(cells([_api(10)], [case], ["float32"])) == 1 and not too_slow_cells([_api(10)], [case], ["float32"])


def test_the_reason_counts_the_cells_and_says_why():
    assert _api(8).too_slow_reason(3) == ("3 cells of slow.loss not run on the CPU: rows of more than 8 classes take "
                                          "it seconds each (1 x 65,536 logits: 7 s)")


def test_an_api_without_a_limit_always_runs():
    api = base.LossApi("fast.loss", "fast", "labels", "fast.loss(x, y)", _run)
    assert not api.too_slow(10**6, "cpu")
    assert len(cells([api], [by_id("random-moderate")], ["float32"])) == 1
