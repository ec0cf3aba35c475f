"""Error model: how far a correct implementation in a given dtype may land from the float64 reference.

Errors are measured in *units*: the dtype's unit roundoff u times the problem's own scale, so fp16 and fp32 errors
sit on one axis. A value passes when its error is at most `TOLERANCE_UNITS` units.

Loss of one row, l = sum_j c_j (lse - x_j). Rounding the inputs of each step to the dtype (x_j - m, the exps, their
sum of C terms, its log, the final sum) gives, to first order,

    |dl| <= u * scale_loss,    scale_loss = sum_j c_j * (|m| + |x_j| + log C + 1)     (finite x_j with c_j > 0)

— for a one-hot target exactly the textbook u * (|max x| + |x_y| + log C + 1). A sum over N rows adds the summation
term (N - 1) * sum_i |l_i| (any summation order), and the mean divides both by D.

Gradient element g_j = (sum c) p_j - c_j, with p_j = exp(x_j - lse): the rounding of x_j - lse is amplified by exp,
so

    |dg_j| <= u * ((sum c) * p_j * (|x_j| + |lse| + 1) + c_j),

scaled by 1/D for a mean. Neither unit is ever below the dtype's smallest normal (a result under it may be
flushed to zero).

`TOLERANCE_UNITS` is the one constant. It is calibrated against mpmath on hypothesis-drawn problems with the
stable algorithm of `tests/fused_model.py` evaluated in each dtype: the largest error seen there is below
`CALIBRATED_MAX_UNITS`, and the tolerance leaves a factor of four above it (`tests/test_error_model.py` re-measures
both and fails if the margin shrinks).
"""

from __future__ import annotations

import math

import numpy as np

from xentcompat.reference.dtypes import float_type
from xentcompat.reference.options import Problem, terms
from xentcompat.reference.softmax_xent import Result

CALIBRATED_MAX_UNITS = 3.0
TOLERANCE_UNITS = 4 * CALIBRATED_MAX_UNITS


def loss_unit(problem: Problem, reference: Result, dtype: str) -> float | np.ndarray:
    """One unit of loss error (u * scale) for `problem` in `dtype`: a float, or one per row for reduction none."""
    parts = terms(problem)
    u = float_type(dtype).unit_roundoff
    x = problem.logits
    finite = np.isfinite(x) & (parts.coefficients > 0)
    m = np.max(np.where(np.isfinite(x), x, -np.inf), axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    spread = np.abs(m) + np.abs(x) + math.log(problem.num_classes) + 1.0
    with np.errstate(invalid="ignore", over="ignore"):
        row_scale = np.sum(np.where(finite, parts.coefficients * spread, 0.0), axis=1)
    floor = float_type(dtype).smallest_normal
    reduction = problem.options.reduction
    if reduction == "none":
        return np.maximum(u * row_scale, floor)
    row_losses = np.where(np.isfinite(reference.row_losses), np.abs(reference.row_losses), 0.0)
    scale = float(np.sum(row_scale) + max(len(row_scale) - 1, 0) * np.sum(row_losses))
    if reduction == "mean" and parts.denominator > 0:
        scale /= parts.denominator
    return max(u * scale, floor)


def grad_unit(problem: Problem, reference: Result, dtype: str) -> np.ndarray:
    """One unit of gradient error per element (N × C) for `problem` in `dtype`."""
    parts = terms(problem)
    kind = float_type(dtype)
    c = parts.coefficients
    x = np.where(np.isfinite(problem.logits), np.abs(problem.logits), 0.0)
    lse = np.where(np.isfinite(reference.lse), np.abs(reference.lse), 0.0)[:, None]
    p = np.nan_to_num(reference.softmax, nan=0.0)
    scale = np.sum(c, axis=1, keepdims=True) * p * (x + lse + 1.0) + c
    if problem.options.reduction == "mean" and parts.denominator > 0:
        scale = scale / parts.denominator
    return np.maximum(kind.unit_roundoff * scale, kind.smallest_normal)
