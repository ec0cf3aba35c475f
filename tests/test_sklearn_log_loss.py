"""The mechanism `sklearn-log-loss`: what `log_loss(y, softmax(x), labels=range(C))` computes, against analytic values
(the clip at the eps of the dtype check_array keeps, bfloat16 kept as float64) and against scikit-learn itself where
it is installed."""

from __future__ import annotations

import numpy as np
import pytest

from xentcompat.expectations.sklearn_log_loss import sklearn_log_loss
from xentcompat.reference.options import Options, Problem


def _loss(logits, labels, dtype: str, weight=None) -> float:
    problem = Problem(np.asarray(logits, np.float64), np.asarray(labels), None, Options(weight=weight))
    return float(sklearn_log_loss(problem, dtype)[0])


def test_equal_logits_give_log_c():
    assert _loss([[0.0, 0.0, 0.0, 0.0]], [2], "float64") == pytest.approx(np.log(4), rel=1e-15)


@pytest.mark.parametrize("dtype, eps", [("float64", np.finfo(np.float64).eps), ("float32", np.finfo(np.float32).eps),
                                        ("float16", np.finfo(np.float16).eps),
                                        ("bfloat16", np.finfo(np.float64).eps)])
def test_a_confident_wrong_row_is_capped_at_minus_log_eps_of_the_validated_dtype(dtype, eps):
    assert _loss([[0.0, -100.0]], [1], dtype) == pytest.approx(-np.log(eps), rel=1e-3)


def test_float16_caps_a_uniform_row_over_more_classes_than_one_over_eps():
    assert _loss(np.zeros((1, 4096)), [0], "float16") == pytest.approx(-np.log(np.finfo(np.float16).eps), rel=1e-3)
    assert _loss(np.zeros((1, 4096)), [0], "float32") == pytest.approx(np.log(4096), rel=1e-6)


def test_class_weights_are_the_weighted_mean_over_the_targets():
    logits = [[0.0, 0.0], [0.0, np.log(3.0)]]
    expected = (1.0 * np.log(2) + 3.0 * np.log(4 / 3)) / 4.0
    assert _loss(logits, [0, 1], "float64", weight=(1.0, 3.0)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_it_is_what_scikit_learn_computes(dtype):
    sklearn = pytest.importorskip("sklearn.metrics")
    from sklearn.utils.extmath import softmax

    rng = np.random.default_rng(3)
    logits = rng.normal(0, 8, (16, 10))
    labels = rng.integers(0, 10, 16)
    expected = sklearn.log_loss(labels, softmax(logits.astype(dtype)), labels=np.arange(10))
    assert _loss(logits, labels, dtype) == pytest.approx(expected, rel=1e-12)
