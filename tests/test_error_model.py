"""The error model passes a correct fused implementation at every dtype with margin, and flags real defects."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fused_model import fused, log_of_softmax
from tests.strategies import problems
from xentcompat.reference.dtypes import DTYPE_NAMES, float_type, round_to
from xentcompat.reference.errors import CALIBRATED_MAX_UNITS, TOLERANCE_UNITS, grad_unit, loss_unit
from xentcompat.reference.mp_oracle import mp_softmax_cross_entropy, to_float
from xentcompat.reference.options import Problem, options_in_dtype
from xentcompat.reference.softmax_xent import make_problem, solve
from xentcompat.verdict import classify, judge_grad, judge_loss


def in_dtype(problem: Problem, dtype: str) -> Problem | None:
    logits = round_to(problem.logits, dtype)
    if not np.all(np.isfinite(logits)):
        return None
    probs = None if problem.probs is None else round_to(problem.probs, dtype)
    return make_problem(logits, problem.labels, probs, options_in_dtype(problem.options, dtype))


def errors_in_units(problem: Problem, dtype: str, loss, grad) -> tuple[float, float]:
    """Largest loss and gradient errors of (loss, grad) against mpmath, in units of the error model."""
    reference = solve(problem)
    mp_loss, mp_grad = mp_softmax_cross_entropy(problem)
    largest = float_type(dtype).largest
    loss_outcomes, loss_errors = classify(loss, to_float(mp_loss), loss_unit(problem, reference, dtype), largest)
    grad_outcomes, grad_errors = classify(grad, to_float(mp_grad), grad_unit(problem, reference, dtype), largest)
    assert set(loss_outcomes.ravel()) <= {"ok", "inaccurate"}, (loss, mp_loss)
    assert set(grad_outcomes.ravel()) <= {"ok", "inaccurate"}, (grad, mp_grad)
    return float(np.nanmax(loss_errors, initial=0.0)), float(np.nanmax(grad_errors, initial=0.0))


# Class weights are 0 or normal numbers in every dtype: a subnormal weight has lost its digits before any loss runs.
moderate_problems = problems(nonfinite=False, max_rows=4, max_classes=12, min_weight=1e-3)


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=moderate_problems, scale=st.sampled_from([1e-3, 1.0, 30.0, 1e3]))
def test_correct_fused_implementation_stays_within_calibration(dtype, problem, scale):
    problem = in_dtype(make_problem(np.clip(problem.logits, -1, 1) * scale, problem.labels, problem.probs,
                                    problem.options), dtype)
    loss, grad = fused(problem, dtype)
    loss_error, grad_error = errors_in_units(problem, dtype, loss, grad)
    assert loss_error <= CALIBRATED_MAX_UNITS
    assert grad_error <= CALIBRATED_MAX_UNITS


def test_tolerance_leaves_a_margin_over_calibration():
    assert TOLERANCE_UNITS >= 4 * CALIBRATED_MAX_UNITS


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_value_off_by_a_few_tolerances_is_inaccurate(dtype):
    problem = in_dtype(make_problem(np.random.default_rng(3).normal(0, 3, (4, 10)), labels=[0, 1, 2, 3]), dtype)
    reference = solve(problem)
    loss, grad = fused(problem, dtype)
    unit = loss_unit(problem, reference, dtype)
    off = judge_loss(loss + 3 * TOLERANCE_UNITS * unit, reference.loss, unit, float_type(dtype).largest)
    assert judge_loss(loss, reference.loss, unit, float_type(dtype).largest).outcome == "ok"
    assert off.outcome == "inaccurate" and off.error_units > TOLERANCE_UNITS
    bad_grad = grad.copy()
    bad_grad[0, 0] += 3 * TOLERANCE_UNITS * grad_unit(problem, reference, dtype)[0, 0]
    assert judge_grad(bad_grad, reference.grad, grad_unit(problem, reference, dtype), 1e300).outcome == "inaccurate"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_log_of_softmax_is_flagged_where_p_underflows(dtype):
    """A wrong class 1e4 above the target: p_y underflows, log(p_y) = -inf, and the verdict says so."""
    problem = in_dtype(make_problem([[0.0, 1e4, 0.0]], labels=[0]), dtype)
    reference = solve(problem)
    loss, grad = log_of_softmax(problem, dtype)
    largest = float_type(dtype).largest
    assert judge_loss(loss, reference.loss, loss_unit(problem, reference, dtype), largest).outcome == "inf"
    fused_loss, _ = fused(problem, dtype)
    assert judge_loss(fused_loss, reference.loss, loss_unit(problem, reference, dtype), largest).outcome == "ok"


def test_log_of_softmax_loses_accuracy_in_subnormals():
    """float32: p_y = e^-100 is subnormal, log of it keeps a few bits: inaccurate, not ok."""
    problem = make_problem([[0.0, 100.0, 0.0]], labels=[0])
    reference = solve(problem)
    loss, _ = log_of_softmax(problem, "float32")
    verdict = judge_loss(loss, reference.loss, loss_unit(problem, reference, "float32"), 3.4e38)
    assert verdict.outcome == "inaccurate"
