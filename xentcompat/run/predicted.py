"""The outcomes an entry with a mechanism promises on one cell: the mechanism computed on the cell's input, judged
against the reference with the cell's own error model (see `expectations.mechanisms`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from xentcompat.expectations.mechanisms import MECHANISMS
from xentcompat.reference.coefficients import coefficients_of
from xentcompat.reference.compact import is_big, row_slices
from xentcompat.reference.dtypes import float_type
from xentcompat.reference.options import Problem, take_rows
from xentcompat.results.record import Outcome
from xentcompat.run.verdict import judge_grad, judge_loss, worst


def outcomes(mechanism: str, problem: object, truth: Callable[[], object]) -> tuple[str, str] | None:
    """The loss and gradient outcomes of `mechanism` on `problem`, judged as a framework's values are; None for
    input no mechanism is computed on: invalid input (no reference), linear cross-entropy."""
    if not isinstance(problem, Problem):
        return None
    known = truth()
    if known is None:
        return None
    largest = float_type(known.dtype).largest
    if is_big(problem.logits):
        loss, grad_outcome = _in_chunks(MECHANISMS[mechanism], problem, known, largest)
    else:
        loss, grad = MECHANISMS[mechanism](problem, known.dtype)
        grad_outcome = judge_grad(grad, known.result.grad, known.grad_units.row, largest).outcome
    loss_outcome = judge_loss(loss, known.result.loss, known.loss_unit, largest).outcome
    return str(Outcome(loss_outcome).value), str(Outcome(grad_outcome).value)


def _in_chunks(mechanism, problem: Problem, known, largest: float) -> tuple[np.ndarray, str]:
    """A big batch's mechanism row chunk by row chunk (float64 temporaries of one chunk): each chunk's row losses
    and gradient of their sum, the gradient divided by a mean's denominator and judged there; the loss reduced
    from the row losses of every chunk (in float64: a mechanism that sums in float32 is summed more exactly here)."""
    reduction = problem.options.reduction
    per_row = replace(problem, options=replace(problem.options, reduction="none"))
    denominator = coefficients_of(problem).denominator
    units = known.grad_units.row
    row_losses, grad_outcomes = [], []
    for rows in row_slices(problem.logits.shape):
        losses, grad = mechanism(take_rows(per_row, rows), known.dtype)
        if reduction == "mean":
            with np.errstate(all="ignore"):
                grad = grad / denominator
        unit = units[rows] if np.ndim(units) else units
        grad_outcomes.append(judge_grad(grad, known.result.grad[rows], unit, largest).outcome)
        row_losses.append(np.asarray(losses, np.float64))
    losses = np.concatenate(row_losses)
    with np.errstate(all="ignore"):
        loss = losses if reduction == "none" else np.sum(losses) / (denominator if reduction == "mean" else 1.0)
    return loss, worst(np.array([Outcome(outcome).value for outcome in grad_outcomes], dtype=object))
