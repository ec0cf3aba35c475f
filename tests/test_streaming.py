"""The streaming reference against the one-piece reference it replaced (`tests/frozen_reference.py`).

On hypothesis-drawn problems (every option, non-finite logits included) and blocks from one element up to whole rows,
row chunks and class blocks on one or two threads:
* NaN and ±inf in exactly the same places, for the loss, the gradient, the row losses, the lse and the softmax;
* with whole rows (every default-sized batch here): the same numbers within 4 float64 ulps of each value;
* with class blocks (the online log-sum-exp's rescaled sums): within the reference's own first-order bound, the one
  `test_reference_mpmath` holds it to against mpmath;
* the error model's units (loss, per row, per element) within a few ulps with whole rows, and to 1e-10 relative
  with class blocks (they inherit the reference's rescaled sums through p and the lse).
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.frozen_reference import frozen_grad_units, frozen_loss_unit, frozen_solve
from tests.strategies import problems
from tests.test_reference_mpmath import assert_close, assert_matches_mpmath, condition, reduced
from xentcompat.reference.blocks import Budget, block_elements, chunks
from xentcompat.reference.coefficients import coefficient_block, coefficients_of
from xentcompat.reference.dtypes import DTYPE_NAMES
from xentcompat.reference.errors import grad_units, loss_unit
from xentcompat.reference.options import Options, Problem, terms, validate
from xentcompat.reference.softmax_xent import TEMPORARIES, make_problem, solve

INF, NAN = math.inf, math.nan
SUBNORMAL = 2.0**-1074


def budget_for(elements: int, workers: int = 1) -> Budget:
    """A budget whose blocks hold `elements` elements."""
    return Budget(work_bytes=elements * workers * 8 * TEMPORARIES, workers=workers)


def same_nonfinite(value, truth) -> None:
    value, truth = np.asarray(value, float), np.asarray(truth, float)
    assert value.shape == truth.shape
    assert np.array_equal(np.isnan(value), np.isnan(truth)), (value, truth)
    infinite = np.isinf(value) | np.isinf(truth)
    assert np.array_equal(value[infinite], truth[infinite]), (value, truth)


def within_ulps(value, truth, ulps: float, slack=0.0) -> None:
    """Same non-finite places; finite values within `ulps` spacings of the old value (plus `slack`, absolute)."""
    same_nonfinite(value, truth)
    value, truth = np.broadcast_arrays(np.asarray(value, float), np.asarray(truth, float))
    finite = np.isfinite(truth)
    error = np.abs(value[finite] - truth[finite])
    allowed = (ulps * np.spacing(np.abs(truth)) + slack)[finite]
    assert np.all(error <= allowed), (value, truth, np.max(error / allowed))


def mean_coefficients_overflow(problem: Problem) -> bool:
    """Whether some c / D overflows: the one-piece reference then gave NaN (inf * 0, inf - inf) where the loss and
    gradient are ±inf; the streaming one divides by D last, and is held to mpmath there."""
    parts = terms(problem)
    if problem.options.reduction != "mean" or parts.denominator == 0:
        return False
    with np.errstate(over="ignore"):
        return not np.all(np.isfinite(parts.coefficients / parts.denominator))


def assert_same_as_frozen(problem: Problem, budget: Budget) -> None:
    new, old = solve(problem, budget), frozen_solve(problem)
    whole_rows = block_elements(budget, TEMPORARIES) >= problem.num_classes
    for name in ("row_losses", "lse", "softmax"):
        within_ulps(getattr(new, name), getattr(old, name), 4 if whole_rows else 64 * problem.num_classes)
    if mean_coefficients_overflow(problem):
        assert_matches_mpmath(problem)
        return
    if whole_rows:
        c_sum = np.sum(terms(problem).coefficients, axis=1, keepdims=True)
        within_ulps(new.loss, old.loss, 4)
        within_ulps(new.grad, old.grad, 4, 32 * SUBNORMAL * (1 + c_sum))
        return
    same_nonfinite(new.loss, old.loss)
    same_nonfinite(new.grad, old.grad)
    loss_scale, grad_scale = reduced(problem, old, *condition(problem, old))
    assert_close(new.loss, old.loss, loss_scale, subnormal_quantum(problem))
    assert_close(new.grad, old.grad, grad_scale, subnormal_quantum(problem))


def subnormal_quantum(problem: Problem) -> float:
    """What rounding a subnormal product (a class weight of 5e-324 times a probability) to the subnormal grid can
    move a mean's value by once it is divided by the denominator: the two pieces' orders round differently there."""
    denominator = terms(problem).denominator if problem.options.reduction == "mean" else 1.0
    return 8 * SUBNORMAL / denominator if denominator else 0.0


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.integers(1, 10), st.sampled_from([1, 2]))
def test_streaming_gives_the_numbers_of_the_one_piece_reference(problem, elements, workers):
    assert_same_as_frozen(problem, budget_for(elements, workers))


@settings(max_examples=150, deadline=None)
@given(problems())
def test_default_budget_gives_the_numbers_of_the_one_piece_reference(problem):
    assert_same_as_frozen(problem, Budget())


@settings(max_examples=100, deadline=None)
@given(problems(nonfinite=False, max_rows=6, max_classes=12), st.integers(1, 13))
def test_float32_logits_are_read_as_their_float64_values(problem, elements):
    """A Problem holding float32 logits gives what their float64 copy gives, without the copy."""
    narrow = np.clip(problem.logits, -3e38, 3e38).astype(np.float32)
    wide = Problem(narrow.astype(np.float64), problem.labels, problem.probs, problem.options)
    validate(wide)
    from_narrow = solve(Problem(narrow, problem.labels, problem.probs, problem.options), budget_for(elements))
    from_wide = solve(wide, budget_for(elements))
    np.testing.assert_array_equal(from_narrow.grad, from_wide.grad)
    np.testing.assert_array_equal(from_narrow.row_losses, from_wide.row_losses)
    np.testing.assert_array_equal(from_narrow.softmax, from_wide.softmax)


ROWS = [
    [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    [6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0],
    [-INF, -INF, -INF, 2.0, 0.0, -INF, 1.0],  # the first block holds only -inf
    [1.0, 0.0, 3.0, 3.0, 0.0, 3.0, -INF],  # the max tied across blocks: the first index is k
    [30.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # confident: 1 - p_k ~ 6e-13 keeps its digits
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, NAN],  # NaN in the last block
    [0.0, INF, 0.0, 0.0, 0.0, 0.0, 0.0],
    [-INF] * 7,
    [1e308, -1e308, 0.0, 0.0, 0.0, 0.0, 0.0],
]


@pytest.mark.parametrize("elements", [1, 2, 3, 7, 100])
@pytest.mark.parametrize("options", [
    Options(reduction="none"), Options(reduction="sum"), Options(), Options(label_smoothing=0.2),
    Options(weight=(1.0, 2.0, 0.0, 0.5, 3.0, 1.0, 1e-300), mean_over="rows"), Options(ignore_index=3),
], ids=["none", "sum", "mean", "smoothed", "weighted", "ignored"])
def test_named_rows_in_every_blocking(options, elements):
    labels = [0, 6, 3, 5, 0, 1, 2, 3, 1]
    problem = make_problem(ROWS, labels, options=options)
    assert_same_as_frozen(problem, budget_for(elements, 2))
    probs = np.abs(np.sin(np.arange(63.0))).reshape(9, 7)
    if options.ignore_index is None:
        assert_same_as_frozen(make_problem(ROWS, probs=probs, options=options), budget_for(elements, 2))


@pytest.mark.parametrize("elements", [1, 4, 100])
def test_empty_batch_and_one_class(elements):
    for logits, labels in ((np.zeros((0, 4)), []), (np.zeros((0, 1)), []), ([[3.0], [-INF], [NAN]], [0, 0, 0])):
        for reduction in ("none", "sum", "mean"):
            problem = make_problem(logits, np.asarray(labels, dtype=int), options=Options(reduction=reduction))
            assert_same_as_frozen(problem, budget_for(elements, 2))


def test_every_row_ignored_or_weightless_has_a_nan_mean_and_zero_gradient():
    for options, labels in ((Options(ignore_index=1), [1, 1]), (Options(weight=(0.0, 1.0, 1.0)), [0, 0])):
        problem = make_problem([[0.0, 1.0, 2.0], [NAN, 0.0, 1.0]], labels, options=options)
        for elements in (1, 100):
            assert_same_as_frozen(problem, budget_for(elements))


@settings(max_examples=200, deadline=None)
@given(problems(), st.integers(1, 10))
def test_coefficient_blocks_are_the_blocks_of_the_coefficient_matrix(problem, width):
    parts, coefficients = terms(problem), coefficients_of(problem)
    assert coefficients.denominator == parts.denominator
    np.testing.assert_array_equal(coefficients.counted, parts.counted)
    n, num_classes = problem.logits.shape
    for row in range(n):
        for start in range(0, num_classes, width):
            cols = slice(start, min(start + width, num_classes))
            block = coefficient_block(coefficients, slice(row, row + 1), cols)
            np.testing.assert_array_equal(block, parts.coefficients[row:row + 1, cols])
    if coefficients.one_hot:
        at_label = parts.coefficients[np.arange(n), coefficients.labels]
        np.testing.assert_array_equal(coefficients.label_coefficient, at_label)
        assert np.count_nonzero(parts.coefficients) == np.count_nonzero(at_label)


def test_chunks_cover_the_batch_once():
    for shape, elements in (((5, 3), 7), ((5, 3), 2), ((2, 10), 4), ((0, 3), 5), ((3, 1), 1)):
        covered = np.zeros(shape, dtype=int)
        for chunk in chunks(shape, elements):
            assert (chunk.rows.stop - chunk.rows.start) * (chunk.blocks[0].stop - chunk.blocks[0].start) <= max(
                elements, shape[1] if shape[1] <= elements else elements)
            for cols in chunk.blocks:
                covered[chunk.rows, cols] += 1
        assert np.all(covered == 1)


def test_gradient_into_a_given_array():
    problem = make_problem(ROWS, [0, 6, 3, 5, 0, 1, 2, 3, 1], options=Options(label_smoothing=0.2))
    out = np.full((9, 7), 5.0)
    result = solve(problem, budget_for(3, 2), out=out)
    assert result.grad is out
    np.testing.assert_array_equal(out, solve(problem, budget_for(3, 2)).grad)
    with pytest.raises(ValueError, match="out must be a writeable float64 array of shape"):
        solve(problem, out=np.zeros((9, 7), dtype=np.float32))


def _peak_traced(call) -> tuple[int, object]:
    """(peak traced bytes allocated during `call`, its result)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = call()
        return tracemalloc.get_traced_memory()[1] - before, result
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("targets", ["labels", "smoothed", "probs"])
def test_work_memory_stays_within_the_budget(targets):
    """Traced allocations beyond the gradient output stay within the budget plus a few numbers per row and per class
    (the class weights, their smoothing part), for the reference and for the error model's units: here a 256 KiB
    budget on a 64 × 4096 float32 batch, whose gradient alone is 2 MiB and whose coefficient matrix would be too."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((64, 4096)).astype(np.float32)
    labels = rng.integers(0, 4096, 64)
    probs = rng.random((64, 4096)) if targets == "probs" else None
    options = Options(label_smoothing=0.1 if targets == "smoothed" else 0.0)
    problem = Problem(logits, None if probs is not None else labels, probs, options)
    validate(problem)
    budget = Budget(work_bytes=256 * 2**10, workers=2)
    allowed = budget.work_bytes + 8 * 8 * (64 + 4096) + 64 * 2**10
    peak, result = _peak_traced(lambda: solve(problem, budget))
    assert peak - result.grad.nbytes <= allowed, peak
    peak, _ = _peak_traced(lambda: (loss_unit(problem, result, "float16", budget),
                                    grad_units(problem, result, "float16", budget).row))
    assert peak <= allowed, peak


def _subnormal_weight_rtol(problem) -> float:
    """A subnormal class weight holds fewer significant bits (2.2e-311 about 40): units that scale with it agree
    between the two summation orders only to 16 of its own ulps, 2^-1074 / w."""
    weights = [abs(w) for w in (problem.options.weight or ()) if w != 0]
    return 16 * 2.0**-1074 / min(weights) if weights else 0.0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.integers(1, 10), st.sampled_from([1, 2]), st.sampled_from(DTYPE_NAMES))
def test_streaming_units_are_the_units_of_the_one_piece_error_model(problem, elements, workers, dtype):
    budget = budget_for(elements, workers)
    whole_rows = block_elements(budget, TEMPORARIES) >= problem.num_classes
    new, old = solve(problem, budget), frozen_solve(problem)
    rtol = max(16 * 2.0**-52 if whole_rows else 1e-10, _subnormal_weight_rtol(problem))
    np.testing.assert_allclose(loss_unit(problem, new, dtype, budget), frozen_loss_unit(problem, old, dtype),
                               rtol=rtol, atol=0)
    units = grad_units(problem, new, dtype, budget)
    old_row, old_element = frozen_grad_units(problem, old, dtype)
    # a gradient element the one-piece reference overflowed (c / D first, past the largest float) where the streamed
    # one divides after (finite): its |g| term differs by design, and so do that element's and its row's units
    same = np.isfinite(new.grad) == np.isfinite(old.grad)
    rows = np.all(same, axis=1)
    np.testing.assert_allclose(units.row[rows], old_row[rows], rtol=rtol, atol=0)
    np.testing.assert_allclose(units.element[same], old_element[same], rtol=rtol, atol=0)


@pytest.mark.parametrize("logit, reduction, takes_one_walk", [
    (0.5, "mean", True), (0.5, "sum", True), (-INF, "mean", False), (INF, "mean", False), (NAN, "sum", False)])
def test_one_hot_units_take_one_walk_where_every_number_is_finite(logit, reduction, takes_one_walk, monkeypatch):
    """The one-walk path of the units (whole one-hot rows, reassociated sums) is taken on finite rows and left for the
    careful one where a row holds a non-finite logit; either way the units are the one-piece model's."""
    from xentcompat.reference import errors

    walks = []
    one_walk = errors._one_hot_rows
    monkeypatch.setattr(errors, "_one_hot_rows", lambda *args: walks.append(one_walk(*args)) or walks[-1])
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((6, 40))
    logits[2, 7] = logit
    problem = make_problem(logits, rng.integers(0, 40, 6), options=Options(reduction=reduction))
    new, old = solve(problem), frozen_solve(problem)
    for dtype in ("float16", "float32"):
        np.testing.assert_allclose(loss_unit(problem, new, dtype), frozen_loss_unit(problem, old, dtype),
                                   rtol=16 * 2.0**-52, atol=0)
        np.testing.assert_allclose(grad_units(problem, new, dtype).row, frozen_grad_units(problem, old, dtype)[0],
                                   rtol=16 * 2.0**-52, atol=0)
    assert walks == [takes_one_walk] * 2  # one walk per dtype: the loss and gradient units share it
