"""The compiled row pass (`xentcompat/reference/_rows.c`) against the numpy pass it stands in for.

* built on x86_64 Linux (under CI=true its absence fails: the reference CI checks would not be checking it);
* per row: the max, its first index on ties, t with the max's own term held out, NaN and +inf marked;
* on hypothesis-drawn problems (every option, non-finite logits) in float32 and float64: the loss, the gradient, the
  row losses and the lse within 8 float64 ulps of the numpy pass, NaN and ±inf in the same places; the same at
  131,072 classes. (The two exps are each under 1 ulp but not the same function, and the sums go in other orders.)
"""

from __future__ import annotations

import math
import platform
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from tests.conftest import missing_tool
from tests.strategies import problems
from tests.test_streaming import within_ulps
from xentcompat.reference import compiled_rows
from xentcompat.reference.options import Options, Problem
from xentcompat.reference.softmax_xent import solve

ULPS = 8
FIXTURES = [HealthCheck.function_scoped_fixture]  # monkeypatch: each example sets the switch itself
CAN_BUILD = sys.platform == "linux" and platform.machine() == "x86_64"


@pytest.fixture
def compiled():
    if not compiled_rows.built():
        (missing_tool if CAN_BUILD else pytest.skip)("the compiled row pass is not built (pip install -e . builds it)")


def both_passes(problem: Problem, monkeypatch):
    monkeypatch.setenv(compiled_rows.SWITCH, "1")
    numpy_pass = solve(problem)
    monkeypatch.setenv(compiled_rows.SWITCH, "0")
    return numpy_pass, solve(problem)


def assert_same_numbers(numpy_pass, compiled_pass) -> None:
    within_ulps(compiled_pass.grad, numpy_pass.grad, ULPS)
    within_ulps(compiled_pass.row_losses, numpy_pass.row_losses, ULPS)
    within_ulps(compiled_pass.lse, numpy_pass.lse, ULPS)
    within_ulps(compiled_pass.loss, numpy_pass.loss, ULPS)


def test_it_is_built_where_glibc_has_a_vector_exp(compiled):
    assert compiled_rows.built()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_row_gives_its_max_first_index_and_the_sum_without_the_max(compiled, dtype):
    x = np.array([[0.0, 2.0, 2.0, -np.inf, 1.0], [1.0, np.nan, 0.0, 0.0, 0.0], [0.0, np.inf, 0.0, 0.0, 0.0],
                  [-np.inf] * 5], dtype=dtype)
    out = np.empty(x.shape)
    rows = compiled_rows.row_pass(x, out, np.array([2.0, 1.0, 1.0, 1.0]))
    assert rows.m[0] == 2.0 and rows.k[0] == 1
    t = 1.0 + math.exp(-2.0) + math.exp(-1.0)  # the tie's second 2 counts in t, the -inf adds 0
    assert rows.t[0] == pytest.approx(t, rel=1e-15)
    np.testing.assert_allclose(out[0], np.exp(x[0].astype(float) - 2.0) * 2.0 / (1.0 + t), rtol=4e-16)
    assert out[0, 3] == 0.0
    assert rows.poisoned.tolist() == [False, True, True, False]
    assert rows.m[3] == -np.inf and rows.k[3] == 0


def test_without_coefficients_the_row_keeps_its_exponentials(compiled):
    x = np.array([[3.0, 1.0, 0.5]], dtype=np.float32)
    out = np.empty(x.shape)
    compiled_rows.row_pass(x, out, None)
    np.testing.assert_allclose(out[0], np.exp(x[0].astype(float) - 3.0), rtol=4e-16)


def test_a_gradient_array_of_the_wrong_type_is_refused_by_name(compiled):
    with pytest.raises(ValueError, match="out must be a C-contiguous float64 array of shape"):
        compiled_rows.row_pass(np.zeros((2, 3), np.float32), np.empty((2, 3), np.float32), None)


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURES)
@given(problems())
def test_drawn_problems_give_the_numbers_of_the_numpy_pass(compiled, monkeypatch, problem):
    assert_same_numbers(*both_passes(problem, monkeypatch))


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURES)
@given(problems(nonfinite=True, max_rows=4, max_classes=40))
def test_float32_logits_give_the_numbers_of_the_numpy_pass(compiled, monkeypatch, problem):
    narrow = Problem(np.clip(problem.logits, -3e38, 3e38).astype(np.float32), problem.labels, problem.probs,
                     problem.options)
    assert_same_numbers(*both_passes(narrow, monkeypatch))


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_a_vocabulary_of_131072_classes_gives_the_numbers_of_the_numpy_pass(compiled, monkeypatch, scale):
    rng = np.random.default_rng(7)
    x = rng.normal(0.0, scale, (3, 131072)).astype(np.float32)
    x[1, 5] = -np.inf
    problem = Problem(x, np.array([0, 5, 131071]), None, Options(reduction="sum"))
    assert_same_numbers(*both_passes(problem, monkeypatch))
