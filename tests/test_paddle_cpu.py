"""PaddlePaddle's CPU arithmetic in numpy (`expectations/paddle_cpu.py`), against values worked out by hand: the
softmax's clip at -64, the mean that counts ignored rows under a negative ignore_index, a zero denominator taken as
1, smoothed targets built in float32, and the soft-label gradient softmax - q; and the fact that selects the clip."""

from __future__ import annotations

import numpy as np
import pytest

from xentcompat.expectations.paddle_cpu import paddle_cpu
from xentcompat.reference.facts import input_facts
from xentcompat.reference.options import Options, Problem
from xentcompat.reference.softmax_xent import solve


def _problem(logits, labels=None, probs=None, **options) -> Problem:
    labels = None if labels is None else np.array(labels)
    probs = None if probs is None else np.array(probs, np.float64)
    return Problem(np.array(logits, np.float64), labels, probs, options=Options(**options))


@pytest.mark.parametrize("gap, loss", [(63.0, 63.0), (100.0, 64.0), (1e4, 64.0), (np.inf, 64.0)])
def test_a_target_far_below_the_largest_reads_at_most_64(gap, loss):
    """[0, -gap], label 1: the exact loss is gap + log(1 + e^-gap); clipped at -64 it stops at 64 + log(1 + e^-64)."""
    found, grad = paddle_cpu(_problem([[0.0, -gap]], [1]), "float64")
    assert found == pytest.approx(loss, rel=1e-15)
    np.testing.assert_allclose(grad, [[1.0, -1.0]], atol=1e-27)


def test_within_64_of_the_largest_it_is_the_exact_loss():
    problem = _problem(np.random.default_rng(0).normal(0, 3, (8, 10)), np.arange(8))
    loss, grad = paddle_cpu(problem, "float64")
    exact = solve(problem)
    assert loss == pytest.approx(exact.loss, rel=1e-14)
    np.testing.assert_allclose(grad, exact.grad, atol=1e-15)


def test_the_default_ignore_index_divides_by_every_row():
    """Rows [0, 0] (label 0, loss log 2) and an ignored row: -100 divides by 2 rows, 1 (>= 0) by the 1 counted."""
    logits = [[0.0, 0.0], [5.0, -5.0]]
    by_every_row, grad = paddle_cpu(_problem(logits, [0, -100], ignore_index=-100), "float64")
    by_counted, _ = paddle_cpu(_problem(logits, [0, 1], ignore_index=1), "float64")
    assert by_every_row == pytest.approx(np.log(2.0) / 2, rel=1e-15)
    assert by_counted == pytest.approx(np.log(2.0), rel=1e-15)
    np.testing.assert_allclose(grad, [[-0.25, 0.25], [0.0, 0.0]], rtol=1e-15)


@pytest.mark.parametrize("options, labels", [({"weight": (0.0, 1.0)}, [0, 0]), ({"ignore_index": 1}, [1, 1])])
def test_a_mean_over_nothing_is_zero(options, labels):
    loss, grad = paddle_cpu(_problem([[1.0, 2.0], [3.0, -1.0]], labels, **options), "float64")
    assert loss == 0.0
    assert np.all(grad == 0.0)


def test_an_empty_batch_mean_is_nan():
    loss, grad = paddle_cpu(_problem(np.zeros((0, 3)), np.zeros(0, np.int64)), "float64")
    assert np.isnan(loss) and grad.shape == (0, 3)


def test_smoothed_targets_carry_float32_rounding():
    """a = 0.1 over 4,096 classes: a / C in float32 is 0.1 rounded to float32 over 4,096, 1.5e-9 off in relative."""
    rng = np.random.default_rng(1)
    problem = _problem(rng.normal(0, 1, (4, 4096)), rng.integers(0, 4096, 4), label_smoothing=0.1)
    loss, _ = paddle_cpu(problem, "float64")
    exact = solve(problem).loss
    assert 1e-11 < abs(loss - exact) / exact < 1e-7


def test_soft_targets_get_softmax_minus_q_whatever_they_sum_to():
    q = np.array([[1.0, 1.0]])  # sums to 2: the exact gradient is 2 softmax - q
    _, grad = paddle_cpu(_problem([[0.0, 0.0]], probs=q), "float64")
    np.testing.assert_allclose(grad, [[-0.5, -0.5]], rtol=1e-15)


@pytest.mark.parametrize("logits, labels, options, holds", [
    ([[0.0, -64.5]], [1], {}, True),
    ([[0.0, -63.5]], [1], {}, False),
    ([[0.0, -100.0]], [0], {}, False),  # the far class is not the target
    ([[0.0, -100.0]], [0], {"label_smoothing": 0.1}, True),  # smoothing weighs every class
    ([[0.0, -np.inf]], [1], {}, True),
])
def test_far_below_max_is_a_fact_of_the_classes_the_targets_weigh(logits, labels, options, holds):
    problem = _problem(logits, labels, **options)
    facts = input_facts(problem.logits, problem.labels, None, problem.options)
    assert ("far-below-max" in facts) == holds


def test_far_below_max_of_probability_targets():
    logits = np.array([[0.0, -100.0]])
    assert "far-below-max" in input_facts(logits, None, np.array([[0.5, 0.5]]), Options())
    assert "far-below-max" not in input_facts(logits, None, np.array([[1.0, 0.0]]), Options())
