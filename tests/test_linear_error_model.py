"""The linear error model, calibrated from both sides with the one `TOLERANCE_UNITS`: correct implementations (logits
stored in the dtype, or kept in the accumulator) stay within `CALIBRATED_MAX_UNITS` on a fixed set and on searched
problems (the tolerance is twice that); the defects land at least four tolerances out (one, dL/dh summed in bfloat16 over V, with less margin: more
than twice the tolerance); and the units are the derivation's, so loosening them fails here."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from tests.linear_calibration import (CORRECT, DEFECTS, NARROW_DEFECTS, correct_max, defect_errors, errors_in_units,
                                      in_dtype)
from xentcompat.reference.dtypes import DTYPE_NAMES, float_type
from xentcompat.reference.errors import CALIBRATED_MAX_UNITS, TOLERANCE_MARGIN, TOLERANCE_UNITS, loss_unit
from xentcompat.reference.linear_errors import gamma, linear_units, logit_errors
from xentcompat.reference.linear_xent import make_linear_problem, solve_linear
from xentcompat.reference.options import Options
from xentcompat.run.verdict import judge_grad, judge_loss

DEFECT_MARGIN = 4


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_calibration_has_a_margin_on_both_sides(dtype):
    correct, where = correct_max(dtype)
    assert correct * TOLERANCE_MARGIN <= TOLERANCE_UNITS, f"correct implementation at {correct:.3g} units on {where}"
    found = defect_errors(dtype)
    assert found
    for name, error in found:
        assert error >= DEFECT_MARGIN * TOLERANCE_UNITS, f"{name}: {error:.3g} units in {dtype}"


def test_the_narrow_defect_is_flagged_with_twice_the_tolerance():
    [(name, error)] = defect_errors("bfloat16", NARROW_DEFECTS)
    assert error >= 2 * TOLERANCE_UNITS, f"{name}: {error:.3g} units"


def test_every_defect_runs_somewhere_and_every_dtype_has_one():
    """The margin test above judges each defect in every dtype it names; here: every defect names a dtype, and
    every dtype is judged against at least two defects."""
    assert all(set(defect.dtypes) and set(defect.dtypes) <= set(DTYPE_NAMES) for defect in DEFECTS)
    assert all(sum(dtype in defect.dtypes for defect in DEFECTS) >= 2 for dtype in DTYPE_NAMES)


@st.composite
def linear_problems(draw):
    """Small problems: N <= 4, D <= 24, V <= 12, logits of scale up to ~30, any reduction, smoothing or weights."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows, depth, classes = draw(st.integers(1, 4)), draw(st.integers(1, 24)), draw(st.integers(2, 12))
    sigma = draw(st.sampled_from([0.01, 0.3, 1.0, 4.0]))
    options = Options(reduction=draw(st.sampled_from(["none", "sum", "mean"])),
                      label_smoothing=draw(st.sampled_from([0.0, 0.0, 0.1])),
                      weight=draw(st.none() | st.just(tuple(rng.uniform(0.25, 4.0, classes)))))
    bias = rng.normal(0, 2, classes) if draw(st.booleans()) else None
    return make_linear_problem(rng.normal(0, 1, (rows, depth)), rng.normal(0, sigma, (classes, depth)),
                               rng.integers(0, classes, rows), bias, options)


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=linear_problems())
def test_correct_implementations_stay_within_calibration(dtype, problem):
    problem = in_dtype(problem, dtype)
    for model in CORRECT:
        errors = errors_in_units(problem, dtype, *model(problem, dtype))
        target(max(errors), label=f"{model.__name__} error in units")
        assert max(errors) <= CALIBRATED_MAX_UNITS, (model.__name__, errors)


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_an_error_of_a_few_tolerances_is_inaccurate_in_loss_and_both_gradients(dtype):
    problem = make_linear_problem(np.random.default_rng(3).normal(0, 1, (4, 8)),
                                  np.random.default_rng(4).normal(0, 0.5, (6, 8)), [0, 1, 2, 5])
    reference = solve_linear(problem)
    units = linear_units(problem, reference, dtype)
    largest = float_type(dtype).largest
    for off, outcome in ((0.5, "ok"), (1.5, "inaccurate")):
        shift = off * TOLERANCE_UNITS
        assert judge_loss(reference.loss + shift * units.loss, reference.loss, units.loss, largest).outcome == outcome
        for grad, unit in ((reference.grad_hidden, units.hidden), (reference.grad_weight, units.weight)):
            moved = grad.copy()
            moved[1, 2] += shift * unit[1, 0]
            assert judge_grad(moved, grad, unit, largest).outcome == outcome


def test_logit_errors_are_the_derivation_s():
    """E = gamma_D |h| @ |W|.T + u |z|, typed out for one element; bfloat16 accumulates in float32."""
    hidden, weight = np.array([[1.0, -2.0, 0.5]]), np.array([[3.0, 1.0, -4.0], [0.5, 0.5, 0.5]])
    problem = make_linear_problem(hidden, weight, [0])
    u, u_acc = 2.0**-8, 2.0**-24
    gamma_3 = 3 * u_acc / (1 - 3 * u_acc)
    assert gamma(3, "bfloat16") == pytest.approx(gamma_3, rel=1e-15)
    expected = gamma_3 * (3 + 2 + 2) + u * abs(3 - 2 - 2)
    assert logit_errors(problem, "bfloat16")[0, 0] == pytest.approx(expected, rel=1e-14)


def test_loss_unit_adds_the_matmul_term_to_the_logits_unit():
    """One-hot rows: sum_j (p_j + [j = y]) E_j on top of the softmax cross-entropy's own unit."""
    problem = make_linear_problem(np.random.default_rng(5).normal(0, 1, (3, 4)),
                                  np.random.default_rng(6).normal(0, 1, (5, 4)), [0, 1, 4],
                                  options=Options(reduction="sum"))
    reference = solve_linear(problem)
    errors = logit_errors(problem, "float32")
    p = reference.logits.softmax
    at = p.copy()
    at[np.arange(3), [0, 1, 4]] += 1.0
    expected = float(np.sum(at * errors)) + loss_unit(problem.logits_problem, reference.logits, "float32")
    assert linear_units(problem, reference, "float32").loss == pytest.approx(expected, rel=1e-12)
