"""An API that offers no gradient (an inference runtime, a metric): its cells judge the loss alone, the gradient is
`absent` (never ok, never faked), and that is the good outcome for it; a gradient where none is offered, or none where
one is, is the adapter's bug."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xentcompat.adapters import base
from xentcompat.expectations import good
from xentcompat.reference.cases import by_id
from xentcompat.reference.judging import solve
from xentcompat.results.record import Record
from xentcompat.run.harness import Cell, check

WHY = "a runtime without autodiff"


# this module is the adapter of its APIs: what the harness asks an adapter module
def versions() -> dict[str, str]:
    return {"runtime": "1.0"}


def available_devices() -> dict[str, str]:
    return {"cpu": "cpu"}


def repro(api, call, logits_code) -> str:
    return f"runtime.loss(x, y)  # {call.dtype}"


def _api(run, no_gradient: str | None = WHY) -> base.LossApi:
    return base.LossApi("runtime.loss", "runtime", "labels", "runtime.loss(x, y)", run,
                        frozenset({"reduction", "weight", "ignore_index"}), no_gradient=no_gradient)


def _exact_loss(call):
    return solve(call.problem).loss, None


def _off_by_a_tenth(call):
    return solve(call.problem).loss * 1.1, None


def _refuses(call):
    return base.framework_call(math.sqrt, -1.0)


def _record(run, case: str, no_gradient: str | None = WHY) -> Record:
    checked = check(Cell(_api(run, no_gradient), by_id(case), "float32"), [])
    return Record.from_json(checked.record)


def test_the_good_outcome_of_an_api_without_gradient_is_ok_and_absent():
    assert good(False, gradient=False) == ("ok", "absent")
    assert good(True, gradient=False) == ("raised", "absent")
    assert good(False) == ("ok", "ok")


def test_an_exact_loss_is_ok_and_its_gradient_absent_with_no_finding():
    record = _record(_exact_loss, "random-moderate")
    assert record.observed == ("ok", "absent")
    assert record.finding is None and record.good and not record.has_gradient
    assert record.grad.max_error_units is None and record.grad.norm is None


def test_a_wrong_loss_deviates_though_no_gradient_is_judged():
    record = _record(_off_by_a_tenth, "random-moderate")
    assert record.observed == ("inaccurate", "absent")
    assert record.finding.startswith("XC-unexplained-") and not record.good
    assert record.loss.error_units > 1


def test_the_relations_break_on_the_loss_alone():
    record = _record(_exact_loss, "random-moderate")
    names = {relation.relation: relation for relation in record.relations}
    assert set(names) == {"shift", "permute", "split"}
    assert all(relation.holds for relation in names.values())


def test_invalid_input_raised_is_good_and_a_value_is_silent():
    raised = _record(_refuses, "label-minus-1")
    assert raised.observed == ("raised", "absent") and raised.finding is None
    silent = _record(lambda call: (np.float64(2.5), None), "label-minus-1")
    assert silent.observed == ("silent", "absent") and silent.finding is not None


def test_micro_batches_accumulate_the_loss_without_a_gradient():
    record = _record(_exact_loss, "accumulate-uneven-sizes-sum-over-count")
    assert record.observed == ("ok", "absent")


@pytest.mark.parametrize("gradient, no_gradient", [(None, None), (np.zeros((8, 10)), WHY)])
def test_a_gradient_the_declaration_does_not_promise_is_the_adapters_bug(gradient, no_gradient):
    api = _api(lambda call: (solve(call.problem).loss, gradient), no_gradient)
    captured = base.capture(api, Cell(api, by_id("random-moderate"), "float32").call())
    assert isinstance(captured, base.AdapterFailed) and captured.type == "TypeError"
