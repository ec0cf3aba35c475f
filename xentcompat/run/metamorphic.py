"""Metamorphic relations: properties of softmax cross-entropy that need no reference value at all.

For an API's result r(x) on a cell's input x (eager mode, valid input, a cell whose verdict is ok / ok: where the
API already deviates, the verdict is the finding):

* shift: r(x - m) = r(x), m the row's largest finite logit (x - m rounded to the dtype, as the API would see it);
* permute: the classes reversed (labels, probability targets and class weights alike) give the same loss and the
  gradient reversed;
* split: the batch cut in two gives the same loss once the halves are reduced the documented way (sums add; means
  recombine with their denominators; per-row losses concatenate) and the same gradient. A batch of an even number
  of rows runs each half as two copies of itself, so every call keeps the batch's shape (a framework that compiles
  a program per shape, as eager JAX does per operation, compiles none for the relation): the copies' sum is halved
  (exactly), their mean is the half's mean, their per-row losses and gradient rows are the first copy's (a mean's
  gradient doubled, exactly, since the copies double its denominator). A small odd batch (3 or 5 rows) is cut into
  single rows instead, each copied to the batch's size; the sum and mean of more than two equal terms round once
  more, which the comparison allows for.

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
from xentcompat.reference.dtypes import float_type, round_to
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
        failed = next((result for result in results if not isinstance(result, Returned)), None)
        if failed is not None:
            said = f"{getattr(failed, 'type', type(failed).__name__)}: {getattr(failed, 'message', '')}"[:160]
            found.append(Relation(name, False, _worst(original.loss), None, None, broke="no result",
                                  detail=f"the call on the transformed input did not return ({said})"))
            continue
        if api.no_gradient is not None:  # the relations then hold or break on the loss alone
            results = [replace(result, grad=np.zeros((len(problem.logits), 0)))
                       for problem, result in zip(calls, results)]
        loss, grad, slack = combine(results)
        found.append(_compare(name, original, loss, grad, loss_unit, grad_unit, slack))
    return found


def _skipped(name: str, original: Returned, shape: tuple[int, int]) -> Relation:
    reason = (f"not checked on a batch this big ({shape[0]} x {shape[1]}): the relation would copy the batch and call "
              f"the API on the copy again (batches over {big_batch_bytes() // 2**20} MiB as float64 skip it; "
              "XENTCOMPAT_BIG_BATCH_BYTES sets the size)")
    return Relation(name, None, _worst(original.loss), None, None, skipped=reason)


def _compare(name, original: Returned, loss, grad, loss_unit, grad_unit, slack) -> Relation:
    """The relation between the original result and the one it gives back: whether it holds, the largest difference
    in units, and which quantity broke with its worst element's two values (the loss alone from an API that offers
    no gradient)."""
    pairs = (("loss", np.asarray(original.loss, np.float64), np.asarray(loss, np.float64), loss_unit, slack),
             ("gradient", np.asarray(original.grad, np.float64), np.asarray(grad, np.float64), grad_unit, 0.0))
    pairs = pairs if original.grad is not None else pairs[:1]
    broken = [(q, a.shape, b.shape) for q, a, b, _, _ in pairs if a.shape != b.shape]
    if broken:
        quantity, before, after = broken[0]
        return Relation(name, False, _worst(original.loss), _worst(loss), None, broke=quantity,
                        detail=f"{quantity} of shape {after} for {before}")
    largest, broke, details = 0.0, [], []
    for quantity, a, b, unit, extra in pairs:
        units, detail = difference(a, b, unit, extra)
        largest = max(largest, units)
        if detail:
            broke.append(quantity)
            details.append(f"{quantity} {detail}")
    return Relation(name, not broke, _worst(original.loss), _worst(loss), largest,
                    broke=" and ".join(broke) or None, detail="; ".join(details) or None)


def difference(a: np.ndarray, b: np.ndarray, unit, extra) -> tuple[float, str | None]:
    """(the largest difference of finite pairs in units, the worst element that breaks the relation in words or
    None): an element breaks it when one of the two is not finite and they differ, or when they differ by more than
    twice the tolerance (plus `extra`, the shift's rounding) in units."""
    unit, extra = np.broadcast_to(unit, a.shape), np.broadcast_to(extra, a.shape)
    finite = np.isfinite(a) & np.isfinite(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        units = np.where(finite, np.abs(a - b) / unit, 0.0)
        allowed = 2 * TOLERANCE_UNITS + np.where(finite, extra / unit, 0.0)
    nonfinite = ~finite & ~((a == b) | (np.isnan(a) & np.isnan(b)))
    largest = float(np.max(units, initial=0.0))
    if np.any(nonfinite):
        at = np.unravel_index(int(np.argmax(nonfinite)), a.shape) if a.ndim else ()
        return largest, f"{_at(at)}{_value(a[at])} from the input, {_value(b[at])} from the transformed one"
    excess = np.where(finite, units - allowed, -np.inf)
    if a.size == 0 or not np.any(excess > 0):
        return largest, None
    at = np.unravel_index(int(np.argmax(excess)), a.shape) if a.ndim else ()
    return largest, (f"{_at(at)}{_value(a[at])} from the input, {_value(b[at])} from the transformed one "
                     f"({float(units[at]):.3g} units)")


def _at(index: tuple) -> str:
    return f"[{', '.join(str(int(i)) for i in index)}] " if index else ""


def _value(number) -> str:
    return f"{float(number):.6g}"


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


SMALL_ODD_BATCH = 5  # an odd batch up to this size is cut into single rows, each copied to the batch's size


def _split(problem: Problem, dtype: str):
    rows = problem.logits.shape[0]
    if rows < 2 or problem.options.extra_dims:
        return None
    slices, copies = _parts(rows)
    parts = [_rows(problem, part) for part in slices]
    denominators = [terms(part).denominator for part in parts]
    whole = terms(problem).denominator
    reduction = problem.options.reduction
    if reduction == "mean" and (whole == 0 or 0 in denominators):
        return None
    # more than two equal terms: their sum rounds once more in the result's dtype, and so does its division
    rounding = 2 * float_type(dtype).unit_roundoff if copies > 2 else 0.0

    def combine(results):
        losses, grads = zip(*(_first_copy(result, len(part.logits), copies, reduction)
                              for result, part in zip(results, parts)))
        if reduction == "none":
            return np.concatenate(losses), np.concatenate(grads), 0.0
        if reduction == "sum":
            return np.sum(losses), np.concatenate(grads), rounding * np.sum(np.abs(losses))
        weighted = [d * part_loss for d, part_loss in zip(denominators, losses)]
        grad = np.concatenate([part_grad * d for d, part_grad in zip(denominators, grads)]) / whole
        return sum(weighted) / whole, grad, rounding * sum(np.abs(weighted)) / abs(whole)

    return [_repeated(part, copies) for part in parts], combine


def _parts(rows: int) -> tuple[list[slice], int]:
    """The parts a batch of `rows` is cut into, and how many copies of each one call holds: two halves, two copies
    each, for an even batch; single rows, each copied `rows` times, for an odd batch of at most `SMALL_ODD_BATCH`
    rows (so every call has the batch's shape); two halves as they are for a larger odd batch."""
    if rows % 2 == 0:
        return [slice(0, rows // 2), slice(rows // 2, rows)], 2
    if rows <= SMALL_ODD_BATCH:
        return [slice(row, row + 1) for row in range(rows)], rows
    return [slice(0, rows // 2), slice(rows // 2, rows)], 1


def _first_copy(result: Returned, rows: int, copies: int, reduction: str) -> tuple[np.ndarray, np.ndarray]:
    """A part's own loss and gradient from the call on `copies` copies of it: the sum divided by the copies, the
    mean as it is (and its gradient times the copies), per-row values and gradient rows of the first copy."""
    loss, grad = np.asarray(result.loss, np.float64), np.asarray(result.grad, np.float64)[:rows]
    if reduction == "none":
        return loss[:rows], grad
    if reduction == "sum":
        return loss / copies, grad
    return loss, grad * copies


def _repeated(problem: Problem, copies: int) -> Problem:
    if copies == 1:
        return problem
    return Problem(np.concatenate([problem.logits] * copies),
                   None if problem.labels is None else np.concatenate([problem.labels] * copies),
                   None if problem.probs is None else np.concatenate([problem.probs] * copies), problem.options)


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
