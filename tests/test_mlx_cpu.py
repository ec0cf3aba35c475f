"""MLX's CPU arithmetic in numpy (`expectations/mlx_cpu.py`), against values worked out by hand: float64 exp with
float32's accuracy and range, a float32 sum added in order, a half-precision softmax sum that stops growing, the
log-sum-exp rounded at the logits' magnitude, and probability targets taken as summing to 1."""

from __future__ import annotations

import numpy as np
import pytest

from xentcompat.expectations import mlx_cpu
from xentcompat.reference.options import Options, Problem
from xentcompat.reference.softmax_xent import solve


def _problem(logits, labels, probs=None, **options) -> Problem:
    labels = None if labels is None else np.array(labels)
    probs = None if probs is None else np.array(probs, np.float64)
    return Problem(np.array(logits, np.float64), labels, probs, options=Options(**options))


def test_float64_of_equal_logits_is_exact_because_exp_of_zero_is():
    problem = _problem(np.zeros((2, 7)), [1, 4])
    loss, grad = mlx_cpu.cross_entropy(problem, "float64")
    assert loss == np.log(7.0)
    np.testing.assert_allclose(grad, solve(problem).grad, rtol=1e-15)


def test_float64_exp_has_float32_accuracy():
    problem = _problem(np.random.default_rng(0).normal(0, 3, (8, 10)), np.arange(8))
    loss, grad = mlx_cpu.cross_entropy(problem, "float64")
    exact = solve(problem)
    assert 1e-10 < abs(loss - exact.loss) / exact.loss < 1e-6
    assert 1e-12 < np.max(np.abs(grad - exact.grad)) < 1e-6


@pytest.mark.parametrize("gap, finite", [(80.0, True), (100.0, False)])
def test_float64_exp_is_zero_where_float32_s_normal_numbers_end(gap, finite):
    """log(softmax) of [0, -gap], label 1: e^-80 is a float32 normal number, e^-100 is not (MLX's exp gives 0)."""
    loss, grad = mlx_cpu.log_of_softmax(_problem([[0.0, -gap]], [1]), "float64")
    assert np.isfinite(loss) == finite
    if finite:
        assert loss == pytest.approx(gap, rel=1e-6)
    else:
        assert np.isnan(grad).all()


@pytest.mark.parametrize("dtype, stuck", [("bfloat16", 256.0), ("float16", 2048.0)])
def test_a_half_precision_softmax_sum_stops_growing(dtype, stuck):
    """Equal logits over 8192 classes: the sum of ones added in the dtype stops at 256 (bfloat16) or 2048
    (float16), so every probability is 1/256 or 1/2048 and log(softmax) gives log 256 or log 2048 for log 8192."""
    loss, _ = mlx_cpu.log_of_softmax(_problem(np.zeros((1, 8192)), [3]), dtype)
    assert loss == pytest.approx(np.log(stuck), rel=1e-2)


def test_a_float32_sum_in_order_drops_the_small_terms_after_the_largest():
    """17 above 131071 zeros, its label: the loss is ln(1 + 131071 e^-17) = 0.0054, nothing but the small terms.
    Added in order after the 1 (the target first), each e^-17 = 4e-8 is below half an ulp of 1 and rounds away;
    added before it (the target last), they are all kept."""
    first, last = np.zeros((1, 131072)), np.zeros((1, 131072))
    first[0, 0] = last[0, -1] = 17.0
    exact = np.log1p(131071 * np.exp(-17.0))
    assert exact == pytest.approx(0.0054, abs=1e-4)
    assert mlx_cpu.cross_entropy(_problem(first, [0]), "float32")[0] == 0.0
    assert mlx_cpu.cross_entropy(_problem(last, [131071]), "float32")[0] == pytest.approx(exact, rel=1e-3)


def test_the_fast_loss_rounds_its_log_sum_exp_at_the_logits_magnitude():
    """Ten equal logits near 1e4 in bfloat16 (9984, an ulp of 64): logsumexp = 9984 + ln 10 rounds back to 9984, and
    logsumexp(x) - x[y] is 0 for ln 10; cross_entropy, which shifts by the max first, keeps ln 10."""
    problem = _problem(np.full((1, 10), 9984.0), [2])
    fast, _ = mlx_cpu.fast_cross_entropy(problem, "bfloat16")
    shifted, _ = mlx_cpu.cross_entropy(problem, "bfloat16")
    assert fast == 0.0
    assert shifted == pytest.approx(np.log(10.0), rel=1e-2)


def test_probability_targets_are_taken_as_summing_to_one():
    """q = one-hot / 2 at the largest logit: the cross-entropy is (lse - x_y) / 2; MLX's, logsumexp(s) - sum(q s) with
    s = x - max, is lse - max; its gradient softmax - q."""
    logits = np.array([[1.0, 2.0, 0.5]])
    q = np.array([[0.0, 0.5, 0.0]])
    loss, grad = mlx_cpu.cross_entropy(_problem(logits, None, q), "float64")
    lse = np.log(np.sum(np.exp(logits)))
    assert loss == pytest.approx(lse - 2.0, rel=1e-6)
    assert solve(_problem(logits, None, q)).loss == pytest.approx((lse - 2.0) / 2, rel=1e-12)
    p = np.exp(logits - lse)
    np.testing.assert_allclose(grad, p - q, rtol=1e-6)


def test_a_masked_class_with_target_zero_makes_the_probability_loss_nan():
    loss, _ = mlx_cpu.cross_entropy(_problem([[0.0, -np.inf, 1.0]], None, [[1.0, 0.0, 0.0]]), "float32")
    assert np.isnan(loss)



@pytest.mark.parametrize("gap, expected", [(15.0, 0.04486), (17.0, 0.0)])
def test_a_float16_log_sum_exp_takes_its_exps_in_float32_and_adds_them_in_order(gap, expected):
    """One float16 row of V = 128,256, the target `gap` above the rest: the kernel's float32 exps, added in order after
    the 1, round to 3 ulps of 1 each at e^-15 (the loss 0.0449 for 0.0385) and away at e^-17 (0 for 0.0053). Exps
    rounded to float16 first (2.98e-7 at e^-15, a tie that rounds to 2 ulps) would give 0.0301."""
    logits = np.full((1, 128256), -gap)
    logits[0, 0] = 0.0
    problem = _problem(logits, [0])
    for form in (mlx_cpu.cross_entropy, mlx_cpu.fast_cross_entropy, mlx_cpu.x_minus_logsumexp):
        loss, _ = form(problem, "float16")
        assert loss == pytest.approx(expected, abs=1e-5)
    assert solve(problem).loss == pytest.approx(np.log1p(128255 * np.exp(-gap)), rel=1e-12)
