"""Mechanisms: what an API that works that way computes, from the cell's input, so that a cause's entry predicts its
outcomes on any input (a case added later, a user's own batch) instead of listing them per case."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xentcompat import expectations
from xentcompat.expectations import CauseConflict, expectation
from xentcompat.expectations.conditions import holding
from xentcompat.expectations.mechanisms import (EPSILON, MECHANISMS, clipped_probabilities, float32_arithmetic,
                                                softmax_twice)
from xentcompat.reference.options import Options, Problem
from xentcompat.reference.softmax_xent import solve
from xentcompat.run.harness import Truth
from xentcompat.run.predicted import outcomes

TWICE = "torch.nn.CrossEntropyLoss(softmax)"
CELL = {"api": TWICE, "case": "mine", "area": "", "tier": "", "tags": [], "dtype": "float32", "device": "cpu",
        "mode": "eager", "backend": None}


def _problem(logits, labels, **options) -> Problem:
    return Problem(np.array(logits, np.float64), np.array(labels), options=Options(**options))


def _predicted(mechanism: str, problem: Problem, dtype: str) -> tuple[str, str] | None:
    return outcomes(mechanism, problem, lambda: Truth(problem, solve(problem), dtype))


def test_softmax_twice_of_equal_logits_keeps_the_loss_and_divides_the_gradient_by_c():
    """Equal logits: the softmax is 1/C everywhere, whose softmax is 1/C again, so the loss is log C exactly; the
    Jacobian diag(p) - p p^T of a uniform p is (I - 1/C)/C, which scales the gradient (its rows sum to 0) by 1/C."""
    problem = _problem(np.zeros((2, 5)), [1, 3])
    loss, grad = softmax_twice(problem, "float64")
    assert loss == pytest.approx(np.log(5.0), rel=1e-15)
    np.testing.assert_allclose(grad, solve(problem).grad / 5.0, rtol=1e-13, atol=1e-17)
    assert _predicted("softmax-twice", problem, "float32") == ("ok", "inaccurate")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-4.0, 4.0), min_size=4, max_size=4), st.integers(0, 3))
def test_softmax_twice_gradient_is_the_derivative_of_its_loss(row, label):
    """The chain rule through the softmax, checked by central differences of the loss (float64, no rounding)."""
    problem = _problem([row], [label])
    loss, grad = softmax_twice(problem, "float64")
    step = 1e-6
    for j in range(4):
        up, down = np.array([row]), np.array([row])
        up[0, j] += step
        down[0, j] -= step
        slope = (softmax_twice(_problem(up, [label]), "float64")[0]
                 - softmax_twice(_problem(down, [label]), "float64")[0]) / (2 * step)
        assert grad[0, j] == pytest.approx(slope, abs=1e-8)
    assert float(loss) <= np.log(4.0) + 1.0  # probabilities as logits: at most log C + 1


def test_float32_arithmetic_loses_a_confident_row_s_loss_in_log_of_the_sum():
    """[[30, 0, 0]], label 0, float64 computed in float32: 1 + 2e^-30 is 1 in float32, so the loss is 0 where the
    true one is 1.9e-13, and the target's gradient p - 1 is 0 where it is -1.9e-13: both inaccurate at float64."""
    problem = _problem([[30.0, 0.0, 0.0]], [0])
    loss, grad = float32_arithmetic(problem, "float64")
    assert float(loss) == 0.0 and grad[0, 0] == 0.0
    assert solve(problem).loss == pytest.approx(2 * np.exp(-30.0), rel=1e-12)
    assert _predicted("float32-arithmetic", problem, "float64") == ("inaccurate", "inaccurate")
    assert _predicted("float32-arithmetic", problem, "float32") == ("ok", "ok")  # no deviation in the dtype itself


def test_float32_arithmetic_sums_the_row_losses_in_float32():
    """Two rows of loss 3e38 each fit float32; their sum 6e38 does not: a mean taken as a float32 sum is inf."""
    problem = _problem([[-3e38, 0.0], [-3e38, 0.0]], [0, 0])
    assert float(float32_arithmetic(problem, "float64")[0]) == np.inf
    assert float(float32_arithmetic(_problem([[-3e38, 0.0]], [0]), "float64")[0]) == pytest.approx(3e38, rel=1e-6)


def test_clipped_probabilities_cap_a_confident_wrong_row_and_drop_its_gradient():
    """p = e^-40 < 1e-7 is clipped to 1e-7: the loss is -log(1e-7) = 16.1, and the clip passes no gradient."""
    problem = _problem([[0.0, 40.0, 0.0]], [0])
    loss, grad = clipped_probabilities(problem, "float32")
    assert float(loss) == pytest.approx(-np.log(EPSILON), rel=1e-6)
    assert not np.any(grad)
    assert _predicted("clipped-probabilities", problem, "float32") == ("inaccurate", "inaccurate")


def test_clipped_probabilities_keep_a_masked_target_finite():
    loss, _ = clipped_probabilities(_problem([[0.0, -np.inf, 1.0]], [1]), "float32")
    assert float(loss) == pytest.approx(-np.log(EPSILON), rel=1e-6)


