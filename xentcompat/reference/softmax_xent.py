"""Float64 softmax cross-entropy: loss and d(loss)/d(logits), every option, defined on non-finite logits.

For one row x with coefficients c (see `options`), k the (first) index of the max m, e_j = exp(x_j - m),
t = sum_{j != k} e_j and s = 1 + t:

    l = sum_j c_j * (m - x_j) + (sum_j c_j) * log1p(t)          (every term >= 0: no cancellation)
    dl/dx_j = (sum_c - c_j) * p_j - c_j * (1 - p_j),   p_j = e_j / s,   1 - p_j = (s - e_j) / s  (= t / s at k)

so a confident row keeps full relative accuracy in both loss and gradient (1 - p_k is never formed by subtraction).

Non-finite logits, row by row:
* a -inf logit has p = 0 and gradient 0 where its coefficient is 0 (0 * log 0 = 0); where its coefficient is > 0
  (the target is masked) the loss is +inf and the gradient stays finite (-c_j there);
* a row that is all -inf has no softmax (0 / 0): loss and gradient NaN;
* a row holding +inf or NaN: loss and gradient NaN (inf - inf in the shift). For a single +inf at a non-target the
  limit x_k -> +inf exists (loss +inf, gradient p - y with p one-hot at k), but +inf in a logit is an overflow,
  not a limit: the row's other logits no longer say anything, every stable implementation computes inf - inf there,
  and the convention here is the IEEE one, NaN. An API that returns the limit instead reads `inf`/`finite` and is
  a finding with its numbers, not silently ok;
* a row whose label is `ignore_index` contributes 0 and gradient 0, whatever its logits hold;
* a mean over nothing (every row ignored, or zero total weight) is NaN; its gradient is 0 (NaN in undefined rows).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from xentcompat.reference.options import Options, Problem, Terms, terms, validate


@dataclass(frozen=True)
class Result:
    """Loss (float for sum/mean, (N,) array for none), gradient (N × C), and per row: losses, lse and softmax."""

    loss: float | np.ndarray
    grad: np.ndarray
    row_losses: np.ndarray
    lse: np.ndarray
    softmax: np.ndarray


def softmax_cross_entropy(
    logits, labels=None, probs=None, options: Options = Options()
) -> Result:
    """The reference loss and gradient of `logits` against `labels` or `probs`; ValueError on invalid input."""
    problem = make_problem(logits, labels, probs, options)
    return solve(problem)


def make_problem(logits, labels=None, probs=None, options: Options = Options()) -> Problem:
    """A validated Problem from array-likes (ValueError naming what is wrong)."""
    problem = Problem(
        logits=np.asarray(logits, dtype=np.float64),
        labels=None if labels is None else np.asarray(labels),
        probs=None if probs is None else np.asarray(probs, dtype=np.float64),
        options=options,
    )
    validate(problem)
    return problem


def solve(problem: Problem) -> Result:
    """Loss and gradient of an already validated problem."""
    parts = terms(problem)
    rows = _rows(problem.logits, parts)
    if problem.options.reduction == "mean" and parts.denominator > 0:
        mean = _reduce(_rows(problem.logits, _mean_terms(parts)), _mean_terms(parts), "mean")
        return replace(rows, loss=mean.loss, grad=mean.grad)
    return _reduce(rows, parts, problem.options.reduction)


def _rows(logits: np.ndarray, parts: Terms) -> Result:
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
    return Result(row_losses, grads, row_losses, lse, p)


def _reduce(rows: Result, parts: Terms, reduction: str) -> Result:
    if reduction == "none":
        return rows
    total = float(np.sum(rows.row_losses))
    if reduction == "sum":
        return replace(rows, loss=total)
    if parts.denominator == 0:
        return replace(rows, loss=float("nan"), grad=rows.grad * 0.0)
    return replace(rows, loss=total / parts.denominator, grad=rows.grad / parts.denominator)


def _mean_terms(parts: Terms) -> Terms:
    """The coefficients already divided by the mean's denominator: with tiny class weights (w ~ 1e-300) the products
    c·p would otherwise pass through subnormals before the division and lose their digits."""
    return replace(parts, coefficients=parts.coefficients / parts.denominator, denominator=1.0)
