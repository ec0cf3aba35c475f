"""An independent mpmath oracle: each option as its documentation states it, sharing no code with the float64
reference (nor with `mp_oracle`) beyond reading the problem's fields.

From PyTorch's `CrossEntropyLoss` documentation, with p_n = softmax(x_n):

* the target distribution of a row is q_n = (1 - eps) * onehot(y_n) + eps / C for a class index y_n, and
  q_n = (1 - eps) * t_n + eps / C for a probability target t_n ("a mixture of the original ground truth and a
  uniform distribution");
* the row loss is l_n = -sum_c w_c * q_nc * log p_nc (w the class weights, 1 when none are given);
* a row whose label is `ignore_index` has l_n = 0 and does not count;
* `mean` divides sum_n l_n by sum_n w_{y_n} over counted rows for class indices ("weighted mean"), by the number of
  counted rows when the caller asks for a plain mean (`mean_over="rows"`, Keras' `sample_weight`), and by N for
  probability targets.

The gradient is not derived: it is mpmath's numerical derivative of that loss (`mpmath.diff`) at `digits` digits,
so the analytic p - q of the reference is checked, not assumed; a mean over nothing (no counted row, or a zero
total weight) is NaN with gradient 0 by convention (no row contributes). Finite logits only.
"""

from __future__ import annotations

import mpmath
import numpy as np

from xentcompat.reference.options import Problem

DIGITS = 50


def mp_documented(problem: Problem, digits: int = DIGITS) -> dict:
    """{"loss", "grad", "lse", "softmax"} of a problem with finite logits, as mpf values (loss: one per row for
    reduction none)."""
    with mpmath.workdps(digits):
        x = [[mpmath.mpf(float(v)) for v in row] for row in problem.logits]
        loss = _loss(problem, x)
        if problem.options.reduction == "mean" and mpmath.isnan(loss):
            grad = [[mpmath.mpf(0)] * len(row) for row in x]
        else:
            grad = [[_derivative(problem, x, i, k) for k in range(len(x[i]))] for i in range(len(x))]
        lse = [mpmath.log(mpmath.fsum(mpmath.exp(v) for v in row)) for row in x]
        softmax = [[mpmath.exp(v - lse[i]) for v in row] for i, row in enumerate(x)]
        return {"loss": loss, "grad": grad, "lse": lse, "softmax": softmax}


def _derivative(problem: Problem, x: list, i: int, k: int):
    def moved(h):
        shifted = [list(row) for row in x]
        shifted[i][k] = x[i][k] + h
        return _total(problem, shifted)

    return mpmath.diff(moved, mpmath.mpf(0))


def _total(problem: Problem, x: list):
    loss = _loss(problem, x)
    return mpmath.fsum(loss) if isinstance(loss, list) else loss


def _loss(problem: Problem, x: list):
    options = problem.options
    num_classes = len(x[0])
    weight = [mpmath.mpf(1)] * num_classes if options.weight is None else [mpmath.mpf(float(w)) for w in
                                                                            options.weight]
    eps = mpmath.mpf(float(options.label_smoothing))
    rows, counted, weight_of_targets = [], 0, mpmath.mpf(0)
    for n, logits in enumerate(x):
        if problem.labels is not None and options.ignore_index is not None \
                and int(problem.labels[n]) == options.ignore_index:
            rows.append(mpmath.mpf(0))
            continue
        target = _target(problem, n, num_classes, eps)
        log_p = _log_softmax(logits)
        rows.append(-mpmath.fsum(weight[c] * target[c] * log_p[c] for c in range(num_classes) if target[c] != 0))
        counted += 1
        if problem.labels is not None:
            weight_of_targets += weight[int(problem.labels[n])]
    if options.reduction == "none":
        return rows
    total = mpmath.fsum(rows)
    if options.reduction == "sum":
        return total
    if problem.probs is not None:
        denominator = mpmath.mpf(len(x))
    else:
        denominator = weight_of_targets if options.mean_over == "weight" else mpmath.mpf(counted)
    return total / denominator if denominator != 0 else mpmath.nan


def _target(problem: Problem, n: int, num_classes: int, eps) -> list:
    if problem.probs is not None:
        truth = [mpmath.mpf(float(t)) for t in problem.probs[n]]
    else:
        truth = [mpmath.mpf(1) if c == int(problem.labels[n]) else mpmath.mpf(0) for c in range(num_classes)]
    return [(1 - eps) * t + eps / num_classes for t in truth]


def _log_softmax(logits: list) -> list:
    log_sum = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in logits))
    return [v - log_sum for v in logits]


def as_float(values) -> np.ndarray:
    """mpf value(s), nested lists included, rounded to float64."""
    with np.errstate(invalid="ignore"):
        return np.vectorize(float, otypes=[np.float64])(np.array(values, dtype=object))
