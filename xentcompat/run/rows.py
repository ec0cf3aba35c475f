"""A mean or a sum judged row by row: an error in one row shrinks by the count in the mean, so a kernel wrong on
one row of eight by 6 units moves the mean by less than one, and a NaN row makes the mean NaN, as the reference's is,
whatever the other rows hold. Where the API gives per-row losses itself (`reduction="none"`, or the per-position
losses the JAX and tf.nn APIs return before the user's `.mean()`), an eager cell of valid input whose reduced loss
is right is called again for its rows, and each row is judged against the reference's row with that row's own unit
(not a big batch, see `reference.compact`: the second call would hold the batch twice).

The rows are a judgement of their own, `loss.rows` in the record (how many rows, the worst one and its numbers): the
loss's outcome stays the reduced loss's, which every mode and device measures and a cause's outcomes describe (a
compiled cell is not called again: a second program per cell). The report lists every cell whose reduced loss is
right and a row is not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from xentcompat.adapters.base import Call, LossApi, Returned, capture
from xentcompat.reference.compact import is_big
from xentcompat.reference.dtypes import float_type
from xentcompat.reference.judging import loss_unit, solve
from xentcompat.run.verdict import judge_rows

REDUCED = ("mean", "sum")
RowTruth = tuple  # (the reference's per-row losses, their unit)


def per_row_call(api: LossApi, call: Call) -> Call | None:
    """The same call with `reduction="none"`, where the call reduces and the API offers per-row losses."""
    options = call.problem.options
    if options.reduction not in REDUCED or is_big(call.problem.logits):
        return None
    rows = replace(options, reduction="none")
    if not api.applies_to(rows):
        return None
    return replace(call, problem=replace(call.problem, options=rows))


def check_rows(api: LossApi, call: Call, truth: Callable[[object, str], RowTruth] | None = None) -> dict | None:
    """The per-row judgement of `call` (see the module docstring), or None where the API gives no rows for it (it
    reduces only, or the per-row call did not return rows of the batch's count). `truth(problem, dtype)` gives the
    per-row problem's reference losses and unit (a caller keeps them for every API reading the same problem); by default
    they are computed here."""
    per_row = per_row_call(api, call)
    if per_row is None:
        return None
    result = capture(api, per_row)
    if not isinstance(result, Returned):
        return None
    reference, unit = (truth or row_truth)(per_row.problem, call.dtype)
    if np.shape(result.loss) != np.shape(reference):
        return None
    verdict, row = judge_rows(result.loss, reference, unit, float_type(call.dtype).largest)
    return {"outcome": str(verdict.outcome), "rows": int(np.size(reference)), "row": row,
            "value": verdict.value, "reference": verdict.reference, "error_units": verdict.error_units}


def row_truth(problem, dtype: str) -> RowTruth:
    """The reference's per-row losses of a `reduction="none"` problem and their unit in `dtype`."""
    reference = solve(problem)
    return reference.loss, loss_unit(problem, reference, dtype)
