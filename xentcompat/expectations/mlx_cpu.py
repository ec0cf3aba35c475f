"""What MLX's losses compute on the CPU, in numpy: mechanisms (see `mechanisms.py`) for the MLX entries of the causes,
so that a cell's outcomes, a user's own batch's included, come from its input.

MLX's CPU arithmetic, as its source and docstrings state it and its records show:

- every operation's result is rounded to the logits' dtype ("the CPU reduces in the dtype of the logits",
  `mlx.nn.losses.cross_entropy`'s docstring); a reduction accumulates in float32 (float64 for float64) and adds its
  terms in order, so over a large vocabulary the small terms after the largest round away;
- `exp` is a float32 polynomial for float64 too (ml-explore/mlx#3047): the argument rounded to float32, the result
  with float32's accuracy and range; a result below float32's smallest normal number is 0 (exp(-100) = 0 in float32
  and float64 alike);
- `mx.logsumexp` shifts by the row's max and adds it back; its kernel takes exp and sums in float32 for float16 and
  bfloat16 (the exps are not rounded to the dtype) and rounds the result to the dtype: +inf for a row holding +inf;
- `mx.softmax` (`precise=False`, the default) sums the row in the dtype itself: float16 and bfloat16 sums stop
  growing (a sum of ones stays at 2048 and 256).

The forms, each a function of the problem (logits rounded to the dtype) and the dtype, giving the loss and the
gradient with respect to the logits in float64:

- `mlx-cpu-cross-entropy`: `nn.losses.cross_entropy(x, y or q, weights=w[y], label_smoothing=a)`: s = x - max(x);
  logsumexp(s) - s[y], or - sum(s * q) for probability targets (0 * -inf = NaN at a masked class); with smoothing
  logsumexp(s) - (1 - a) score - a mean(s); times the row's weight. Its gradient is w (softmax - targets): the
  log-sum-exp counts once per row whatever the targets sum to.
- `mlx-cpu-fast-cross-entropy`: `mx.fast.cross_entropy(x, y)` on the CPU (its fallback): logsumexp(x) - x[y] on the
  raw logits in their dtype, then cast to float32.
- `mlx-cpu-x-minus-logsumexp`: `nn.losses.nll_loss(x - mx.logsumexp(x, keepdims=True), y)`.
- `mlx-cpu-log-of-softmax`: `nn.losses.nll_loss(mx.log(mx.softmax(x)), y)`: log's backward divides by the
  probability, 0 / 0 = NaN at a class whose probability is 0.
- `mlx-cpu-cross-entropy-of-softmax`: `nn.losses.cross_entropy(mx.softmax(x), y)`: the softmax applied twice.

A reduction of "mean" or "sum" is taken over the row losses in the dtype (the mean divides by the number of rows).
"""

from __future__ import annotations

from dataclasses import replace

import ml_dtypes
import numpy as np

from xentcompat.reference.dtypes import round_to
from xentcompat.reference.options import Problem, terms

Computed = tuple[np.ndarray, np.ndarray]
FLOAT32_TINY = float(np.finfo(np.float32).tiny)
NARROW = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


