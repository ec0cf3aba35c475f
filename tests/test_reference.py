"""The float64 reference: its defined behaviour on named edge cases, its options, invalid input, and properties."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.strategies import problems
from tests.test_reference_mpmath import assert_close, assert_matches_mpmath, condition, reduced
from xentcompat.reference.options import Options, terms
from xentcompat.reference.softmax_xent import make_problem, softmax_cross_entropy, solve

INF, NAN = math.inf, math.nan
NONE = Options(reduction="none")


def textbook(row, label) -> float:
    row = np.asarray(row, dtype=float)
    return float(np.log(np.sum(np.exp(row - row.max()))) + row.max() - row[label])


def test_plain_loss_and_gradient():
    result = softmax_cross_entropy([[1.0, 2.0, 3.0]], labels=[0])
    p = np.exp([1.0, 2.0, 3.0]) / np.sum(np.exp([1.0, 2.0, 3.0]))
    assert result.loss == pytest.approx(textbook([1, 2, 3], 0), rel=1e-15)
    np.testing.assert_allclose(result.grad[0], p - [1, 0, 0], rtol=1e-15)


@pytest.mark.parametrize(
    "row, label, loss, grad",
    [
        pytest.param([2.0, -INF, 0.0], 0, textbook([2, 0], 0), [-1 / (1 + math.e**2), 0.0, 1 / (1 + math.e**2)],
                     id="neg-inf-nontarget-drops-out"),
        pytest.param([-INF, 1.0, 1.0], 0, INF, [-1.0, 0.5, 0.5], id="neg-inf-target-inf-loss-finite-grad"),
        pytest.param([-INF, -INF], 0, NAN, [NAN, NAN], id="neg-inf-row-nan"),
        pytest.param([0.0, INF], 0, NAN, [NAN, NAN], id="pos-inf-nontarget-nan"),
        pytest.param([INF, 0.0], 0, NAN, [NAN, NAN], id="pos-inf-target-nan"),
        pytest.param([NAN, 0.0], 1, NAN, [NAN, NAN], id="nan-logit-nan"),
        pytest.param([5.0], 0, 0.0, [0.0], id="one-class-zero-loss"),
        pytest.param([1e308, -1e308], 1, INF, [1.0, -1.0], id="loss-beyond-float64-max-is-inf"),
    ],
)
def test_defined_behaviour(row, label, loss, grad):
    result = softmax_cross_entropy([row], labels=[label], options=NONE)
    np.testing.assert_allclose(result.loss[0], loss, rtol=4e-16 * 8)
    np.testing.assert_allclose(result.grad[0], grad, rtol=1e-15, atol=0)


def test_undefined_row_leaves_other_rows_alone():
    result = softmax_cross_entropy([[NAN, 0.0], [0.0, 0.0]], labels=[0, 1])
    assert math.isnan(result.loss)
    assert np.all(np.isnan(result.grad[0]))
    np.testing.assert_allclose(result.grad[1], [0.25, -0.25])


def test_probability_targets_zero_times_log_zero_is_zero():
    result = softmax_cross_entropy([[0.0, -INF, 0.0]], probs=[[0.5, 0.0, 0.5]])
    assert result.loss == pytest.approx(math.log(2), rel=1e-15)
    np.testing.assert_allclose(result.grad[0], [0.0, 0.0, 0.0], atol=1e-16)


def test_probability_target_on_masked_class_is_inf():
    assert softmax_cross_entropy([[0.0, -INF]], probs=[[0.5, 0.5]]).loss == INF


def test_probability_targets_not_summing_to_one():
    result = softmax_cross_entropy([[0.0, 0.0]], probs=[[1.0, 1.0]])
    assert result.loss == pytest.approx(2 * math.log(2))
    np.testing.assert_allclose(result.grad[0], [0.0, 0.0], atol=1e-16)


def test_reductions():
    logits, labels = [[1.0, 2.0], [3.0, 0.0], [0.0, 0.0]], [0, 0, 1]
    rows = softmax_cross_entropy(logits, labels, options=NONE).loss
    ulps = 4 * np.spacing(rows.sum())
    assert abs(softmax_cross_entropy(logits, labels, options=Options(reduction="sum")).loss - rows.sum()) <= ulps
    assert abs(softmax_cross_entropy(logits, labels).loss - rows.mean()) <= ulps
    sum_grad = softmax_cross_entropy(logits, labels, options=Options(reduction="sum")).grad
    np.testing.assert_allclose(softmax_cross_entropy(logits, labels).grad, sum_grad / 3, rtol=4e-16, atol=0)


def test_weighted_mean_divides_by_sum_of_weights_or_by_rows():
    logits, labels, weight = [[1.0, 2.0], [3.0, 0.0]], [0, 1], (2.0, 0.5)
    rows = softmax_cross_entropy(logits, labels, options=NONE).loss
    weighted = np.array([2.0, 0.5]) * rows
    by_weight = softmax_cross_entropy(logits, labels, options=Options(weight=weight)).loss
    by_rows = softmax_cross_entropy(logits, labels, options=Options(weight=weight, mean_over="rows")).loss
    assert by_weight == pytest.approx(weighted.sum() / 2.5)
    assert by_rows == pytest.approx(weighted.sum() / 2)


def test_ignore_index_excludes_rows_even_with_nan():
    options = Options(ignore_index=7)
    result = softmax_cross_entropy([[NAN, 1.0], [0.0, 1.0]], [7, 1], options=options)
    assert result.loss == pytest.approx(textbook([0, 1], 1))
    np.testing.assert_array_equal(result.grad[0], [0.0, 0.0])


def test_every_row_ignored_is_nan_mean_with_zero_gradient():
    result = softmax_cross_entropy([[0.0, 1.0]], [3], options=Options(ignore_index=3))
    assert math.isnan(result.loss)
    np.testing.assert_array_equal(result.grad, [[0.0, 0.0]])


def test_label_smoothing_mixes_uniform_target():
    eps = 0.1
    result = softmax_cross_entropy([[1.0, 2.0, 3.0]], [0], options=Options(label_smoothing=eps))
    q = np.full(3, eps / 3)
    q[0] += 1 - eps
    assert result.loss == pytest.approx(softmax_cross_entropy([[1.0, 2.0, 3.0]], probs=[q]).loss, rel=1e-14)


def test_label_smoothing_with_masked_logit_is_inf():
    assert softmax_cross_entropy([[0.0, -INF]], [0], options=Options(label_smoothing=0.1)).loss == INF


@pytest.mark.parametrize(
    "kwargs, message",
    [
        pytest.param(dict(logits=[[0.0, 1.0]], labels=[2]), "label 2 outside [0, 2)", id="label-equals-C"),
        pytest.param(dict(logits=[[0.0, 1.0]], labels=[-1]), "label -1 outside", id="label-negative"),
        pytest.param(dict(logits=[[0.0, 1.0]], labels=[0, 1]), "labels shape", id="shape-mismatch"),
        pytest.param(dict(logits=[[0.0, 1.0]], labels=[0.5]), "labels must be integers", id="float-labels"),
        pytest.param(dict(logits=[[0.0, 1.0]], probs=[[-0.1, 1.1]]), "non-negative", id="negative-probs"),
        pytest.param(dict(logits=[[0.0, 1.0]], probs=[[NAN, 1.0]]), "finite", id="nan-probs"),
        pytest.param(dict(logits=[0.0, 1.0], labels=[0]), "2-D", id="1d-logits"),
        pytest.param(dict(logits=[[0.0, 1.0]]), "exactly one", id="no-targets"),
        pytest.param(dict(logits=[[0.0]], labels=[0], options=Options(reduction="avg")), "reduction", id="reduction"),
        pytest.param(dict(logits=[[0.0]], labels=[0], options=Options(weight=(1.0, 2.0))), "weight", id="weight"),
        pytest.param(dict(logits=[[0.0]], labels=[0], options=Options(label_smoothing=2.0)), "smoothing",
                     id="smoothing"),
    ],
)
def test_invalid_input_raises_naming_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        softmax_cross_entropy(**kwargs)


finite_problems = problems(nonfinite=False, reductions=("none", "sum", "mean"))


@settings(max_examples=200, deadline=None)
@given(finite_problems, st.integers(-100, 100))
def test_shift_invariance(problem, shift):
    """Adding a constant to every logit changes neither loss nor gradient beyond a few ulps of the problem's own
    scale. Logits on a 2^-20 grid and an integer shift make x + shift exact, so no input rounding hides in it."""
    moderate = np.round(np.clip(problem.logits, -50, 50) * 2.0**20) / 2.0**20
    base_problem = make_problem(moderate, problem.labels, problem.probs, problem.options)
    base = solve(base_problem)
    shifted = solve(make_problem(moderate + shift, problem.labels, problem.probs, problem.options))
    loss_scale, grad_scale = reduced(base_problem, base, *condition(base_problem, base))
    assert_close(shifted.loss, base.loss, loss_scale, 0.0)
    assert_close(shifted.grad, base.grad, grad_scale, 0.0)


@settings(max_examples=200, deadline=None)
@given(finite_problems)
def test_gradient_rows_sum_to_zero(problem):
    """sum_j (sum_c * p_j - c_j) = 0 for every row, up to rounding of terms as large as sum_c * p_j and c_j.

    Not for a gradient beyond float64's range (a mean over a subnormal total weight): its terms are rightly ±inf."""
    result = solve(problem)
    assume(np.all(np.isfinite(result.grad)))
    scale = _gradient_term_scale(problem) + 1e-300
    assert np.all(np.abs(np.sum(result.grad, axis=1)) <= 1e-12 * scale + 1e-300)


