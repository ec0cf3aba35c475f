"""The reference and the units a cell's verdict reads, for either kind of problem: the logits' softmax
cross-entropy (`softmax_xent`, `errors`) or linear cross-entropy (`linear_xent`, `linear_errors`), whose judged
gradient is the one its problem's `wrt` names."""

from __future__ import annotations

from xentcompat.reference import errors
from xentcompat.reference.errors import GradUnits
from xentcompat.reference.linear_errors import linear_units
from xentcompat.reference.linear_xent import LinearProblem, LinearResult, solve_linear
from xentcompat.reference.softmax_xent import solve as solve_logits


def solve(problem):
    """The reference result: `.loss` and the judged `.grad`."""
    return solve_linear(problem) if isinstance(problem, LinearProblem) else solve_logits(problem)


def loss_unit(problem, reference, dtype: str):
    if isinstance(problem, LinearProblem):
        return _linear_units(problem, reference, dtype).loss
    return errors.loss_unit(problem, reference, dtype)


def grad_units(problem, reference, dtype: str) -> GradUnits:
    """Row units of the judged gradient; a linear problem's element units are its row units (no finer model)."""
    if isinstance(problem, LinearProblem):
        row = _linear_units(problem, reference, dtype).row
        return GradUnits(row, lambda: row)
    return errors.grad_units(problem, reference, dtype)


def _linear_units(problem: LinearProblem, reference: LinearResult, dtype: str):
    """The problem's units in `dtype`, computed once for its loss and gradient verdicts."""
    return problem.remembered(("units", dtype), lambda: linear_units(problem, reference, dtype))


def has_relations(problem) -> bool:
    """Whether the metamorphic relations (row shift, class permutation, batch split of the logits) apply."""
    return not isinstance(problem, LinearProblem)


__all__ = ["LinearResult", "grad_units", "has_relations", "loss_unit", "solve"]
