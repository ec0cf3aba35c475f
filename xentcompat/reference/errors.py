"""Error model: how far a correct implementation in a given dtype may land from the float64 reference.

Errors are measured in *units*: the dtype's unit roundoff u times the problem's own scale, so fp16 and fp32 errors
sit on one axis. A value passes when its error is at most `TOLERANCE_UNITS` units.

Cross-entropy is invariant under adding a constant to a row, and a stable implementation is accurate relative to the
logit *differences*: the scale is built from d_j = x_j - m (m the row's largest finite logit), L = log sum_j e^{d_j}
(0 <= L <= log C) and the result itself, never from |x|. Elementwise steps round to the dtype (unit u); sums
accumulate in the accumulator dtype (float32 for float16/bfloat16, as the frameworks' reductions do; else the dtype
itself) with unit u_acc, and a tree reduction of K terms adds ceil(log2 K) roundings to the largest partial sum (the
bound of the pairwise/blocked sums frameworks use; r = u_acc / u below). To first order in u:

    d_j = fl(x_j - m)                 |err| <= u |d_j|
    s = sum_j fl(e^{d_j})             rel. err <= u (sum_j p_j (1 + |d_j|) + r ceil(log2 C))
    L = fl(log s)                     |err| <= u E_L,    E_L = sum_j p_j (1 + |d_j|) + r ceil(log2 C) + L
    log p_j = fl(d_j - L)             |err| <= u (|d_j| + E_L + |d_j - L|) <= u (2 |d_j| + L + E_L)

so for one row with coefficients c_j (see `options`: one-hot, smoothed, weighted or probability targets) and K of
them non-zero,

    l = -sum_j c_j log p_j,   scale_loss = sum_j c_j (2 |d_j| + L + E_L) + [K > 1] (1 + r ceil(log2 K)) |l|

(the last term: the sum over the K terms and the rounding of l to the dtype). A sum over N counted rows adds
r ceil(log2 N) sum_i |l_i| (a tree reduction, not the worst case N - 1 of a sequential one) and the rounding of the
result, |l_sum|; a mean divides the scale by D and adds the rounding of the quotient, |l_mean|.

Gradient element g_j = (sum c) p_j - c_j, with p_j = exp(log p_j): the error of log p_j becomes a relative error of
p_j, and the subtraction rounds once:

    |dg_j| <= u ((sum c) p_j (2 |d_j| + L + E_L + 1) + |g_j|);   a mean: (... + 2 |g_j|) / D, g_j before the
                                                                    division (the quotient rounds once more).

A row's gradient is judged norm-wise: every element against the row's largest unit, since that is the size of the
step that reaches training (on logits [40, 0, 0, 0] the non-target elements are 4e-18 against a target element of
-1: zero for them is no error). The element-wise units stay available (`grad_units`) as a detail. No unit is ever
below the dtype's smallest normal (a result under it may be flushed to zero).

`TOLERANCE_UNITS` is the one constant. `tests/test_error_model.py` calibrates it from both sides: the largest error of
the stable algorithm of `tests/fused_model.py`, evaluated step by step in each dtype against mpmath on adversarially
searched problems, stays below `CALIBRATED_MAX_UNITS` (and the tolerance is four times that), while every catalogued
defect (a loss computed as lse - x_y with lse rounded at the logits' magnitude, softmax applied twice, lse off by an
ulp, log of an underflowed softmax) lands at least four times above the tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xentcompat.reference.dtypes import float_type

ACCUMULATOR = {"float16": "float32", "bfloat16": "float32", "float32": "float32", "float64": "float64"}
from xentcompat.reference.options import Problem, terms
from xentcompat.reference.softmax_xent import Result

CALIBRATED_MAX_UNITS = 1.25
TOLERANCE_UNITS = 4 * CALIBRATED_MAX_UNITS


@dataclass(frozen=True)
class GradUnits:
    """Gradient units: per row (N × 1, the verdict's) and per element (N × C, a detail)."""

    row: np.ndarray
    element: np.ndarray


def loss_unit(problem: Problem, reference: Result, dtype: str) -> float | np.ndarray:
    """One unit of loss error (u * scale) for `problem` in `dtype`: a float, or one per row for reduction none."""
    kind, r = float_type(dtype), _accumulator_ratio(dtype)
    parts = terms(problem)
    c = parts.coefficients
    d, big_l, e_l, finite = _row_terms(problem, reference, r)
    row_losses = np.where(np.isfinite(reference.row_losses), np.abs(reference.row_losses), 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        per_class = np.where(finite & (c > 0), c * (2 * np.abs(d) + big_l + e_l), 0.0)
        nonzero = np.count_nonzero(c > 0, axis=1)
        summed = np.where(nonzero > 1, 1 + r * _log2_ceil(nonzero), 0.0)
        row_scale = np.sum(per_class, axis=1) + summed * row_losses
    row_scale = np.where(np.isfinite(row_scale), row_scale, 0.0)
    reduction = problem.options.reduction
    if reduction == "none":
        return np.maximum(kind.unit_roundoff * row_scale, kind.smallest_normal)
    counted = int(np.count_nonzero(parts.counted))
    loss = abs(float(reference.loss)) if np.isfinite(reference.loss) else 0.0
    scale = float(np.sum(row_scale) + r * _log2_ceil(max(counted, 1)) * np.sum(row_losses))
    if reduction == "mean" and parts.denominator > 0:
        scale = scale / parts.denominator
    return max(kind.unit_roundoff * (scale + loss), kind.smallest_normal)


def grad_units(problem: Problem, reference: Result, dtype: str) -> GradUnits:
    """Units of gradient error: each row's largest (the verdict's) and each element's (N × C)."""
    kind = float_type(dtype)
    parts = terms(problem)
    c = parts.coefficients
    d, big_l, e_l, finite = _row_terms(problem, reference, _accumulator_ratio(dtype))
    p = np.nan_to_num(reference.softmax, nan=0.0)
    mean = problem.options.reduction == "mean" and parts.denominator > 0
    g = np.where(np.isfinite(reference.grad), np.abs(reference.grad), 0.0) * (parts.denominator if mean else 1.0)
    with np.errstate(invalid="ignore", over="ignore"):
        spread = np.where(finite, 2 * np.abs(d) + big_l + e_l + 1.0, 0.0)
        scale = np.sum(c, axis=1, keepdims=True) * p * spread + (2 if mean else 1) * g
    scale = np.where(np.isfinite(scale), scale, 0.0)
    if mean:
        scale = scale / parts.denominator
    element = np.maximum(kind.unit_roundoff * scale, kind.smallest_normal)
    row = np.max(element, axis=1, keepdims=True, initial=kind.smallest_normal)
    return GradUnits(row, element)


def grad_unit(problem: Problem, reference: Result, dtype: str) -> np.ndarray:
    """One unit of gradient error per row (N × 1): the verdict judges every element of a row against it."""
    return grad_units(problem, reference, dtype).row


def _accumulator_ratio(dtype: str) -> float:
    """r = u_acc / u: how much a rounding in the accumulator weighs against one in the dtype."""
    return float_type(ACCUMULATOR[dtype]).unit_roundoff / float_type(dtype).unit_roundoff


def _row_terms(problem: Problem, reference: Result, r: float):
    """(d, L, E_L, finite): d_j = x_j - m (0 where x_j is not finite), L = lse - m and E_L per row (N × 1)."""
    x = problem.logits
    finite = np.isfinite(x)
    m = np.max(np.where(finite, x, -np.inf), axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    d = np.where(finite, x - m, 0.0)
    lse = reference.lse[:, None]
    big_l = np.where(np.isfinite(lse), np.maximum(lse - m, 0.0), 0.0)
    p = np.nan_to_num(reference.softmax, nan=0.0)
    classes = np.maximum(np.count_nonzero(finite, axis=1), 1)[:, None]
    e_l = np.sum(p * (1 + np.abs(d)), axis=1, keepdims=True) + r * _log2_ceil(classes) + big_l
    return d, big_l, e_l, finite


def _log2_ceil(count) -> np.ndarray | int:
    """ceil(log2 count) for counts >= 1 (0 for a single term)."""
    if np.ndim(count) == 0:
        return math.ceil(math.log2(max(int(count), 1)))
    return np.ceil(np.log2(np.maximum(count, 1))).astype(np.float64)