def _gradient_term_scale(problem) -> np.ndarray:
    """Per row, sum_j |sum_c * p_j| + |c_j| = 2 sum_c (divided by D for a mean): the size of what cancels."""
    parts = terms(problem)
    rows = 2 * np.sum(np.abs(parts.coefficients), axis=1)
    if problem.options.reduction == "mean" and parts.denominator > 0:
        rows = rows / parts.denominator
    return rows


@settings(max_examples=60, deadline=None)
@given(problems(nonfinite=False, max_rows=3, max_classes=5))
def test_gradient_matches_finite_differences(problem):
    logits = np.clip(problem.logits, -20, 20)
    options = Options(**{**problem.options.__dict__, "reduction": "sum"})
    base = make_problem(logits, problem.labels, problem.probs, options)
    grad, h = solve(base).grad, 1e-6
    for index in np.ndindex(logits.shape):
        step = np.zeros_like(logits)
        step[index] = h
        up = solve(make_problem(logits + step, problem.labels, problem.probs, options)).loss
        down = solve(make_problem(logits - step, problem.labels, problem.probs, options)).loss
        assert (up - down) / (2 * h) == pytest.approx(grad[index], abs=1e-6 * (1 + abs(up)))


@pytest.mark.parametrize("options, message", [
    (Options(weight=(1.0, -1.0, 1.0)), None),
    (Options(weight=(1.0, -4.0, 2.0)), "sum to 0 \\(negative weights cancel the positive ones\\)"),
    (Options(weight=(1.0, -4.0, 2.0), reduction="sum"), None),
    (Options(weight=(1.0, -4.0, 2.0), mean_over="rows"), None),
    (Options(weight=(1.0, float("nan"), 1.0)), "finite \\(found NaN or inf\\)"),
    (Options(weight=(1.0, 1.0)), "weight has 2 entries, expected one per class \\(3\\)"),
    (Options(extra_dims=(0,)), "do not divide"),
    (Options(extra_dims=(3,)), "do not divide the 4 rows"),
    (Options(extra_dims=(2,)), None),
    (Options(extra_dims=(1,)), None),
    (Options(label_smoothing=1.5), "outside \\[0, 1\\]"),
    (Options(reduction="avg"), "reduction 'avg'"),
])
def test_the_reference_refuses_malformed_options_by_name(options, message):
    logits, labels = np.zeros((4, 3)), [0, 1, 2, 0]
    if message is None:
        make_problem(logits, labels, options=options)
        return
    with pytest.raises(ValueError, match=message):
        make_problem(logits, labels, options=options)


