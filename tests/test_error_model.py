"""The error model, calibrated from both sides: a correct implementation stays within `CALIBRATED_MAX_UNITS` in every
dtype (adversarial search with hypothesis' `target`, plus the counterexamples it found), the tolerance is
`TOLERANCE_MARGIN` (2) times that, and every constructed defect lands at least four tolerances out, so raising the
tolerance tenfold, or loosening the units, fails here."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings, target
from hypothesis import strategies as st

from tests.calibration import (COUNTEREXAMPLES, DEFECTS, correct_max, defect_errors, errors_in_units, in_dtype,
                               table)
from tests.fused_model import fused, log_of_softmax
from tests.strategies import problems
from xentcompat.reference.dtypes import DTYPE_NAMES, float_type, round_to
from xentcompat.reference.errors import (CALIBRATED_MAX_UNITS, TOLERANCE_MARGIN, TOLERANCE_UNITS, grad_unit, grad_units,
                                         loss_unit)
from xentcompat.reference.options import Options
from xentcompat.reference.softmax_xent import make_problem, solve
from xentcompat.run.verdict import judge_grad, judge_loss

DEFECT_MARGIN = 4  # every constructed defect is this far above the tolerance

# Class weights are 0 or normal numbers in every dtype: a subnormal weight has lost its digits before any loss runs.
moderate_problems = problems(nonfinite=False, max_rows=4, max_classes=12, min_weight=1e-3)
# the weighted mean of two rows whose weights nearly cancel: D = 0.01 against D(|w|) = 1.99 (bfloat16: 0.0117)
CANCELLING_WEIGHTS = make_problem([[0.3, 2.0, -1.0], [1.5, 0.2, 0.7]], [0, 1], options=Options(weight=(1.0, -0.99, 1.0)))
EXAMPLES = [make_problem(logits, labels, probs, options) for _, logits, labels, probs, options in COUNTEREXAMPLES]


@st.composite
def adversarial(draw, problems=moderate_problems):
    """A drawn problem scaled, offset (shift invariance) and possibly spiked (one logit far above the rest)."""
    problem = draw(problems)
    scale = draw(st.sampled_from([1e-3, 1.0, 30.0, 1e3]))
    offset = draw(st.sampled_from([0.0, 0.0, 5.0, -300.0, 1e4]))
    logits = np.clip(problem.logits, -1, 1) * scale + offset
    if draw(st.booleans()):
        row = draw(st.integers(0, logits.shape[0] - 1))
        column = draw(st.integers(0, logits.shape[1] - 1))
        logits[row, column] += draw(st.sampled_from([40.0, 200.0, 625.0, 3000.0]))
    return make_problem(logits, problem.labels, problem.probs, problem.options)


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=adversarial())
@example(problem=EXAMPLES[0])
@example(problem=EXAMPLES[1])
def test_correct_fused_implementation_stays_within_calibration(dtype, problem):
    problem = in_dtype(problem, dtype)
    if problem is None:
        return  # a logit beyond the dtype's range: an input-cast matter, not the loss's
    loss_error, grad_error = errors_in_units(problem, dtype, *fused(problem, dtype))
    target(loss_error, label="loss error in units")
    target(grad_error, label="gradient error in units")
    assert loss_error <= CALIBRATED_MAX_UNITS
    assert grad_error <= CALIBRATED_MAX_UNITS


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=adversarial(problems(nonfinite=False, max_rows=4, max_classes=12, min_weight=1e-3, signed=True)))
@example(problem=CANCELLING_WEIGHTS)
def test_negative_class_weights_stay_within_calibration(dtype, problem):
    """Signed class weights: the units bound the sums by their terms' sizes and the mean by the signed total."""
    weights = np.asarray(problem.options.weight or (), dtype=np.float64)
    if weights.size and problem.labels is not None and np.sum(round_to(weights, dtype)[problem.labels]) == 0:
        return  # the weights rounded to the dtype cancel: no weighted mean (the reference refuses it)
    problem = in_dtype(problem, dtype)
    if problem is None:
        return
    loss_error, grad_error = errors_in_units(problem, dtype, *fused(problem, dtype))
    target(loss_error, label="loss error in units")
    target(grad_error, label="gradient error in units")
    assert loss_error <= CALIBRATED_MAX_UNITS
    assert grad_error <= CALIBRATED_MAX_UNITS


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_calibration_has_a_margin_on_both_sides(dtype):
    """The tolerance is at least 2x the largest correct error, and every defect at least 4x the tolerance."""
    correct, where = correct_max(dtype)
    assert correct * TOLERANCE_MARGIN <= TOLERANCE_UNITS, f"correct implementation at {correct:.3g} units on {where}"
    for name, error in defect_errors(dtype):
        assert error >= DEFECT_MARGIN * TOLERANCE_UNITS, f"{name}: {error:.3g} units in {dtype}"


