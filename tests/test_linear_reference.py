"""The linear cross-entropy reference (loss, dL/dh, dL/dW, dL/db) against mpmath and a row worked by hand; its
cases; and a cell of a linear API end to end: a deviating weight gradient is its `[dW]` record's finding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests import crashing_adapter, linear_adapter
from xentcompat.adapters.base import registered
from xentcompat.reference.cases import CATALOGUE, by_id
from xentcompat.reference.dtypes import DTYPE_NAMES
from xentcompat.reference.linear_cases import LINEAR_CASES
from xentcompat.reference.linear_xent import linear_cross_entropy, make_linear_problem
from xentcompat.reference.mp_linear import mp_linear_cross_entropy
from xentcompat.reference.mp_oracle import to_float
from xentcompat.reference.options import Options
from xentcompat.run.harness import Cell, cells, check

RNG = np.random.default_rng(11)
HIDDEN, WEIGHT, BIAS = RNG.normal(0, 1, (5, 6)), RNG.normal(0, 0.7, (9, 6)), RNG.normal(0, 1, 9)
OPTIONS = [Options(), Options(reduction="sum"), Options(reduction="none"), Options(label_smoothing=0.1),
           Options(weight=tuple(RNG.uniform(0.5, 2.0, 9)), ignore_index=-100)]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: f"{o.reduction}-{o.label_smoothing}-{o.weight is None}")
def test_reference_agrees_with_mpmath(options):
    labels = [0, 8, -100, 3, 4] if options.ignore_index is not None else [0, 8, 2, 3, 4]
    problem = make_linear_problem(HIDDEN, WEIGHT, labels, options=options)
    result = linear_cross_entropy(HIDDEN, WEIGHT, labels, options=options)
    loss, grad_hidden, grad_weight = (to_float(value) for value in mp_linear_cross_entropy(problem))
    np.testing.assert_allclose(result.loss, loss, rtol=1e-13)
    np.testing.assert_allclose(result.grad_hidden, grad_hidden, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(result.grad_weight, grad_weight, rtol=1e-12, atol=1e-15)


def test_bias_gradient_is_the_sum_of_the_logits_gradient_and_the_logits_include_it():
    with_bias = linear_cross_entropy(HIDDEN, WEIGHT, [0, 1, 2, 3, 4], bias=BIAS)
    problem = make_linear_problem(HIDDEN, WEIGHT, [0, 1, 2, 3, 4], bias=BIAS)
    loss, grad_hidden, grad_weight = (to_float(value) for value in mp_linear_cross_entropy(problem))
    np.testing.assert_allclose(with_bias.loss, loss, rtol=1e-13)
    np.testing.assert_allclose(with_bias.grad_weight, grad_weight, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(with_bias.grad_bias, with_bias.logits.grad.sum(axis=0), rtol=1e-15)
    assert not np.allclose(with_bias.loss, linear_cross_entropy(HIDDEN, WEIGHT, [0, 1, 2, 3, 4]).loss)


def test_one_row_worked_by_hand():
    """h = [1, 2], W = [[1, 0], [0, 1], [1, 1]], y = 2: z = [1, 2, 3], loss = log(e + e^2 + e^3) - 3,
    G = p - e_y, dL/dh = G @ W, dL/dW = outer(G, h)."""
    result = linear_cross_entropy([[1.0, 2.0]], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [2])
    e = np.exp([1.0, 2.0, 3.0])
    p = e / e.sum()
    g = p - [0.0, 0.0, 1.0]
    assert result.loss == pytest.approx(math.log(e.sum()) - 3.0, rel=1e-15)
    np.testing.assert_allclose(result.grad_hidden, [[g[0] + g[2], g[1] + g[2]]], rtol=1e-14)
    np.testing.assert_allclose(result.grad_weight, np.outer(g, [1.0, 2.0]), rtol=1e-14)


@pytest.mark.parametrize("hidden, weight, bias, match", [
    (np.zeros((2, 3)), np.zeros((4, 5)), None, "differ in D"),
    (np.zeros(3), np.zeros((4, 3)), None, "must be 2-D"),
    (np.zeros((2, 3)), np.zeros((4, 3)), np.zeros(5), "bias of shape"),
    (np.full((2, 3), np.inf), np.zeros((4, 3)), None, "must be finite"),
])
def test_malformed_inputs_are_refused(hidden, weight, bias, match):
    with pytest.raises(ValueError, match=match):
        make_linear_problem(hidden, weight, [0, 1], bias)


def test_a_label_outside_the_vocabulary_is_refused():
    with pytest.raises(ValueError, match=r"label 4 outside \[0, 4\)"):
        make_linear_problem(np.zeros((2, 3)), np.zeros((4, 3)), [0, 4])


def test_linear_cases_are_in_the_catalogue_and_run_only_linear_apis():
    fake = {api.id: api for api in registered(linear_adapter.__name__)}
    plain = [case for case in CATALOGUE if case.area != "linear"]
    assert {case.id for case in LINEAR_CASES} <= {case.id for case in CATALOGUE}
    assert not [cell for cell in cells(list(fake.values()), plain, ("float32",))]
    logits_apis = registered(crashing_adapter.__name__)
    assert logits_apis and not [cell for cell in cells(logits_apis, LINEAR_CASES, ("float32",))]
    assert max(case.weight.shape[0] for case in LINEAR_CASES) >= 32768


@pytest.mark.parametrize("case", LINEAR_CASES, ids=lambda case: case.id)
def test_every_linear_case_makes_a_valid_problem_in_every_dtype(case):
    for dtype in DTYPE_NAMES:
        assert case.runs_in(dtype)
        problem = case.problem(dtype, "linear-weight")
        assert problem.wrt == "weight" and problem.logits.shape == (len(case.labels), case.weight.shape[0])
        assert np.all(np.isfinite(problem.logits))


def test_confident_case_has_the_logits_it_says():
    z = by_id("linear-confident").logits
    at = np.arange(8)
    labels = by_id("linear-confident").labels
    np.testing.assert_allclose(z[at[:4], labels[:4]], 30.0, rtol=1e-12)
    np.testing.assert_allclose(z[at[4:], (labels[4:] + 1) % z.shape[1]], 30.0, rtol=1e-12)


def test_a_deviating_weight_gradient_is_the_finding_of_the_dw_record_only():
    """The weight gradient of the sum where the mean is due: dL/dh right (ok/ok, no finding), dL/dW 8 times too
    large (N = 8: inaccurate, an unexplained finding); the exact API is ok on both."""
    fake = {api.id: api for api in registered(linear_adapter.__name__)}
    case = by_id("linear-moderate")
    records = {api_id: check(Cell(fake[api_id], case, "float32"), []).record
               for api_id in fake}
    assert records["fake.linear"]["finding"] is None and records["fake.linear[dW]"]["finding"] is None
    assert (records["fake.linear_sum_weight_grad"]["loss"]["outcome"],
            records["fake.linear_sum_weight_grad"]["grad"]["outcome"]) == ("ok", "ok")
    deviating = records["fake.linear_sum_weight_grad[dW]"]
    assert (deviating["loss"]["outcome"], deviating["grad"]["outcome"]) == ("ok", "inaccurate")
    assert deviating["finding"].startswith("XC-unexplained-")
    assert deviating["grad"]["norm"] == pytest.approx(8 * deviating["grad"]["reference_norm"], rel=1e-12)
    assert records["fake.linear[dW]"]["relations"] is None  # the logits' relations are not the linear API's