def test_two_nonzero_coefficients_add_the_rounding_of_their_sum():
    """Probability targets with exactly two non-zero entries: the row's unit counts the sum over K = 2 terms."""
    from xentcompat.reference.errors import loss_unit

    two = make_problem([[1.0, 0.0, 0.0]], probs=[[0.5, 0.5, 0.0]], options=Options(reduction="none"))
    reference = solve(two)
    u = 2.0**-24
    # the sum over K = 2 adds (1 + r ceil(log2 2)) |l| = 2 |l| in float32 (r = 1)
    c = np.array([0.5, 0.5, 0.0])
    x = np.array([1.0, 0.0, 0.0])
    d = x - 1.0
    p = reference.softmax[0]
    big_l = np.log(np.exp(d).sum())
    e_l = np.sum(p * (1 + np.abs(d))) + 2 + big_l
    expected = u * (np.sum(c * (2 * np.abs(d) + big_l + e_l)) + 2 * reference.row_losses[0])
    np.testing.assert_allclose(loss_unit(two, reference, "float32"), [expected], rtol=1e-12)


def test_a_mean_over_a_subnormal_total_weight_overflows_to_inf_not_nan():
    """Total weight 2.2e-311 beside a smoothed weight of 1: c / D overflows, and so do the loss and gradient (+inf,
    and ±inf per element, as mpmath says), where dividing the coefficients first would give inf * 0 = NaN."""
    problem = make_problem([[0.0, 0.0, 0.0, 0.0]], [0],
                           options=Options(weight=(2.225073858507e-311, 0.0, 0.0, 1.0), label_smoothing=0.1))
    result = solve(problem)
    assert result.loss == INF
    np.testing.assert_array_equal(result.grad, [[INF, INF, INF, -INF]])
    assert_matches_mpmath(problem)


def test_the_confident_vocabulary_case_has_its_closed_form_loss():
    """vocab-128k-confident-17: every row's loss is ln(1 + 128255 e^-17), carried by the 128,255 small terms alone,
    and the gradient at the target is -(1 - p_y) / N with p_y = 1 / (1 + 128255 e^-17)."""
    from xentcompat.reference.cases import by_id

    case = by_id("vocab-128k-confident-17")
    result = softmax_cross_entropy(case.logits.astype(np.float32), case.labels)
    small = 128255 * np.exp(-17.0)
    assert result.loss == pytest.approx(np.log1p(small), rel=4e-16)
    at_target = result.grad[np.arange(4), case.labels]
    np.testing.assert_allclose(at_target, -(small / (1 + small)) / 4, rtol=4e-15)
