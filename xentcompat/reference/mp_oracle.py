"""Arbitrary-precision softmax cross-entropy (mpmath), straight from the definition, to check the float64 reference.

Deliberately naive: no shift, no log1p, just lse = log(sum exp x_j) and p_j = exp(x_j - lse) at `digits` digits,
with the same coefficient matrix as the reference (so options mean the same thing on both sides).
"""

from __future__ import annotations

import mpmath
import numpy as np

from xentcompat.reference.options import Problem, terms

DIGITS = 60


def mp_softmax_cross_entropy(problem: Problem, digits: int = DIGITS) -> tuple[object, np.ndarray]:
    """(loss, gradient) of a validated problem as mpf values; loss is an (N,) object array for reduction none."""
    with mpmath.workdps(digits):
        parts = terms(problem)
        rows = [
            _row(problem.logits[i], parts.coefficients[i]) if parts.counted[i] else _ignored(problem.num_classes)
            for i in range(problem.logits.shape[0])
        ]
        losses = np.array([loss for loss, _ in rows] + [None], dtype=object)[:-1]
        grads = np.array([grad for _, grad in rows], dtype=object).reshape(problem.logits.shape)
        return _reduce(losses, grads, parts.denominator, problem.options.reduction)


def _ignored(num_classes: int):
    return mpmath.mpf(0), [mpmath.mpf(0)] * num_classes


def _row(x: np.ndarray, c: np.ndarray):
    if any(np.isnan(x)) or any(x == np.inf) or all(x == -np.inf):
        return mpmath.nan, [mpmath.nan] * len(x)
    xs = [mpmath.mpf(float(v)) for v in x]
    lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in xs))
    cs = [mpmath.mpf(float(v)) for v in c]
    loss = mpmath.fsum(cj * (lse - xj) for cj, xj in zip(cs, xs) if cj != 0)
    p = [mpmath.exp(xj - lse) for xj in xs]
    c_sum = mpmath.fsum(cs)
    return loss, [c_sum * pj - cj for pj, cj in zip(p, cs)]


def _reduce(losses: np.ndarray, grads: np.ndarray, denominator: float, reduction: str):
    if reduction == "none":
        return losses, grads
    total = mpmath.fsum(losses)
    if reduction == "sum":
        return total, grads
    if denominator == 0:
        return mpmath.nan, grads * 0
    return total / denominator, grads / mpmath.mpf(denominator)


def to_float(values) -> np.ndarray:
    """mpf value(s) rounded to float64."""
    with np.errstate(invalid="ignore"):
        return np.vectorize(float, otypes=[np.float64])(np.asarray(values, dtype=object))
