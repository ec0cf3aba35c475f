"""The outcomes an entry with a mechanism promises on one cell: the mechanism computed on the cell's input, judged
against the reference with the cell's own error model (see `expectations.mechanisms`)."""

from __future__ import annotations

from collections.abc import Callable

from xentcompat.expectations.mechanisms import MECHANISMS
from xentcompat.reference.compact import is_big
from xentcompat.reference.dtypes import float_type
from xentcompat.reference.options import Problem
from xentcompat.run.verdict import judge_grad, judge_loss


def outcomes(mechanism: str, problem: object, truth: Callable[[], object]) -> tuple[str, str] | None:
    """The loss and gradient outcomes of `mechanism` on `problem`, judged as a framework's values are; None for
    input no mechanism is computed on: invalid input (no reference), linear cross-entropy, a big batch."""
    if not isinstance(problem, Problem) or is_big(problem.logits):
        return None
    known = truth()
    if known is None:
        return None
    loss, grad = MECHANISMS[mechanism](problem, known.dtype)
    largest = float_type(known.dtype).largest
    loss_outcome = judge_loss(loss, known.result.loss, known.loss_unit, largest).outcome
    grad_outcome = judge_grad(grad, known.result.grad, known.grad_units.row, largest).outcome
    return str(loss_outcome.value), str(grad_outcome.value)
