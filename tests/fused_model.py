"""Model implementations in numpy, evaluated in a given dtype, to calibrate and test the error model.

`fused` is the stable algorithm the fused framework kernels use (shift by the max, log-sum-exp, log-softmax),
every elementwise result rounded to the dtype and sums accumulated in float32 for the 16-bit types, as the
frameworks do. The defects the error model must flag: `log_of_softmax` (softmax first, then its log),
`unshifted_lse` (log p = x - lse with lse rounded at the logits' magnitude, as a log-sum-exp that is not kept
shifted does), `lse_one_ulp_high` (that lse one ulp too large) and `double_softmax` (softmax applied, then the
fused loss on its output: judged against the loss that was intended).
"""

from __future__ import annotations

import numpy as np

from xentcompat.reference.dtypes import float_type, round_to
from xentcompat.reference.options import Problem, terms

ACCUMULATOR = {"float16": "float32", "bfloat16": "float32", "float32": "float32", "float64": "float64"}


def fused(problem: Problem, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(loss, grad) via log-softmax = (x - m) - log(sum exp(x - m)), rounded to `dtype` step by step."""
    return _from_log_softmax(problem, dtype, _log_softmax(problem.logits, dtype))


def log_of_softmax(problem: Problem, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(loss, grad) via log(softmax(x)): -inf once a probability underflows the dtype."""
    r = _rounder(dtype)
    x = r(problem.logits)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        e = r(np.exp(r(x - np.max(x, axis=1, keepdims=True))))
        p = r(e / _acc(dtype)(np.sum(e, axis=1, keepdims=True)))
        return _from_log_softmax(problem, dtype, r(np.log(p)))


def unshifted_lse(problem: Problem, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(loss, grad) via log p = x - lse, lse = fl(m + log sum exp(x - m)) rounded to `dtype`."""
    return _from_log_softmax(problem, dtype, _log_softmax_unshifted(problem.logits, dtype, ulps=0))


def lse_one_ulp_high(problem: Problem, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(loss, grad) as `unshifted_lse`, with lse one ulp of `dtype` too large."""
    return _from_log_softmax(problem, dtype, _log_softmax_unshifted(problem.logits, dtype, ulps=1))


def double_softmax(problem: Problem, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(loss, grad wrt the logits) of the fused loss fed softmax(x): softmax as the last layer, then the loss."""
    r, acc = _rounder(dtype), _acc(dtype)
    x = r(problem.logits)
    e = r(np.exp(r(x - np.max(x, axis=1, keepdims=True))))
    p = r(e / acc(np.sum(e, axis=1, keepdims=True)))
    inner = Problem(p, problem.labels, problem.probs, problem.options)
    loss, grad_p = fused(inner, dtype)
    grad = r(p * (grad_p - np.sum(grad_p * p, axis=1, keepdims=True)))  # the softmax's backward
    return loss, grad


def _log_softmax_unshifted(x: np.ndarray, dtype: str, ulps: int) -> np.ndarray:
    r, acc = _rounder(dtype), _acc(dtype)
    numpy_type = float_type(dtype).numpy_type
    x = r(x)
    m = np.max(x, axis=1, keepdims=True)
    lse = r(m + r(np.log(acc(np.sum(acc(np.exp(r(x - m))), axis=1, keepdims=True)))))
    for _ in range(ulps):
        lse = np.nextafter(lse.astype(numpy_type), numpy_type(np.inf)).astype(np.float64)
    return r(x - lse)


def _from_log_softmax(problem: Problem, dtype: str, log_p: np.ndarray):
    r, acc = _rounder(dtype), _acc(dtype)
    parts = terms(problem)
    c = parts.coefficients
    with np.errstate(invalid="ignore", over="ignore"):
        row_losses = r(acc(-np.sum(np.where(c != 0, c * log_p, 0.0), axis=1)))
        p = r(np.exp(log_p))
        grad = r(np.sum(c, axis=1, keepdims=True) * p - c)
    reduction = problem.options.reduction
    if reduction == "none":
        return row_losses, grad
    total = acc(np.sum(row_losses))
    if reduction == "sum":
        return r(total), grad
    if parts.denominator == 0:
        return np.nan, grad * 0.0
    return r(total / parts.denominator), r(grad / parts.denominator)


def _log_softmax(x: np.ndarray, dtype: str) -> np.ndarray:
    r, acc = _rounder(dtype), _acc(dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        x = r(x)
        shifted = r(x - np.max(x, axis=1, keepdims=True))
        log_sum = r(np.log(acc(np.sum(acc(np.exp(shifted)), axis=1, keepdims=True))))
        return r(shifted - log_sum)


def _rounder(dtype: str):
    return lambda values: round_to(values, dtype)


def _acc(dtype: str):
    return lambda values: round_to(values, ACCUMULATOR[dtype])
