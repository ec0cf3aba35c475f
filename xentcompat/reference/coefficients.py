"""The coefficient matrix c of `options.terms`, block by block, never built whole.

`options.terms` states what c is (N × C: the smoothed, weighted one-hot of a label, or the weighted, smoothed
probability target; 0 on ignored rows) and the mean's denominator D. Here the same numbers come out one block at a
time, with the same floating-point operations in the same order, so every block equals the matching block of
`terms(problem).coefficients` bit for bit. Class-index targets without smoothing are *one-hot*: a row's only non-zero
coefficient is `label_coefficient` at its label, and the passes never form a block of c at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xentcompat.reference.options import Problem, class_weights, counted_labels


@dataclass(frozen=True)
class Coefficients:
    """What the options reduce to, per row and per class, without the N × C matrix.

    `labels` are the class indices with ignored rows set to 0 (None for probability targets); `label_coefficient` is
    c at the label (0 on ignored rows); `smooth` is the smoothing part eps / C * w of every class-index row.
    """

    problem: Problem
    weight: np.ndarray
    counted: np.ndarray
    denominator: float
    labels: np.ndarray | None
    label_coefficient: np.ndarray | None
    smooth: np.ndarray

    @property
    def one_hot(self) -> bool:
        """Class-index targets whose only non-zero coefficient per row is the label's."""
        return self.labels is not None and not np.any(self.smooth)


def coefficients_of(problem: Problem) -> Coefficients:
    """The coefficients of a validated `problem` (weights and denominator from the same helpers as `options.terms`)."""
    n = problem.logits.shape[0]
    eps = problem.options.label_smoothing
    weight, smooth = class_weights(problem)
    if problem.probs is not None:
        return Coefficients(problem, weight, np.ones(n, dtype=bool), float(n), None, None, smooth)
    counted, safe_labels, denominator = counted_labels(problem, weight)
    at_label = np.where(counted, smooth[safe_labels] + (1.0 - eps) * weight[safe_labels], 0.0)
    return Coefficients(problem, weight, counted, denominator, safe_labels, at_label, smooth)


def coefficient_block(coefficients: Coefficients, rows: slice, cols: slice, out: np.ndarray | None = None):
    """c[rows, cols], into `out` (float64, of the block's shape) when given."""
    problem = coefficients.problem
    shape = (rows.stop - rows.start, cols.stop - cols.start)
    block = np.empty(shape) if out is None else out
    if problem.probs is not None:
        eps, num_classes = problem.options.label_smoothing, problem.num_classes
        np.multiply(problem.probs[rows, cols], 1.0 - eps, out=block)
        block += eps / num_classes
        block *= coefficients.weight[cols]
        return block
    block[:] = coefficients.smooth[cols]
    labels = coefficients.labels[rows]
    inside = np.flatnonzero((labels >= cols.start) & (labels < cols.stop))
    eps = problem.options.label_smoothing
    block[inside, labels[inside] - cols.start] += (1.0 - eps) * coefficients.weight[labels[inside]]
    block[~coefficients.counted[rows]] = 0.0
    return block


def largest_coefficient(coefficients: Coefficients) -> float:
    """An upper bound on max c (exact for class-index targets; for probability targets from the largest weight and
    the largest target, which rounding keeps above every c computed from them)."""
    problem = coefficients.problem
    if problem.probs is not None:
        if problem.probs.size == 0:
            return 0.0
        eps, num_classes = problem.options.label_smoothing, problem.num_classes
        return float(np.max(coefficients.weight)) * ((1.0 - eps) * float(np.max(problem.probs)) + eps / num_classes)
    largest_smooth = float(np.max(coefficients.smooth, initial=0.0))
    return max(float(np.max(coefficients.label_coefficient, initial=0.0)), largest_smooth)