def test_clipped_probabilities_overflow_float16_where_the_gradient_reaches_the_softmax():
    """70000 equal logits in float16: p = 1.4e-5 is inside the clip, and -1/p = -7e4 is beyond float16's 65504 when
    the gradient comes back to the float16 softmax: inf there, and NaN through the Jacobian."""
    problem = _problem(np.zeros((1, 70000)), [3])
    _, grad = clipped_probabilities(problem, "float16")
    assert np.isnan(grad).any()
    _, wide = clipped_probabilities(problem, "float32")
    assert np.isfinite(wide).all()


def test_every_mechanism_gives_a_loss_and_a_gradient_of_the_input_s_shape():
    problem = _problem([[1.0, 2.0, -np.inf], [0.5, 0.5, 0.5]], [1, 2], reduction="none")
    for name, mechanism in MECHANISMS.items():
        for dtype in ("float16", "bfloat16", "float32", "float64"):
            loss, grad = mechanism(problem, dtype)
            assert np.shape(loss) == (2,) and grad.shape == (2, 3), (name, dtype)


def test_a_user_batch_gets_the_mechanism_s_outcomes_without_a_cause_edit():
    """A batch no catalogue case resembles, fed to the double softmax: the shipped entry covers it by its API and
    its mechanism gives the outcomes (a row far from uniform: loss and gradient both wrong)."""
    problem = _problem([[3.0, -1.0, 0.5, 2.0], [0.0, 0.1, -0.2, 4.0]], [0, 3])
    effects = expectations.load("torch")
    found = expectation(effects, CELL, "2.13.0", lambda: holding(problem, "float32"))
    assert (found.cause.id, found.mechanism) == ("softmax-twice", "softmax-twice")
    assert _predicted(found.mechanism, problem, "float32") == ("inaccurate", "inaccurate")


def test_outcomes_are_not_predicted_on_invalid_input():
    problem = _problem([[1.0, 2.0]], [0])
    assert outcomes("softmax-twice", problem, lambda: None) is None


MECHANISM_CAUSE = '''
[twice]
kind = "semantics"
title = "Softmax applied twice"
explanation = "Probabilities fed as logits."
upstream = ["https://github.com/keras-team/keras/issues/6143"]

[[twice.cells]]
framework = "torch"
apis = ["torch.nn.CrossEntropyLoss"]
mechanism = "softmax-twice"
'''
FIXED_CAUSE = '''
[refused]
kind = "validation"
title = "int32 labels refused"
explanation = "nll_loss takes int64 labels only."
upstream = ["https://github.com/pytorch/pytorch/issues/1"]

[[refused.cells]]
framework = "torch"
apis = ["torch.nn.CrossEntropyLoss"]
cases = ["labels-int32"]
loss = "raised"
grad = "raised"
'''
TORCH_CELL = {**CELL, "api": "torch.nn.CrossEntropyLoss", "case": "labels-int32"}


def _load(tmp_path, *texts: str):
    directory = tmp_path / "causes"
    directory.mkdir(parents=True, exist_ok=True)
    for index, text in enumerate(texts):
        (directory / f"{index}.toml").write_text(text)
    return expectations.load("torch", directory)


def test_an_entry_of_fixed_outcomes_stands_over_a_mechanism_on_a_cell_both_cover(tmp_path):
    effects = _load(tmp_path, MECHANISM_CAUSE, FIXED_CAUSE)
    assert expectation(effects, TORCH_CELL, None).cause.id == "refused"
    assert expectation(effects, {**TORCH_CELL, "case": "random-moderate"}, None).mechanism == "softmax-twice"


def test_two_mechanisms_of_two_causes_on_one_cell_conflict(tmp_path):
    other = MECHANISM_CAUSE.replace("[twice]", "[again]").replace("[[twice.cells]]", "[[again.cells]]") \
        .replace('"softmax-twice"', '"float32-arithmetic"')
    effects = _load(tmp_path, MECHANISM_CAUSE, other)
    with pytest.raises(CauseConflict, match="twice.*again|again.*twice"):
        expectation(effects, TORCH_CELL, None)


@pytest.mark.parametrize("edit, message", [
    (('mechanism = "softmax-twice"', 'mechanism = "softmax-thrice"'), "'softmax-thrice' is not one of"),
    (('mechanism = "softmax-twice"', 'mechanism = "softmax-twice"\nloss = "inaccurate"'),
     "field 'loss': an entry with a mechanism takes its outcomes from it"),
    (('mechanism = "softmax-twice"\n', ''), "missing field 'loss'"),
])
def test_malformed_mechanism_entries_refused(tmp_path, edit, message):
    with pytest.raises(ValueError, match=message):
        _load(tmp_path, MECHANISM_CAUSE.replace(*edit))


@pytest.mark.parametrize("mechanism", sorted(MECHANISMS))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_a_big_batch_is_predicted_row_chunk_by_row_chunk_as_a_whole_one(monkeypatch, mechanism, reduction):
    rng = np.random.default_rng(5)
    logits = 3 * rng.standard_normal((64, 256))
    logits[:4] -= 40.0
    labels = rng.integers(0, 256, 64)
    logits[np.arange(4), labels[:4]] += 40.0  # confident rows
    problem = _problem(logits.astype(np.float32).astype(np.float64), labels, reduction=reduction)
    whole = [_predicted(mechanism, problem, dtype) for dtype in ("float32", "float64")]
    monkeypatch.setenv("XENTCOMPAT_BIG_BATCH_BYTES", str(2**12))
    from xentcompat.reference.compact import is_big
    assert is_big(problem.logits)
    assert [_predicted(mechanism, problem, dtype) for dtype in ("float32", "float64")] == whole
