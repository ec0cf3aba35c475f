"""What PaddlePaddle's losses compute on the CPU, in numpy: the mechanism `paddle-cpu` (see `mechanisms.py`) for the
Paddle entries of the causes, so that a cell's outcomes, a user's own batch's included, come from its input.

Paddle 3.3.1's arithmetic, as its source states it (`paddle/nn/functional/loss.py`, `phi/kernels/funcs/softmax_impl.h`)
and its records show:

- softmax, log_softmax and the fused `cross_entropy` clip a logit's distance below its row's largest at -64
  (`ValueClip`, kThreshold = -64): a log-probability is never below -64 - log(sum), a probability never below
  e^-64 / sum, a -inf logit included;
- `label_smoothing` one-hots the labels and smooths them in float32 (`one_hot` gives float32), then casts the
  targets to the logits' dtype: in float64 the weights 1 - a + a/C and a/C carry float32's rounding;
- soft targets (`soft_label=True`, smoothing included) get the gradient softmax - q, which assumes each row sums to 1;
- reduction "mean" divides by the weights of the counted labels when class weights are given, by the count of
  labels other than `ignore_index` when `ignore_index` >= 0, and by every row otherwise (the default
  ignore_index = -100 included); a denominator of 0 becomes 1, so a mean over nothing is 0.

The hand-written forms (`nll_loss(log_softmax(x))`, `nll_loss(log(softmax(x)))`) are the same arithmetic with the
user's `.mean()` over every row. Everything is computed in float64 from the logits as the dtype holds them; the run
judges the result with the cell dtype's error model.
"""

from __future__ import annotations

import numpy as np

from xentcompat.reference.options import Problem

Computed = tuple[np.ndarray, np.ndarray]
CLIP = -64.0


def paddle_cpu(problem: Problem, dtype: str) -> Computed:
    x = np.asarray(problem.logits, np.float64)
    log_p, p = _clipped_log_softmax(x)
    targets, row_weight, counted = _targets(problem, dtype, x.shape)
    with np.errstate(all="ignore"):
        row_losses = -np.sum(np.where(targets == 0, 0.0, targets * log_p), axis=1) * row_weight
        grad = (p - targets) * row_weight[:, None]
    row_losses = np.where(counted, row_losses, 0.0)
    grad[~counted] = 0.0
    reduction = problem.options.reduction
    if reduction == "none":
        return row_losses, grad
    denominator = _denominator(problem, row_weight, counted) if reduction == "mean" else 1.0
    with np.errstate(all="ignore"):
        return np.asarray(np.sum(row_losses) / denominator), grad / denominator


def _clipped_log_softmax(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(all="ignore"):
        shifted = np.maximum(x - np.max(x, axis=1, keepdims=True), CLIP)
        total = np.sum(np.exp(shifted), axis=1, keepdims=True)
        return shifted - np.log(total), np.exp(shifted) / total


def _targets(problem: Problem, dtype: str, shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The target rows (one-hot, smoothed or the probabilities), each row's class weight and which rows count."""
    options = problem.options
    if problem.probs is not None:
        probs = np.asarray(problem.probs, np.float64)
        if options.label_smoothing:  # label_smooth in the targets' dtype, its epsilon a float32
            smoothing = float(np.float32(options.label_smoothing))
            probs = (1.0 - smoothing) * probs + smoothing / shape[1]
        return probs, np.ones(shape[0]), np.ones(shape[0], bool)
    labels = np.asarray(problem.labels).astype(np.int64)
    counted = labels != options.ignore_index if options.ignore_index is not None else np.ones(labels.shape, bool)
    safe = np.where(counted, labels, 0)
    targets = np.zeros(shape)
    targets[np.arange(shape[0]), safe] = 1.0
    if options.label_smoothing:
        targets = _smoothed_in_float32(targets, options.label_smoothing)
    weight = np.ones(shape[1]) if options.weight is None else np.asarray(options.weight, np.float64)
    return targets, np.where(counted, weight[safe], 0.0), counted


def _smoothed_in_float32(one_hot: np.ndarray, smoothing: float) -> np.ndarray:
    f32 = np.float32
    smoothed = (f32(1.0) - f32(smoothing)) * one_hot.astype(f32) + f32(smoothing) / f32(one_hot.shape[1])
    return smoothed.astype(np.float64)


def _denominator(problem: Problem, row_weight: np.ndarray, counted: np.ndarray) -> float:
    options = problem.options
    if problem.probs is not None or options.label_smoothing:
        return float(row_weight.size)  # the soft-label path's mean_all (an empty batch: 0 / 0 = NaN)
    if options.weight is not None:
        total = float(np.sum(row_weight[counted]))
    elif options.ignore_index is not None and options.ignore_index >= 0:
        total = float(np.sum(counted))
    else:
        return float(row_weight.size)
    return total if total != 0 else 1.0


PADDLE_CPU = {"paddle-cpu": paddle_cpu}
