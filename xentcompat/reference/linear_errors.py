"""The error model of linear cross-entropy: the matmul's rounding, carried through the loss and both gradients.

Units are absolute (u · scale, as in `errors`), u the dtype's unit roundoff and u_acc the accumulator's (float32 for
float16 and bfloat16, else the dtype). A sum of n products accumulated with roundings of u_acc is off by at most
gamma_n sum |terms|, gamma_n = n u_acc / (1 - n u_acc) (Higham, Accuracy and Stability, 3.1); its result is then
rounded to the dtype once more (u |result|).

Logits. z = h @ W.T (+ b), computed correctly rounded per op in the dtype:

    |dz_ij| <= E_ij = gamma_D A_ij + u |z_ij| (+ u (|z_ij| + |b_j|) with a bias),   A = |h| @ |W|.T

Rounding z to the dtype (u |z|) is an error of a correct implementation (a materialised `h @ W.T` stores its logits in
the dtype); it is not shift-invariant, so a fused kernel that computes lse - z_y with lse rounded at the logits'
magnitude is, here, within the bound: the defect the logits model flags is no defect once the logits are computed.

Loss. With G = dL/dz and the coefficients c (see `options`; / D for a mean), to first order
dL = sum_ij G_ij dz_ij, and |G_ij| <= K_ij = (sum_l c_il) p_ij + c_ij, so

    |dL| <= sum_ij K_ij E_ij + loss_unit(z)

(per row for reduction none; for one-hot rows K = p + [j = y], the sum_j p_j |dz_j| + |dz_y| of the derivation), where
loss_unit(z) is the softmax cross-entropy's own unit on the logits (`errors.loss_unit`).

Gradients. G itself is off by the softmax model's element unit g_ij (`errors.grad_units(...).element`, without its
smallest-normal floor: summed over V the floor would stand for 32k flushed elements), by |G_ij| itself where that is
below the smallest normal (flushed to zero), and by what the logits' error moves it:
dG_ij = (sum c_i) p_ij (dz_ij - sum_l p_il dz_il), so

    |dG_ij| <= F_ij = g_ij + [|G_ij| < smallest normal] |G_ij| + (sum_l c_il) p_ij (E_ij + sum_l p_il E_il)

Then dL/dh = G @ W and dL/dW = G.T @ h, each a sum over V (resp. N) accumulated in u_acc and rounded to the dtype:

    |d(dL/dh)| <= F @ |W| + gamma_V |G| @ |W| + u |G @ W|
    |d(dL/dW)| <= F.T @ |h| + gamma_N |G|.T @ |h| + u |G.T @ h|

Each gradient is judged row-wise, as the logits' gradient is: every element of a row (one token's hidden state, one
class's weight row) against the row's largest unit, never below the dtype's smallest normal. The same
`TOLERANCE_UNITS` holds: `tests/linear_calibration.py` measures a correct implementation (logits rounded to the
dtype, or kept in the accumulator) against mpmath and the defects this model must flag (the logits accumulated in a
16-bit dtype, float32 logits computed from bfloat16-rounded operands, dL/dh accumulated in the 16-bit dtype over V,
the weight gradient of the sum where the mean is due).

The arrays are whole (N × V), not streamed: the linear cases are small enough (N V at most a few million).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xentcompat.reference.dtypes import float_type
from xentcompat.reference.errors import ACCUMULATOR, grad_units, loss_unit
from xentcompat.reference.linear_xent import LinearProblem, LinearResult
from xentcompat.reference.options import terms


@dataclass(frozen=True)
class LinearUnits:
    """Units of error: the loss's (a float, or (N,) for reduction none), and per row for dL/dh (N × 1) and dL/dW
    (V × 1); `row` is the one of the gradient the problem's cells judge (`LinearProblem.wrt`)."""

    loss: float | np.ndarray
    hidden: np.ndarray
    weight: np.ndarray
    wrt: str = "hidden"

    @property
    def row(self) -> np.ndarray:
        return self.weight if self.wrt == "weight" else self.hidden


def gamma(count: int, dtype: str) -> float:
    """gamma_n of a sum of `count` products accumulated in `dtype`'s accumulator."""
    u_acc = float_type(ACCUMULATOR[dtype]).unit_roundoff
    n = max(int(count), 1)
    return n * u_acc / (1.0 - n * u_acc)


def logit_errors(problem: LinearProblem, dtype: str) -> np.ndarray:
    """E (N × V): how far correctly rounded-per-op logits of `dtype` may be from z."""
    u = float_type(dtype).unit_roundoff
    magnitude = np.abs(problem.hidden) @ np.abs(problem.weight).T
    z = np.abs(problem.logits)
    errors = gamma(problem.hidden.shape[1], dtype) * magnitude + u * z
    if problem.bias is not None:
        errors += u * (z + np.abs(problem.bias))
    return errors


def linear_units(problem: LinearProblem, reference: LinearResult, dtype: str) -> LinearUnits:
    """The units of the loss and of both gradients (see the module docstring)."""
    kind = float_type(dtype)
    logits_problem, softmax = problem.logits_problem, reference.logits
    errors = logit_errors(problem, dtype)
    p = np.nan_to_num(softmax.softmax, nan=0.0)
    c, c_sum = _coefficients(problem)
    loss = _loss_units(problem, errors, c_sum * p + c) + loss_unit(logits_problem, softmax, dtype)
    element = np.nan_to_num(grad_units(logits_problem, softmax, dtype, floor=False).element, nan=0.0, posinf=0.0)
    moved = c_sum * p * (errors + np.sum(p * errors, axis=1, keepdims=True))
    grad = np.nan_to_num(np.abs(softmax.grad), nan=0.0)
    spread = element + moved + np.where(grad < kind.smallest_normal, grad, 0.0)
    n, d = problem.hidden.shape
    hidden = _product_units(spread, grad, np.abs(problem.weight), reference.grad_hidden, gamma(problem.num_classes,
                                                                                            dtype), kind)
    weight = _product_units(spread.T, grad.T, np.abs(problem.hidden), reference.grad_weight, gamma(n, dtype), kind)
    return LinearUnits(loss, hidden, weight, problem.wrt)


def _coefficients(problem: LinearProblem) -> tuple[np.ndarray, np.ndarray]:
    """c (N × V) and each row's sum (N × 1), divided by a mean's denominator (dL/dz's scale)."""
    parts = terms(problem.logits_problem)
    c = parts.coefficients
    if problem.options.reduction == "mean" and parts.denominator > 0:
        c = c / parts.denominator
    return c, np.sum(c, axis=1, keepdims=True)


def _loss_units(problem: LinearProblem, errors: np.ndarray, bound: np.ndarray) -> float | np.ndarray:
    """sum_j K_ij E_ij per row (reduction none), else summed over the rows."""
    rows = np.sum(bound * errors, axis=1)
    return rows if problem.options.reduction == "none" else float(np.sum(rows))


def _product_units(spread: np.ndarray, grad: np.ndarray, other: np.ndarray, product: np.ndarray, gamma_n: float,
                   kind) -> np.ndarray:
    """Row units of grad @ other: spread @ |other| + gamma_n |grad| @ |other| + u |product|, each row's largest."""
    units = spread @ other + gamma_n * (grad @ other) + kind.unit_roundoff * np.nan_to_num(np.abs(product))
    return np.maximum(np.max(units, axis=1, keepdims=True, initial=0.0), kind.smallest_normal)