def test_calibrated_maximum_is_measured_not_padded():
    """The calibrated maximum is within 2x of the largest correct error measured: it was measured, not inflated."""
    largest = max(correct for _, correct, _, _, _ in table())
    assert largest <= CALIBRATED_MAX_UNITS <= 2 * largest
    assert TOLERANCE_UNITS == TOLERANCE_MARGIN * CALIBRATED_MAX_UNITS


def test_every_defect_runs_somewhere():
    ran = {name for dtype in DTYPE_NAMES for name, _ in defect_errors(dtype)}
    assert ran == {defect.name for defect in DEFECTS}


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_shift_invariance_offset_logits_with_a_rounded_lse_are_inaccurate(dtype):
    """Logits near 1e4: log p = x - lse with lse rounded at 1e4 gives loss 0 where the truth is ~2.3."""
    [(name, error)] = [(n, e) for n, e in defect_errors(dtype) if n.startswith("lse rounded")]
    assert error > TOLERANCE_UNITS
    problem = in_dtype(make_problem(DEFECTS[0].logits, DEFECTS[0].labels), dtype)
    loss, _ = fused(problem, dtype)
    reference = solve(problem)
    verdict = judge_loss(loss, reference.loss, loss_unit(problem, reference, dtype), float_type(dtype).largest)
    assert verdict.outcome == "ok"


def test_gradient_is_judged_per_row_not_per_element():
    """[[40, 0, 0, 0]], label 0, float32: zero for the 4e-18 non-target elements (as Keras' probability clip gives)
    is no error against the row; on [[1, 0, 0, 0]] the same zeros are wrong by 0.17."""
    for logits, outcome in (([[40.0, 0, 0, 0]], "ok"), ([[1.0, 0, 0, 0]], "inaccurate")):
        problem = make_problem(logits, [0])
        reference = solve(problem)
        clipped = reference.grad.copy()
        clipped[0, 1:] = 0.0
        verdict = judge_grad(clipped, reference.grad, grad_unit(problem, reference, "float32"), 3.4e38)
        assert verdict.outcome == outcome, verdict


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_value_off_by_a_few_tolerances_is_inaccurate(dtype):
    problem = in_dtype(make_problem(np.random.default_rng(3).normal(0, 3, (4, 10)), labels=[0, 1, 2, 3]), dtype)
    reference = solve(problem)
    loss, grad = fused(problem, dtype)
    unit = loss_unit(problem, reference, dtype)
    largest = float_type(dtype).largest
    assert judge_loss(loss, reference.loss, unit, largest).outcome == "ok"
    assert judge_loss(loss + 1.5 * TOLERANCE_UNITS * unit, reference.loss, unit, largest).outcome == "inaccurate"
    assert judge_loss(loss + 0.5 * TOLERANCE_UNITS * unit, reference.loss, unit, largest).outcome == "ok"
    row_unit = grad_unit(problem, reference, dtype)
    bad_grad = grad.copy()
    bad_grad[0, 0] += 1.5 * TOLERANCE_UNITS * row_unit[0, 0]
    assert judge_grad(bad_grad, reference.grad, row_unit, 1e300).outcome == "inaccurate"


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


def test_units_do_not_grow_with_a_constant_added_to_the_logits():
    base = np.random.default_rng(5).normal(0, 2, (3, 6))
    units = [loss_unit(p, solve(p), "float32") for p in
             (make_problem(base + shift, [0, 1, 2], options=Options(reduction="none")) for shift in (0.0, 1e4))]
    np.testing.assert_allclose(units[0], units[1], rtol=1e-6)


def _written_out_units(logits, label, u, r):
    """The module docstring's units for one one-hot row, typed out again: d, L, E_L, then the loss and gradient."""
    x = np.asarray(logits, float)
    d = x - x.max()
    s = np.exp(d).sum()
    big_l = np.log(s)
    p = np.exp(d) / s
    e_l = np.sum(p * (1 + np.abs(d))) + r * np.ceil(np.log2(len(x))) + big_l
    loss = 2 * abs(d[label]) + big_l + e_l
    g = p - np.eye(len(x))[label]
    element = p * (2 * np.abs(d) + big_l + e_l + 1) + np.abs(g)
    return u * loss, u * element, -np.log(p[label]), g


