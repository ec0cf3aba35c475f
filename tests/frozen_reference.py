"""The oracle of the oracle: the float64 reference and the error model's units as they were computed in one piece,
every N × C intermediate built whole, before they streamed over row chunks and class blocks.

Kept as it was (renamed, and reading float32 logits as float64) so that `tests/test_streaming.py` can hold the
streaming versions to it: the same numbers within a few float64 ulps, NaN and ±inf in exactly the same places.
Nothing in the package imports this module; `benchmarks/oracle.py --frozen` measures it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from xentcompat.reference.dtypes import float_type
from xentcompat.reference.options import Problem, Terms, terms

ACCUMULATOR = {"float16": "float32", "bfloat16": "float32", "float32": "float32", "float64": "float64"}


@dataclass(frozen=True)
class FrozenResult:
    loss: float | np.ndarray
    grad: np.ndarray
    row_losses: np.ndarray
    lse: np.ndarray
    softmax: np.ndarray


def frozen_solve(problem: Problem) -> FrozenResult:
    parts = terms(problem)
    rows = _rows(np.asarray(problem.logits, dtype=np.float64), parts)
    if problem.options.reduction == "mean" and parts.denominator > 0:
        mean = _reduce(_rows(np.asarray(problem.logits, dtype=np.float64), _mean_terms(parts)), _mean_terms(parts),
                       "mean")
        return replace(rows, loss=mean.loss, grad=mean.grad)
    return _reduce(rows, parts, problem.options.reduction)


def _rows(logits: np.ndarray, parts: Terms) -> FrozenResult:
    c = parts.coefficients
    x = np.where(parts.counted[:, None], logits, 0.0)
    undefined = np.any(np.isnan(x) | (x == np.inf), axis=1) | np.all(x == -np.inf, axis=1)
    x = np.where(undefined[:, None], 0.0, x)
    with np.errstate(over="ignore", invalid="ignore"):
        m = np.max(x, axis=1, keepdims=True)
        k = np.argmax(x, axis=1)
        shifted = m - x
        e = np.exp(-shifted)
        e_others = e.copy()
        e_others[np.arange(len(k)), k] = 0.0
        t = np.sum(e_others, axis=1, keepdims=True)
        s = 1.0 + t
        c_sum = np.sum(c, axis=1, keepdims=True)
        loss_terms = np.where(c > 0, c * shifted, 0.0)
        row_losses = np.sum(loss_terms, axis=1) + c_sum[:, 0] * np.log1p(t[:, 0])
        p = e / s
        one_minus_p = (s - e) / s
        one_minus_p[np.arange(len(k)), k] = t[:, 0] / s[:, 0]
        grads = (c_sum - c) * p - c * one_minus_p
        lse = m[:, 0] + np.log1p(t[:, 0])
    for values in (row_losses, grads, lse, p):
        values[undefined] = np.nan
    return FrozenResult(row_losses, grads, row_losses, lse, p)


def _reduce(rows: FrozenResult, parts: Terms, reduction: str) -> FrozenResult:
    if reduction == "none":
        return rows
    total = float(np.sum(rows.row_losses))
    if reduction == "sum":
        return replace(rows, loss=total)
    if parts.denominator == 0:
        return replace(rows, loss=float("nan"), grad=rows.grad * 0.0)
    return replace(rows, loss=total / parts.denominator, grad=rows.grad / parts.denominator)


def _mean_terms(parts: Terms) -> Terms:
    return replace(parts, coefficients=parts.coefficients / parts.denominator, denominator=1.0)


def frozen_loss_unit(problem: Problem, reference: FrozenResult, dtype: str) -> float | np.ndarray:
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


def frozen_grad_units(problem: Problem, reference: FrozenResult, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(row units N × 1, element units N × C)."""
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
    return row, element


def _accumulator_ratio(dtype: str) -> float:
    return float_type(ACCUMULATOR[dtype]).unit_roundoff / float_type(dtype).unit_roundoff


def _row_terms(problem: Problem, reference: FrozenResult, r: float):
    x = np.asarray(problem.logits, dtype=np.float64)
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
    if np.ndim(count) == 0:
        return math.ceil(math.log2(max(int(count), 1)))
    return np.ceil(np.log2(np.maximum(count, 1))).astype(np.float64)
