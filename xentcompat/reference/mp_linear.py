"""Arbitrary-precision linear cross-entropy (mpmath), from the definition, to check `linear_xent` and to calibrate
`linear_errors`: z = h @ W.T (+ b) at `digits` digits (every float64 product and sum exact at 60 digits for the
cases here), then lse = log sum exp z, p = exp(z - lse), G = (sum c) p - c, dL/dh = G @ W, dL/dW = G.T @ h.
"""

from __future__ import annotations

import mpmath
import numpy as np

from xentcompat.reference.linear_xent import LinearProblem
from xentcompat.reference.mp_oracle import DIGITS, _reduce
from xentcompat.reference.options import terms


def mp_linear_cross_entropy(problem: LinearProblem, digits: int = DIGITS) -> tuple[object, np.ndarray, np.ndarray]:
    """(loss, dL/dh, dL/dW) as mpf values (object arrays; the loss an (N,) array for reduction none)."""
    with mpmath.workdps(digits):
        z = _mp_logits(problem)
        parts = terms(problem.logits_problem)
        rows = [_row(z[i], parts.coefficients[i]) if parts.counted[i] else (mpmath.mpf(0), [mpmath.mpf(0)] * len(z[i]))
                for i in range(len(z))]
        losses = np.array([loss for loss, _ in rows] + [None], dtype=object)[:-1]
        grads = np.array([grad for _, grad in rows], dtype=object).reshape(problem.logits.shape)
        loss, grad = _reduce(losses, grads, parts.denominator, problem.options.reduction)
        weight, hidden = _mp(problem.weight), _mp(problem.hidden)
        return loss, grad.dot(weight), grad.T.dot(hidden)


def _mp(values: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda v: mpmath.mpf(float(v)), otypes=[object])(values)


def _mp_logits(problem: LinearProblem) -> list[list]:
    hidden, weight = _mp(problem.hidden), _mp(problem.weight)
    z = hidden.dot(weight.T)
    if problem.bias is not None:
        z = z + _mp(problem.bias)
    return [list(row) for row in z]


def _row(z: list, c: np.ndarray):
    lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in z))
    cs = [mpmath.mpf(float(v)) for v in c]
    loss = mpmath.fsum(cj * (lse - zj) for cj, zj in zip(cs, z) if cj != 0)
    c_sum = mpmath.fsum(cs)
    return loss, [c_sum * mpmath.exp(zj - lse) - cj for zj, cj in zip(z, cs)]