@pytest.mark.parametrize("dtype, r", [("float32", 1.0), ("bfloat16", 2.0**-16), ("float16", 2.0**-13)])
def test_units_equal_the_derivation_on_written_out_rows(dtype, r):
    """Pins every term of the derivation: per row (none), summed (sum: + ceil(log2 N) * r * sum |l| + |l_sum|) and
    averaged (mean: / N + |l_mean|, the gradient's |g| counted twice before the division)."""
    u = float_type(dtype).unit_roundoff
    rows = [([2.0, 0.0, -1.0], 0), ([0.5, 3.0, 0.0], 2)]
    written = [_written_out_units(x, y, u, r) for x, y in rows]
    logits, labels = [x for x, _ in rows], [y for _, y in rows]
    none = make_problem(logits, labels, options=Options(reduction="none"))
    np.testing.assert_allclose(loss_unit(none, solve(none), dtype), [w[0] for w in written], rtol=1e-12)
    units = grad_units(none, solve(none), dtype)
    np.testing.assert_allclose(units.element, [w[1] for w in written], rtol=1e-12)
    np.testing.assert_allclose(units.row[:, 0], [w[1].max() for w in written], rtol=1e-12)
    losses = [w[2] for w in written]
    summed = make_problem(logits, labels, options=Options(reduction="sum"))
    expected_sum = sum(w[0] for w in written) + u * (r * 1 * sum(losses) + sum(losses))
    np.testing.assert_allclose(loss_unit(summed, solve(summed), dtype), expected_sum, rtol=1e-12)
    mean = make_problem(logits, labels)
    expected_mean = (sum(w[0] for w in written) + u * r * sum(losses)) / 2 + u * sum(losses) / 2
    np.testing.assert_allclose(loss_unit(mean, solve(mean), dtype), expected_mean, rtol=1e-12)
    mean_element = [(w[1] + u * np.abs(w[3])) / 2 for w in written]
    np.testing.assert_allclose(grad_units(mean, solve(mean), dtype).element, mean_element, rtol=1e-12)


def test_smoothed_rows_add_the_rounding_of_their_sum():
    """K > 1 non-zero coefficients: the row adds (1 + r ceil(log2 K)) |l| for the sum over them."""
    problem = make_problem([[2.0, 0.0, -1.0]], [0], options=Options(reduction="none", label_smoothing=0.3))
    plain = make_problem([[2.0, 0.0, -1.0]], [0], options=Options(reduction="none"))
    u = float_type("float32").unit_roundoff
    reference = solve(problem)
    x = np.array([2.0, 0.0, -1.0])
    d = x - 2.0
    p = solve(plain).softmax[0]
    big_l = np.log(np.exp(d).sum())
    e_l = np.sum(p * (1 + np.abs(d))) + 2 + big_l
    c = np.array([0.7 + 0.1, 0.1, 0.1])
    expected = u * (np.sum(c * (2 * np.abs(d) + big_l + e_l)) + (1 + 2) * reference.row_losses[0])
    np.testing.assert_allclose(loss_unit(problem, reference, "float32"), [expected], rtol=1e-12)


def _halved_target_error(case_id: str, row: int) -> tuple[str, float]:
    """A planted bfloat16 kernel: the reference's gradient rounded to bfloat16, the target element of `row` halved;
    its verdict and error in units."""
    from xentcompat.reference.cases import by_id
    from xentcompat.reference.dtypes import round_to

    problem = by_id(case_id).problem("bfloat16", "labels")
    reference = solve(problem)
    planted = round_to(reference.grad, "bfloat16")
    planted[row, problem.labels[row]] *= 0.5
    verdict = judge_grad(planted, reference.grad, grad_unit(problem, reference, "bfloat16"),
                         float_type("bfloat16").largest)
    return verdict.outcome, verdict.max_error_units


@pytest.mark.parametrize("case_id, row", [
    ("neg-inf-nontarget", 1),  # p_y = 0.95 with -inf masks: its target gradient -0.0158 halved is 2.7 units off
    ("neg-inf-nontarget", 0), ("random-moderate", 3), ("uniform-zeros", 2), ("large-offset-1e4", 0),
    ("vocab-128k-uniform", 1),
])
def test_a_bfloat16_kernel_that_halves_a_target_gradient_is_caught(case_id, row):
    outcome, units = _halved_target_error(case_id, row)
    assert outcome == "inaccurate", f"{units:.3g} units"


def test_a_halved_target_gradient_that_a_correct_kernel_would_round_to_zero_passes():
    """A confident row's target gradient, p_y - 1 = -2e-13 on logits 30 apart, is 0 in a correct bfloat16 kernel
    (p_y rounds to 1): half of it is no error against the row."""
    outcome, units = _halved_target_error("confident-right-gap30", 0)
    assert outcome == "ok" and units < 1e-9
