"""Mechanisms an entry of a cause can name (`mechanism`), so that the outcomes of the cells it covers are computed
from each cell's input instead of listed case by case: a new case, or a user's own batch, that meets the mechanism
gets its outcomes without an edit to the cause.

A mechanism is what an API that works that way returns, written in numpy from the cell's input as the dtype holds
it: the loss and the gradient with respect to the logits, in float64. The run judges them against the reference
with the same error model as a framework's values (`run/predicted.py`); the outcomes it gets are the ones the entry
promises. Only valid input of logits (not linear cross-entropy) is
predicted: on any other cell an entry with a mechanism promises nothing. A big batch is computed row chunk by row
chunk (see `run/predicted.py`).

- `softmax-twice`: the loss is fed probabilities where it takes logits (a softmax layer before a loss that applies
  its own): the softmax, rounded to the dtype, becomes the logits of the exact loss; its gradient reaches the logits
  through the softmax's Jacobian, p * (g - sum(g * p)).
- `float32-arithmetic`: a float64 input computed in float32 (an API that casts to float32 first, Keras' floatx):
  the logits rounded to float32, the textbook stable log-softmax in float32 (x - max, log of the sum of exps), the
  loss summed and reduced in float32, the gradient sum(c) * p - c in float32 (c the targets' coefficients). Other
  dtypes: the exact loss (the cast changes nothing).
- `softmax-twice-in-float32`: `softmax-twice` of a float64 input computed in float32 (its logits, its softmax and
  its results rounded to float32).
- `clipped-probabilities`: a loss fed probabilities (the softmax in the cell's dtype) that computes in float32
  (Keras casts its inputs to floatx): each row divided by its sum, clipped to [1e-7, 1 - 1e-7], then the log, so a
  probability below 1e-7 caps its row's loss at -log(1e-7) = 16.1 with no gradient; the gradient goes back through
  the clip (0 where it clips) and the division in float32, reaches the softmax in the cell's dtype (where it may
  overflow: -1/p beyond float16's range) and goes through the softmax's Jacobian there.
- `mlx-cpu-*`: what MLX's losses compute on the CPU (`mlx_cpu.py`).
- `paddle-cpu`: what PaddlePaddle's losses compute on the CPU (`paddle_cpu.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from xentcompat.expectations.mlx_cpu import MLX_CPU
from xentcompat.expectations.paddle_cpu import PADDLE_CPU
from xentcompat.expectations.sklearn_log_loss import SKLEARN_LOG_LOSS
from xentcompat.reference.dtypes import round_to
from xentcompat.reference.options import Problem, options_in_dtype, terms
from xentcompat.reference.softmax_xent import solve

Computed = tuple[np.ndarray, np.ndarray]  # the loss (a scalar, or one per row) and the gradient, float64


def softmax_twice(problem: Problem, dtype: str) -> Computed:
    probabilities = round_to(_softmax(np.asarray(problem.logits, np.float64)), dtype)
    result = solve(replace(problem, logits=probabilities))
    with np.errstate(invalid="ignore", over="ignore"):
        grad = probabilities * (result.grad - np.sum(result.grad * probabilities, axis=1, keepdims=True))
    return np.asarray(result.loss, np.float64), grad


def float32_arithmetic(problem: Problem, dtype: str) -> Computed:
    if dtype != "float64":
        result = solve(problem)
        return np.asarray(result.loss, np.float64), result.grad
    f32 = np.float32
    x = np.asarray(problem.logits, np.float64).astype(f32)
    with np.errstate(all="ignore"):
        shifted = x - np.max(x, axis=1, keepdims=True)
        exps = np.exp(shifted)
        total = np.sum(exps, axis=1, keepdims=True, dtype=f32)
        log_p, p = shifted - np.log(total), exps / total
    coefficients = terms(_in_float32(problem))
    c = coefficients.coefficients
    with np.errstate(all="ignore"):
        row_losses = _float32(np.sum(np.where(c == 0, 0.0, c * -log_p.astype(np.float64)), axis=1))
        grad = np.sum(c, axis=1, keepdims=True) * p.astype(np.float64) - c
    grad[~coefficients.counted] = 0.0
    loss, grad = _reduced(row_losses, grad, problem.options.reduction, coefficients.denominator)
    return loss, _float32(grad)


def softmax_twice_in_float32(problem: Problem, dtype: str) -> Computed:
    if dtype != "float64":
        return softmax_twice(problem, dtype)
    loss, grad = softmax_twice(_in_float32(problem), "float32")
    return round_to(np.asarray(loss, np.float64), "float32"), round_to(grad, "float32")


EPSILON = 1e-7  # keras.config.epsilon()


def clipped_probabilities(problem: Problem, dtype: str) -> Computed:
    p = round_to(_softmax(np.asarray(problem.logits, np.float64)), dtype)
    held = _float32(p)
    coefficients = terms(_in_float32(problem) if dtype == "float64" else problem)
    c = coefficients.coefficients
    with np.errstate(all="ignore"):
        total = _float32(np.sum(held, axis=1, keepdims=True))
        q = _float32(held / total)
        low, high = _float32(np.float64(EPSILON)), _float32(np.float64(1.0 - EPSILON))
        clipped = np.clip(q, low, high)
        row_losses = _float32(np.sum(np.where(c == 0, 0.0, c * -_float32(np.log(clipped))), axis=1))
        g_q = np.where((q >= low) & (q <= high), -c / clipped, 0.0)
        g_q[~coefficients.counted] = 0.0
        loss, g_q = _reduced(row_losses, g_q, problem.options.reduction, coefficients.denominator)
        g_p = round_to(_float32((g_q - np.sum(g_q * q, axis=1, keepdims=True)) / total), dtype)
        grad = round_to(p * (g_p - np.sum(g_p * p, axis=1, keepdims=True)), dtype)
    return loss, grad


def _reduced(row_losses: np.ndarray, grad: np.ndarray, reduction: str, denominator: float) -> Computed:
    """The loss of float32 row losses reduced in float32, and the gradient divided by a mean's denominator."""
    if reduction == "none":
        return row_losses, grad
    with np.errstate(all="ignore"):
        total = np.sum(row_losses.astype(np.float32), dtype=np.float32)
        if reduction == "mean":
            return np.float64(total / np.float32(denominator)), grad / denominator
    return np.float64(total), grad


def _float32(values) -> np.ndarray:
    return round_to(np.asarray(values, np.float64), "float32")


def _in_float32(problem: Problem) -> Problem:
    probs = None if problem.probs is None else round_to(problem.probs, "float32")
    return replace(problem, logits=round_to(problem.logits, "float32"), probs=probs,
                   options=options_in_dtype(problem.options, "float32"))


def _softmax(x: np.ndarray) -> np.ndarray:
    """Each row's softmax (NaN where the row holds NaN or +inf, or is all -inf)."""
    with np.errstate(invalid="ignore", over="ignore"):
        exps = np.exp(x - np.max(x, axis=1, keepdims=True))
        return exps / np.sum(exps, axis=1, keepdims=True)


MECHANISMS: dict[str, Callable[[Problem, str], Computed]] = {
    "softmax-twice": softmax_twice,
    "float32-arithmetic": float32_arithmetic,
    "softmax-twice-in-float32": softmax_twice_in_float32,
    "clipped-probabilities": clipped_probabilities,
    **MLX_CPU,
    **PADDLE_CPU,
    **SKLEARN_LOG_LOSS,
}
