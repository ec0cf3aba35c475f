"""Metamorphic relations: properties of softmax cross-entropy that need no reference value at all.

For an API's result r(x) on a cell's input x (eager mode, valid input, a cell whose verdict is ok / ok: where the
API already deviates, the verdict is the finding):

* shift: r(x - m) = r(x), m the row's largest finite logit (x - m rounded to the dtype, as the API would see it);
* permute: the classes reversed (labels, probability targets and class weights alike) give the same loss and the
  gradient reversed;
* split: the batch cut in two gives the same loss once the halves are reduced the documented way (sums add; means
  recombine with their denominators; per-row losses concatenate) and the same gradient.

Two correct results are each within `TOLERANCE_UNITS` units of the truth, so they differ by at most twice that; the
shift adds the rounding it makes to the logits (|delta| per logit moves a row loss by at most 2 |delta| sum c), and
is not tried where x - m leaves the dtype's range. A relation that breaks is a finding with both values: the API is
right on the cell's input and wrong on the transformed one. Non-finite results must match exactly.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from xentcompat.adapters.base import Call, LossApi, Returned, capture
from xentcompat.reference.compact import big_batch_bytes, is_big
from xentcompat.reference.dtypes import round_to
from xentcompat.reference.errors import TOLERANCE_UNITS
from xentcompat.reference.options import Problem, terms
from xentcompat.results.record import Relation


def check_relations(api: LossApi, call: Call, original: Returned, loss_unit, grad_unit) -> list[Relation]:
    """Every relation that applies to `call`, checked against the API's `original` result; on a big batch (see
    `reference.compact`) each is listed as skipped, with the reason."""
    if is_big(call.problem.logits):
        return [_skipped(name, original, call.problem.logits.shape) for name, _ in RELATIONS]
    found = []
    for name, build in RELATIONS:
        plan = build(call.problem, call.dtype)
        if plan is None:
            continue
        calls, combine = plan
        results = [capture(api, replace(call, problem=problem)) for problem in calls]
        if not all(isinstance(result, Returned) for result in results):
            found.append(Relation(name, False, _worst(original.loss), None, None))
            continue
        loss, grad, slack = combine(results)
        found.append(_compare(name, original, loss, grad, loss_unit, grad_unit, slack))
    return found


def _skipped(name: str, original: Returned, shape: tuple[int, int]) -> Relation:
    reason = (f"not checked on a batch this big ({shape[0]} x {shape[1]}): the relation would copy the batch and call "
              f"the API on the copy again (batches over {big_batch_bytes() // 2**20} MiB as float64 skip it; "
              "XENTCOMPAT_BIG_BATCH_BYTES sets the size)")
    return Relation(name, None, _worst(original.loss), None, None, skipped=reason)


def _compare(name, original: Returned, loss, grad, loss_unit, grad_unit, slack) -> Relation:
    pairs = ((np.asarray(original.loss, np.float64), np.asarray(loss, np.float64), loss_unit, slack),
             (np.asarray(original.grad, np.float64), np.asarray(grad, np.float64), grad_unit, 0.0))
    if any(a.shape != b.shape for a, b, _, _ in pairs):
        return Relation(name, False, _worst(original.loss), _worst(loss), None)
    holds, largest = True, 0.0
    for a, b, unit, extra in pairs:
        finite = np.isfinite(a) & np.isfinite(b)
        same_nonfinite = np.array_equal(np.where(finite, 0.0, a), np.where(finite, 0.0, b), equal_nan=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            units = np.where(finite, np.abs(a - b) / np.broadcast_to(unit, a.shape), 0.0)
            allowed = 2 * TOLERANCE_UNITS + np.where(finite, np.broadcast_to(extra, a.shape) /
                                                     np.broadcast_to(unit, a.shape), 0.0)
        holds = holds and same_nonfinite and bool(np.all(units <= allowed))
        largest = max(largest, float(np.max(units, initial=0.0)))
    return Relation(name, holds, _worst(original.loss), _worst(loss), largest)


def _shift(problem: Problem, dtype: str):
    x = problem.logits
    finite = np.isfinite(x)
    if not np.any(finite) or np.all(np.nanmax(np.where(finite, x, -np.inf), axis=1, initial=-np.inf) == 0.0):
        return None
    m = np.max(np.where(finite, x, -np.inf), axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(invalid="ignore"):
        shifted = np.where(finite, round_to(x - m, dtype), x)
        if np.any(finite & ~np.isfinite(shifted)):
            return None  # x - m is beyond the dtype's range: another problem, not the same one shifted
        delta = np.where(finite, np.abs(shifted - (x - m)), 0.0)
    slack = _row_slack(problem, delta)

    def combine(results):
        [result] = results
        return result.loss, result.grad, slack

    return [replace(problem, logits=shifted)], combine


def _row_slack(problem: Problem, delta: np.ndarray):
    """How far rounding the logits by `delta` may move the loss: 2 max|delta| sum c per row, reduced."""
    parts = terms(problem)
    rows = 2 * np.max(delta, axis=1, initial=0.0) * np.sum(parts.coefficients, axis=1)
    reduction = problem.options.reduction
    if reduction == "none":
        return rows
    total = float(np.sum(rows))
    return total / parts.denominator if reduction == "mean" and parts.denominator > 0 else total


def _permute(problem: Problem, dtype: str):
    num_classes = problem.logits.shape[1]
    ignore = problem.options.ignore_index
    if num_classes < 2 or (ignore is not None and 0 <= ignore < num_classes):
        return None
    options = problem.options
    weight = None if options.weight is None else tuple(reversed(options.weight))
    labels = None
    if problem.labels is not None:
        labels = np.where(problem.labels == ignore, problem.labels, num_classes - 1 - problem.labels) \
            if ignore is not None else num_classes - 1 - problem.labels
    permuted = Problem(problem.logits[:, ::-1].copy(), labels,
                       None if problem.probs is None else problem.probs[:, ::-1].copy(),
                       replace(options, weight=weight))

    def combine(results):
        [result] = results
        return result.loss, np.asarray(result.grad)[:, ::-1], 0.0

    return [permuted], combine


def _split(problem: Problem, dtype: str):
    rows = problem.logits.shape[0]
    if rows < 2 or problem.options.extra_dims:
        return None
    cut = rows // 2
    halves = [_rows(problem, slice(0, cut)), _rows(problem, slice(cut, rows))]
    denominators = [terms(half).denominator for half in halves]
    whole = terms(problem).denominator
    reduction = problem.options.reduction
    if reduction == "mean" and (whole == 0 or 0 in denominators):
        return None

    def combine(results):
        losses = [np.asarray(result.loss, np.float64) for result in results]
        grads = [np.asarray(result.grad, np.float64) for result in results]
        if reduction == "none":
            return np.concatenate(losses), np.concatenate(grads), 0.0
        if reduction == "sum":
            return losses[0] + losses[1], np.concatenate(grads), 0.0
        loss = (denominators[0] * losses[0] + denominators[1] * losses[1]) / whole
        grad = np.concatenate([grads[0] * denominators[0], grads[1] * denominators[1]]) / whole
        return loss, grad, 0.0

    return halves, combine


def _rows(problem: Problem, rows: slice) -> Problem:
    return Problem(problem.logits[rows], None if problem.labels is None else problem.labels[rows],
                   None if problem.probs is None else problem.probs[rows], problem.options)


def _worst(loss) -> float | None:
    values = np.asarray(loss, np.float64).ravel()
    if values.size == 0:
        return None
    finite = values[np.isfinite(values)]
    return float(values[0]) if values.size == 1 else (float(np.max(finite)) if finite.size else float(values[0]))


RELATIONS = (("shift", _shift), ("permute", _permute), ("split", _split))
