"""The float64 reference against the mpmath oracle (60 digits) on hypothesis-drawn problems, extreme ones included.

The bound is in float64 units u = 2**-53 of the problem's own first-order condition. Rounding x_j - m once
perturbs p_j by the relative amount u * |x_j - m|, so with d_j = |x_j - m| (finite x_j) and c the coefficients:
* row loss: |ref - mp| <= ULPS * u * (|l| + sum_c * sum_j p_j * d_j)  (the loss's terms are all >= 0);
* gradient: |ref - mp| <= ULPS * u * (sum_c * p_k * (1 + d_k) + c_k * (p_k + sum_j p_j * (1 + d_j))),
  divided by D for a mean; sums add N * sum |l_i|; and the smallest subnormals where a p_j is subnormal.
For a moderate row this is a plain relative bound of ULPS ulps.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.strategies import problems
from xentcompat.reference.mp_oracle import mp_softmax_cross_entropy, to_float
from xentcompat.reference.options import Options, Problem, terms
from xentcompat.reference.softmax_xent import solve

ULPS = 16
U = 2.0**-53
SUBNORMAL_SLACK = 8 * 2.0**-1074
MP_RELATIVE = 1e-50  # the oracle's own error at 60 digits, relative to the logits' magnitude


def mp_slack(problem) -> float:
    """The oracle's absolute error: exact zeros come out of mpmath as ~1e-60 times the logits' scale."""
    finite = problem.logits[np.isfinite(problem.logits)]
    magnitude = 1.0 + (np.max(np.abs(finite)) if finite.size else 0.0)
    return MP_RELATIVE * magnitude * (1.0 + float(np.sum(terms(problem).coefficients)))


def _same_nonfinite(value: float, truth: float) -> bool:
    return (math.isnan(value) and math.isnan(truth)) or value == truth


def condition(problem, reference) -> tuple[np.ndarray, np.ndarray]:
    """(loss scale per row, gradient scale per element) of the module docstring, before the reduction."""
    c = np.abs(terms(problem).coefficients)  # signed class weights: the sizes of the terms
    x = problem.logits
    m = np.max(np.where(np.isfinite(x), x, -np.inf), axis=1, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.nan_to_num(np.where(np.isfinite(x), np.abs(x - m), 0.0), nan=0.0, posinf=0.0)
    p = np.nan_to_num(reference.softmax, nan=0.0)
    c_sum = np.sum(c, axis=1, keepdims=True)
    rows = np.nan_to_num(np.abs(reference.row_losses), nan=0.0, posinf=0.0)
    with np.errstate(invalid="ignore", over="ignore"):  # signed weights: the terms' sizes, not their sum
        sizes = np.where(c != 0, c * np.abs(reference.lse[:, None] - x), 0.0)
    rows = np.maximum(rows, np.sum(np.nan_to_num(sizes, nan=0.0, posinf=0.0), axis=1))
    loss_scale = rows + c_sum[:, 0] * np.sum(p * d, axis=1)
    grad_scale = c_sum * p * (1 + d) + c * (p + np.sum(p * (1 + d), axis=1, keepdims=True))
    return loss_scale, grad_scale


def reduced(problem, reference, loss_scale: np.ndarray, grad_scale: np.ndarray):
    reduction, parts = problem.options.reduction, terms(problem)
    if reduction == "none":
        return loss_scale, grad_scale
    rows = np.nan_to_num(np.abs(reference.row_losses), nan=0.0, posinf=0.0)
    total = np.sum(loss_scale) + len(rows) * np.sum(rows)
    if reduction == "mean" and parts.denominator != 0:
        return total / abs(parts.denominator), grad_scale / abs(parts.denominator)
    return total, grad_scale


def assert_close(value, truth, scale, slack: float) -> None:
    value, truth, scale = np.broadcast_arrays(np.asarray(value, float), np.asarray(truth, float), scale)
    assert np.array_equal(np.isnan(value), np.isnan(truth)), (value, truth)
    infinite = np.isinf(value) | np.isinf(truth)
    assert np.array_equal(value[infinite], truth[infinite]), (value, truth)
    finite = np.isfinite(value) & np.isfinite(truth)
    error = np.abs(value[finite] - truth[finite])
    allowed = (ULPS * U * scale + SUBNORMAL_SLACK + slack)[finite]
    assert np.all(error <= allowed), (value, truth, np.max(error / allowed))


def assert_matches_mpmath(problem) -> None:
    reference = solve(problem)
    mp_loss, mp_grad = mp_softmax_cross_entropy(problem)
    loss_scale, grad_scale = reduced(problem, reference, *condition(problem, reference))
    assert_close(reference.loss, to_float(mp_loss), loss_scale, mp_slack(problem))
    assert_close(reference.grad, to_float(mp_grad), grad_scale, mp_slack(problem))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_reference_matches_mpmath(problem):
    assert_matches_mpmath(problem)


def test_tiny_class_weight_keeps_the_gradient_digits():
    """w_y = 3.3e-301: w·p passes through subnormals unless the weights are divided by their sum first."""
    problem = Problem(np.array([[0.0, 23.0, 0.0]]), np.array([0]), None,
                      Options(weight=(3.2966476378358563e-301, 0.0, 0.0)))
    assert_matches_mpmath(problem)


@settings(max_examples=200, deadline=None)
@given(problems(nonfinite=False, reductions=("none",)))
def test_finite_logits_match_mpmath_row_by_row(problem):
    assert_matches_mpmath(problem)


def test_confident_row_keeps_relative_accuracy():
    """Gap 30: loss 9 * e^-30 and gradient -(1 - p_y) come out to a few ulps, not rounded to 0 by 1 - p."""
    from xentcompat.reference.softmax_xent import make_problem

    problem = make_problem([[30.0] + [0.0] * 9], labels=[0])
    reference = solve(problem)
    mp_loss, mp_grad = mp_softmax_cross_entropy(problem)
    assert reference.loss > 0
    assert abs(reference.loss - float(mp_loss)) <= 2 * np.spacing(float(mp_loss))
    assert abs(reference.grad[0, 0] - float(mp_grad[0, 0])) <= 2 * np.spacing(abs(float(mp_grad[0, 0])))


@settings(max_examples=150, deadline=None)
@given(gap=st.floats(20, 700), classes=st.integers(2, 8), others=st.floats(-3, 3))
def test_confident_rows_keep_relative_accuracy_in_every_gradient_element(gap, classes, others):
    """Target logit `gap` above the rest: 1 - p_y ~ e^-gap is never formed by subtraction, so every gradient element,
    the target's -(1 - p_y) included, is right to a few ulps of itself (times 1 + the row's largest distance to the
    max: rounding gap - x_j perturbs e^-(gap - x_j), which is all of 1 - p_y)."""
    from xentcompat.reference.softmax_xent import make_problem

    problem = make_problem([[gap] + [others] * (classes - 1)], labels=[0], options=Options(reduction="none"))
    reference = solve(problem)
    _, mp_grad = mp_softmax_cross_entropy(problem, digits=40 + int(gap / math.log(10)))  # resolves 1 - e^-gap
    truth = to_float(mp_grad)
    d = np.max(np.abs(problem.logits - gap))
    assert np.all(np.abs(reference.grad - truth) <= ULPS * U * np.abs(truth) * (1 + d) + SUBNORMAL_SLACK)
