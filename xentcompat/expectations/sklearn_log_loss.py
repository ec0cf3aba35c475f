"""What `sklearn.metrics.log_loss(y, softmax(x), labels=range(C))` computes, in numpy: the mechanism
`sklearn-log-loss` (see `mechanisms.py`) for the scikit-learn entries of the causes, so that a cell's outcome, a
user's own batch's included, comes from its input.

scikit-learn 1.9's arithmetic, as its source states it (`utils/extmath.softmax`, `metrics/_classification.log_loss`):

- `softmax` subtracts each row's largest logit, exponentiates and divides by the row's sum, every step in the
  logits' dtype (float16 and bfloat16 included: numpy's pairwise sum in that dtype);
- `log_loss` validates the probabilities with `check_array`, which keeps float64, float32 and float16 and turns
  anything else (bfloat16) into float64, then clips them to [eps, 1 - eps], eps the machine epsilon of that dtype
  (2.2e-16, 1.2e-7, 9.8e-4): a target probability below eps counts as eps, so its row's loss is at most
  -log(eps) = 36.0, 15.9 and 6.9;
- each row's loss is -log of its clipped target probability in that dtype, and the rows are averaged by
  `np.average` (with `sample_weight` = w[y] where class weights are given); `normalize=False` sums them (w[y]
  times each), and the rows alone are the form of reduction "none".

No gradient (a metric): the mechanism's gradient is zeros, never judged (the cells' gradient is `absent`).
"""

from __future__ import annotations

import numpy as np

from xentcompat.reference.dtypes import float_type
from xentcompat.reference.options import Problem

Computed = tuple[np.ndarray, np.ndarray]
VALIDATED = frozenset({"float64", "float32", "float16"})  # the dtypes check_array keeps; others become float64


def sklearn_log_loss(problem: Problem, dtype: str) -> Computed:
    probabilities = _softmax(problem.logits, np.dtype(float_type(dtype).numpy_type))
    kept = probabilities.dtype if dtype in VALIDATED else np.dtype(np.float64)
    probabilities = probabilities.astype(kept)
    eps = np.finfo(kept).eps
    with np.errstate(all="ignore"):
        clipped = np.clip(probabilities, eps, 1 - eps)
        row_losses = -np.log(clipped[np.arange(len(problem.labels)), problem.labels])
        weights = None if problem.options.weight is None else np.asarray(problem.options.weight)[problem.labels]
        loss = _reduced(row_losses, weights, problem.options.reduction)
    return np.asarray(loss, np.float64), np.zeros(problem.logits.shape)


def _reduced(row_losses: np.ndarray, weights: np.ndarray | None, reduction: str):
    if reduction == "none":
        return row_losses.astype(np.float64) * (1.0 if weights is None else weights)
    if reduction == "sum":
        return np.dot(row_losses, weights) if weights is not None else np.sum(row_losses)
    return np.average(row_losses, weights=weights)


def _softmax(logits: np.ndarray, dtype: np.dtype) -> np.ndarray:
    x = np.asarray(logits, np.float64).astype(dtype)
    with np.errstate(all="ignore"):
        x = x - np.max(x, axis=1, keepdims=True)
        e = np.exp(x)
        return e / np.sum(e, axis=1, keepdims=True)


SKLEARN_LOG_LOSS = {"sklearn-log-loss": sklearn_log_loss}