class _Arithmetic:
    """MLX's CPU arithmetic in one dtype, on float64 arrays holding the dtype's values."""

    def __init__(self, dtype: str):
        self.dtype = dtype

    def rounded(self, values) -> np.ndarray:
        return round_to(np.asarray(values, np.float64), self.dtype)

    def exp(self, values) -> np.ndarray:
        """float32's exp (of the argument rounded to float32), 0 below float32's smallest normal, in the dtype."""
        return self.rounded(self.exp_in_accumulator(values))

    def row_sum(self, values) -> np.ndarray:
        """Each row's sum in the accumulator (float64 for float64, else float32), its terms added in order."""
        values = np.asarray(values, np.float64)
        if self.dtype == "float64" or values.shape[1] == 0:
            return np.sum(values, axis=1, keepdims=True)
        with np.errstate(all="ignore"):
            return np.cumsum(values.astype(np.float32), axis=1, dtype=np.float32)[:, -1:].astype(np.float64)

    def row_sum_in_dtype(self, values) -> np.ndarray:
        """Each row's sum accumulated in the dtype itself (mx.softmax without `precise`), in order."""
        kind = NARROW.get(self.dtype)
        if kind is None:
            return self.row_sum(values)
        with np.errstate(all="ignore"):
            return np.cumsum(np.asarray(values).astype(kind), axis=1, dtype=kind)[:, -1:].astype(np.float64)

    def exp_in_accumulator(self, values) -> np.ndarray:
        """exp as a reduction computes it: float32's exp held in the accumulator, not rounded to the dtype (float64
        holds it exactly)."""
        with np.errstate(all="ignore"):
            found = np.exp(np.asarray(values, np.float64).astype(np.float32)).astype(np.float64)
        return np.where(found < FLOAT32_TINY, 0.0, found)

    def logsumexp(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """mx.logsumexp of each row (kept as a column; +inf for a row whose max is +inf) and its softmax. The CPU
        kernel reads a row into the accumulator type (float32 for float16 and bfloat16), takes exp and sums there,
        and rounds only the result to the dtype."""
        with np.errstate(all="ignore"):
            top = np.max(x, axis=1, keepdims=True)
            shift = np.where(np.isfinite(top), top, 0.0)
            value = self.rounded(np.log(self.row_sum(self.exp_in_accumulator(x - shift))) + shift)
            value = np.where(np.isposinf(top), np.inf, value)
            exps = self.exp(self.rounded(x - top))
            return value, self.rounded(exps / self.row_sum(exps))

    def softmax(self, x: np.ndarray) -> np.ndarray:
        """mx.softmax (`precise=False`)."""
        with np.errstate(all="ignore"):
            exps = self.exp(self.rounded(x - np.max(x, axis=1, keepdims=True)))
            return self.rounded(exps / self.row_sum_in_dtype(exps))

    def reduced(self, rows: np.ndarray, grad: np.ndarray, reduction: str) -> Computed:
        """The row losses reduced as asked, in the dtype; the gradient of that reduction."""
        if reduction == "none":
            return rows, grad
        with np.errstate(all="ignore"):
            total = self.rounded(np.sum(rows))
            if reduction == "sum":
                return np.float64(total), grad
            return np.float64(self.rounded(total / len(rows))), grad / len(rows)


def _at_labels(values: np.ndarray, problem: Problem) -> np.ndarray:
    return np.take_along_axis(values, problem.labels.reshape(-1, 1), axis=1)[:, 0]


def _row_weights(arith: _Arithmetic, problem: Problem) -> np.ndarray:
    if problem.options.weight is None or problem.labels is None:
        return np.ones(problem.logits.shape[0])
    return arith.rounded(np.asarray(problem.options.weight, np.float64)[problem.labels])


def cross_entropy_rows(problem: Problem, dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """nn.losses.cross_entropy's row losses (before the reduction), the softmax of its shifted logits, and each
    row's weight."""
    arith = _Arithmetic(dtype)
    x = arith.rounded(problem.logits)
    smoothing = problem.options.label_smoothing
    with np.errstate(all="ignore"):
        s = arith.rounded(x - np.max(x, axis=1, keepdims=True))
        lse, p = arith.logsumexp(s)
        if problem.probs is not None:
            score = arith.rounded(arith.row_sum(arith.rounded(s * arith.rounded(problem.probs)))[:, 0])
        else:
            score = _at_labels(s, problem)
        rows = arith.rounded(lse[:, 0] - arith.rounded((1.0 - smoothing) * score)) if smoothing else \
            arith.rounded(lse[:, 0] - score)
        if smoothing:
            mean = arith.rounded(arith.rounded(arith.row_sum(s)[:, 0]) / s.shape[1])
            rows = arith.rounded(rows + arith.rounded(-mean * smoothing))
        weights = _row_weights(arith, problem)
        return arith.rounded(rows * weights), p, weights


def cross_entropy(problem: Problem, dtype: str) -> Computed:
    rows, p, weights = cross_entropy_rows(problem, dtype)
    with np.errstate(all="ignore"):
        grad = weights[:, None] * p - terms(problem).coefficients
    return _Arithmetic(dtype).reduced(rows, grad, problem.options.reduction)


def fast_cross_entropy(problem: Problem, dtype: str) -> Computed:
    arith = _Arithmetic(dtype)
    x = arith.rounded(problem.logits)
    with np.errstate(all="ignore"):
        lse, p = arith.logsumexp(x)
        rows = round_to(arith.rounded(lse[:, 0] - _at_labels(x, problem)), "float32")
        grad = arith.rounded(p - terms(problem).coefficients)
    return _Arithmetic("float32").reduced(rows, grad, problem.options.reduction)


def x_minus_logsumexp(problem: Problem, dtype: str) -> Computed:
    arith = _Arithmetic(dtype)
    x = arith.rounded(problem.logits)
    with np.errstate(all="ignore"):
        lse, p = arith.logsumexp(x)
        rows = -_at_labels(arith.rounded(x - lse), problem)
        grad = p - terms(problem).coefficients
    return arith.reduced(rows, grad, problem.options.reduction)


def log_of_softmax(problem: Problem, dtype: str) -> Computed:
    arith = _Arithmetic(dtype)
    c = terms(problem).coefficients
    with np.errstate(all="ignore"):
        p = arith.softmax(arith.rounded(problem.logits))
        rows = -_at_labels(arith.rounded(np.log(p)), problem)
        upstream = np.where(c == 0, np.where(p == 0, np.nan, 0.0), arith.rounded(-c / p))  # log's backward: g / p
        grad = arith.rounded(p * arith.rounded(upstream - arith.row_sum(arith.rounded(upstream * p))))
    return arith.reduced(rows, grad, problem.options.reduction)


def cross_entropy_of_softmax(problem: Problem, dtype: str) -> Computed:
    arith = _Arithmetic(dtype)
    p = arith.softmax(arith.rounded(problem.logits))
    loss, upstream = cross_entropy(replace(problem, logits=p), dtype)
    with np.errstate(all="ignore"):
        grad = arith.rounded(p * arith.rounded(upstream - arith.row_sum(arith.rounded(upstream * p))))
    return loss, grad


MLX_CPU = {
    "mlx-cpu-cross-entropy": cross_entropy,
    "mlx-cpu-fast-cross-entropy": fast_cross_entropy,
    "mlx-cpu-x-minus-logsumexp": x_minus_logsumexp,
    "mlx-cpu-log-of-softmax": log_of_softmax,
    "mlx-cpu-cross-entropy-of-softmax": cross_entropy_of_softmax,
}
