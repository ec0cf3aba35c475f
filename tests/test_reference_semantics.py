"""The float64 reference against an independent oracle (`mp_semantics`): every option and combination as PyTorch's
documentation defines it, the gradient as mpmath's numerical derivative, and the log-sum-exp and softmax the error
model builds its units from."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.strategies import problems
from tests.test_reference_mpmath import ULPS, U, assert_close, condition, reduced
from xentcompat.reference.mp_semantics import as_float, mp_documented
from xentcompat.reference.options import Options, Problem, terms
from xentcompat.reference.softmax_xent import make_problem, solve

SLACK = 1e-30  # mpmath.diff at 50 digits


@st.composite
def documented_problems(draw, signed: bool = False) -> Problem:
    problem = draw(problems(nonfinite=False, max_rows=3, max_classes=5, signed=signed))
    logits = np.clip(problem.logits, -50, 50)
    mean_over = draw(st.sampled_from(["weight", "rows"]))
    options = Options(**{**problem.options.__dict__, "mean_over": mean_over})
    return make_problem(logits, problem.labels, problem.probs, options)


def assert_matches_documented(problem: Problem) -> None:
    reference = solve(problem)
    truth = mp_documented(problem)
    loss_scale, grad_scale = reduced(problem, reference, *condition(problem, reference))
    assert_close(reference.loss, as_float(truth["loss"]), loss_scale, SLACK)
    assert_close(reference.grad, as_float(truth["grad"]), grad_scale, SLACK)
    counted = terms(problem).counted  # an ignored row's lse and softmax weigh nothing in the units
    x = problem.logits[counted]
    d = np.abs(x - np.max(x, axis=1, keepdims=True, initial=-np.inf))
    lse = as_float(truth["lse"])[counted]
    # lse = max + log(sum): the two terms round apart, so a row whose lse cancels near 0 (max -0.69, log 2) is
    # accurate to the terms' size, not to its own
    terms_size = np.abs(np.max(x, axis=1, initial=-np.inf)) + np.abs(lse)
    assert np.all(np.abs(reference.lse[counted] - lse) <= ULPS * U * (terms_size + np.max(d, axis=1, initial=0))
                  + SLACK)
    p = as_float(truth["softmax"])[counted]
    allowed = ULPS * U * p * (1 + d + np.max(d, axis=1, keepdims=True, initial=0)) + 1e-300
    assert np.all(np.abs(reference.softmax[counted] - p) <= allowed)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documented_problems())
def test_reference_matches_the_documented_semantics(problem):
    assert_matches_documented(problem)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documented_problems(signed=True))
def test_negative_class_weights_match_the_documented_semantics(problem):
    """The formulas as written with signed weights: a negatively weighted target's loss counts negative, and a
    weighted mean divides by the signed total."""
    assert_matches_documented(problem)


def test_each_option_against_its_documented_value():
    """Fixed examples, one per option, with the documented value written out."""
    x = np.log(np.array([[1.0, 2.0, 1.0], [4.0, 2.0, 2.0]]))  # softmax rows (1/4, 1/2, 1/4) and (1/2, 1/4, 1/4)
    w = (1.0, 2.0, 4.0)
    cases = [
        (Options(reduction="sum"), [1, 0], np.log(2) + np.log(2)),
        (Options(weight=w), [1, 2], (2 * np.log(2) + 4 * np.log(4)) / (2 + 4)),
        (Options(weight=w, mean_over="rows"), [1, 2], (2 * np.log(2) + 4 * np.log(4)) / 2),
        (Options(weight=(1.0, -2.0, 4.0)), [1, 2], (-2 * np.log(2) + 4 * np.log(4)) / (-2 + 4)),
        (Options(ignore_index=2, reduction="mean"), [1, 2], np.log(2)),
        (Options(label_smoothing=0.3, reduction="sum"), [1, 0],
         sum(0.7 * -np.log(pt) + 0.1 * -np.sum(np.log(row))
             for pt, row in ((0.5, [0.25, 0.5, 0.25]), (0.5, [0.5, 0.25, 0.25])))),
    ]
    for options, labels, value in cases:
        problem = make_problem(x, labels, options=options)
        assert abs(float(as_float(mp_documented(problem)["loss"])) - value) <= 8 * np.spacing(value), options
        assert abs(solve(problem).loss - value) <= 8 * np.spacing(value), options
