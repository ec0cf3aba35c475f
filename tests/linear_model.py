"""Linear cross-entropy implementations in numpy, evaluated in a given dtype, to calibrate `linear_errors`.

Correct ones: `materialised` (z = h @ W.T accumulated in the accumulator and stored in the dtype, the stable fused
loss of `fused_model` on it, then G @ W and G.T @ h accumulated in the accumulator and rounded), and `kept_logits`
(the same with the logits and G kept in the accumulator, as a fused kernel with float32 buffers does). Defects:
`logits_accumulated_in_dtype` (a 16-bit matmul that adds in its own dtype), `logits_from_bfloat16` (float32 or
float64 operands rounded to bfloat16 before the matmul), `hidden_grad_accumulated_in_dtype` (G @ W summed over V in
the 16-bit dtype) and `weight_grad_of_the_sum` (the weight gradient of the summed loss where the mean is due).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tests.fused_model import ACCUMULATOR, fused
from xentcompat.reference.dtypes import round_to
from xentcompat.reference.linear_xent import LinearProblem
from xentcompat.reference.options import Problem


def materialised(problem: LinearProblem, dtype: str):
    """(loss, dL/dh, dL/dW): the logits rounded to `dtype`, as `cross_entropy(h @ W.T, y)` computes them."""
    z = round_to(_matmul(problem.hidden, problem.weight.T, dtype), dtype)
    return _from_logits(problem, dtype, z if problem.bias is None else round_to(z + problem.bias, dtype))


def kept_logits(problem: LinearProblem, dtype: str):
    """(loss, dL/dh, dL/dW) with the logits, the softmax and G in the accumulator; only the outputs rounded."""
    accumulator = ACCUMULATOR[dtype]
    z = _matmul(problem.hidden, problem.weight.T, dtype)
    z = z if problem.bias is None else round_to(z + problem.bias, accumulator)
    loss, grad = fused(Problem(z, problem.labels, None, problem.options), accumulator)
    return (round_to(loss, dtype), round_to(_matmul(grad, problem.weight, dtype), dtype),
            round_to(_matmul(grad.T, problem.hidden, dtype), dtype))


def logits_accumulated_in_dtype(problem: LinearProblem, dtype: str):
    """The logits summed over D in `dtype` itself, one rounding per product and per partial sum."""
    return _from_logits(problem, dtype, _sequential(problem.hidden, problem.weight.T, dtype))


def logits_from_bfloat16(problem: LinearProblem, dtype: str):
    """h and W rounded to bfloat16 before a float32 matmul, its logits rounded to bfloat16, the rest in `dtype`."""
    hidden, weight = round_to(problem.hidden, "bfloat16"), round_to(problem.weight, "bfloat16")
    z = round_to(_matmul(hidden, weight.T, "bfloat16"), "bfloat16")
    return _from_logits(problem, dtype, z)


def hidden_grad_accumulated_in_dtype(problem: LinearProblem, dtype: str):
    """As `materialised`, with G @ W summed over V in `dtype` itself."""
    loss, _, grad_weight = materialised(problem, dtype)
    z = round_to(_matmul(problem.hidden, problem.weight.T, dtype), dtype)
    _, grad = fused(Problem(z, problem.labels, None, problem.options), dtype)
    return loss, _sequential(grad, problem.weight, dtype), grad_weight


def weight_grad_of_the_sum(problem: LinearProblem, dtype: str):
    """As `materialised`, with the weight gradient of the summed loss: no 1 / D."""
    loss, grad_hidden, _ = materialised(problem, dtype)
    summed = replace(problem, options=replace(problem.options, reduction="sum"))
    _, _, grad_weight = materialised(summed, dtype)
    return loss, grad_hidden, grad_weight


def _from_logits(problem: LinearProblem, dtype: str, z: np.ndarray):
    """The fused loss of `fused_model` on logits z, then G @ W and G.T @ h accumulated and rounded to `dtype`."""
    loss, grad = fused(Problem(z, problem.labels, None, problem.options), dtype)
    return (loss, round_to(_matmul(grad, problem.weight, dtype), dtype),
            round_to(_matmul(grad.T, problem.hidden, dtype), dtype))


def _matmul(a: np.ndarray, b: np.ndarray, dtype: str) -> np.ndarray:
    """a @ b with float values accumulated in `dtype`'s accumulator (numpy's BLAS in float32 or float64)."""
    numpy_type = np.float64 if ACCUMULATOR[dtype] == "float64" else np.float32
    return (np.asarray(a, numpy_type) @ np.asarray(b, numpy_type)).astype(np.float64)


def _sequential(a: np.ndarray, b: np.ndarray, dtype: str) -> np.ndarray:
    """a @ b summed term by term in `dtype`: every product and every partial sum rounded to it."""
    total = np.zeros((a.shape[0], b.shape[1]))
    for k in range(a.shape[1]):
        total = round_to(total + round_to(np.outer(a[:, k], b[k]), dtype), dtype)
    return total
