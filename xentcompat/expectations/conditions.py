"""Conditions computed from a cell's input, so that a cause explains a user's own batch as it explains the
catalogue's cases: "the target's probability underflows to 0 in this dtype", not "case confident-wrong-gap100".

Each condition is a fact about the problem as the dtype sees it (its logits already rounded to the dtype), computed in
float64 from the exact softmax, over the rows the loss counts (label in [0, C), not ignored) of a batch without NaN or
+inf logits (whose softmax does not exist):

- `target-underflows`: a finite target logit whose probability rounds to 0 in the dtype;
- `target-subnormal`: a target probability below the dtype's smallest normal number that does not round to 0;
- `target-gradient-overflows`: the gradient of -log p_y with respect to the target's probability, -c_y / (D p_y)
  (c_y the target's weight after label smoothing, D the mean's count of rows; p_y rounded to the dtype, not 0), is
  past the dtype's largest finite value: what a loss taking the log of probabilities held in the dtype passes back;
- `probability-zero`: some class's probability is 0 in the dtype (an underflow, or a -inf logit);
- `probability-subnormal`: some class's probability is subnormal in the dtype;
- `exp-outside-keras-clip`: exp of some finite logit lies outside [1e-7, 1 - 1e-7], Keras' probability clip (the
  condition of an API fed the unnormalized row exp(x), which a clip before normalizing changes);
- `target-outside-keras-clip`: some counted row's target probability, rounded to the dtype, lies outside Keras'
  clip [1e-7, 1 - 1e-7] as float32 holds it (a loss that clips changes that row's loss and gradient);
- `softmax-sum-overflows`: some row's sum of exp(x - max) rounds to inf in the dtype (C equal logits
  with C > 65504 in float16): a softmax that sums in the dtype gets inf;
- `logit-spread-overflows`: some row's largest finite logit minus its smallest rounds to inf in the dtype,
  so x - max overflows to -inf in the dtype;
- `row-loss-overflows`: some counted row's loss rounds to inf in the dtype;
- `loss-sum-overflows`: the sum of the counted rows' losses rounds to inf in the dtype (a mean taken as a
  sum in the dtype, then divided, gets inf);
- `smoothing-sum-overflows`: with label smoothing, some counted row's sum of -log p over its classes (about
  C (ln C + 0.5) for logits of unit spread), or for a mean or a sum their total over the counted rows, rounds to inf
  in the dtype (a smoothing term summed in the dtype before it is scaled by the smoothing / C gets inf);
- `rows-uniform`: every counted row's finite logits are equal in the dtype (its softmax is uniform over them);
- `second-softmax-sum-overflows`: some row's sum of exp(p - max p) over its probabilities p rounds to inf in the
  dtype: what a softmax applied twice sums the second time. Every term lies in (1/e, 1], so the sum is between
  C / e and C: it overflows float16 for C > 65504 equal logits, and stays finite for a confident row of C = 128,256
  (p_max near 1: the other terms are e^-1 each, 47,000 in all).
- `uniform-gradient-overflows` / `uniform-gradient-fits`: C / N, N the counted rows, rounds to inf / stays finite in
  the dtype: the mean's gradient of the log of a probability 1/C, -1 / (N p), held in the dtype (exactly one of the
  two holds where some row counts).

An entry names those that must hold (`when`, any of them) and those that must not (`unless`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from xentcompat.reference.compact import is_big, row_slices
from xentcompat.reference.dtypes import float_type, round_to
from xentcompat.reference.options import Problem

PROBABILITY_CONDITIONS = ("target-underflows", "target-subnormal", "target-gradient-overflows", "probability-zero",
                          "probability-subnormal", "target-outside-keras-clip")
RANGE_CONDITIONS = ("softmax-sum-overflows", "logit-spread-overflows", "second-softmax-sum-overflows")
LOSS_CONDITIONS = ("row-loss-overflows", "loss-sum-overflows", "smoothing-sum-overflows", "rows-uniform")
GRADIENT_CONDITIONS = ("uniform-gradient-overflows", "uniform-gradient-fits")
CONDITIONS = (*PROBABILITY_CONDITIONS, "exp-outside-keras-clip", *RANGE_CONDITIONS, *LOSS_CONDITIONS,
              *GRADIENT_CONDITIONS)
KERAS_EPSILON = 1e-7
KERAS_CLIP = tuple(float(np.float32(bound)) for bound in (KERAS_EPSILON, 1.0 - KERAS_EPSILON))  # as float32 holds it


def holding(problem: Problem, dtype: str) -> frozenset[str]:
    """The conditions that hold for `problem` in `dtype`."""
    if is_big(problem.logits):
        return _holding_in_chunks(problem, dtype)
    return (_probability_conditions(problem, dtype) | _clip_conditions(problem) | _range_conditions(problem, dtype)
            | _loss_conditions([_row_losses(problem)], dtype, problem.options) | _gradient_conditions(problem, dtype))


def _holding_in_chunks(problem: Problem, dtype: str) -> frozenset[str]:
    """`holding` of a big batch, row chunk by row chunk: a condition "some row has ..." holds for the batch when it
    holds for a chunk, once the whole batch is known to hold no NaN or +inf (else there is no softmax); the loss
    conditions (a sum, "every row") come from the row losses of every chunk together."""
    logits, labels = problem.logits, problem.labels
    per_row_labels = labels is not None and np.shape(labels) == (logits.shape[0],)
    softmax_exists = not any(np.any(np.isnan(logits[rows])) or np.any(logits[rows] == np.inf)
                             for rows in row_slices(logits.shape))
    found: set[str] = set()
    losses = []
    for rows in row_slices(logits.shape):
        part = replace(problem, logits=np.asarray(logits[rows], np.float64),
                       labels=labels[rows] if per_row_labels else labels, probs=None)
        found |= _clip_conditions(part) | _range_conditions(part, dtype)
        losses.append(_row_losses(part))
        if softmax_exists:
            found |= _probability_conditions(part, dtype)
    return frozenset(found) | _loss_conditions(losses, dtype, problem.options) | _gradient_conditions(problem, dtype)


def _clip_conditions(problem: Problem) -> frozenset[str]:
    logits = np.asarray(problem.logits, dtype=np.float64)
    finite = logits[np.isfinite(logits)]
    with np.errstate(over="ignore"):
        values = np.exp(finite)
    outside = np.any((values < KERAS_EPSILON) | (values > 1.0 - KERAS_EPSILON))
    return frozenset({"exp-outside-keras-clip"}) if outside else frozenset()


def _probability_conditions(problem: Problem, dtype: str) -> frozenset[str]:
    logits = np.asarray(problem.logits, dtype=np.float64)
    if np.any(np.isnan(logits)) or np.any(logits == np.inf):
        return frozenset()
    rows, targets = _counted_rows(problem)
    if rows is None:
        return frozenset()
    log_p = _log_softmax(rows)
    at = np.arange(len(rows))
    target, finite_target = log_p[at, targets], np.isfinite(rows[at, targets])
    zero, subnormal = _thresholds(dtype)
    with np.errstate(under="ignore"):
        target_probability = round_to(np.exp(target), dtype)
    low, high = KERAS_CLIP
    facts = {
        "target-underflows": np.any(finite_target & (target < zero)),
        "target-subnormal": np.any(finite_target & (target >= zero) & (target < subnormal)),
        "probability-zero": np.any(log_p < zero),
        "probability-subnormal": np.any((log_p >= zero) & (log_p < subnormal)),
        "target-outside-keras-clip": np.any((target_probability < low) | (target_probability > high)),
        "target-gradient-overflows": _target_gradient_overflows(problem, target_probability, rows.shape, dtype),
    }
    return frozenset(name for name, holds in facts.items() if holds)


def _target_gradient_overflows(problem: Problem, target_probability: np.ndarray, shape: tuple[int, int],
                                dtype: str) -> bool:
    """Whether some counted row's -c_y / (D p_y), p_y > 0 as the dtype holds it, is past the dtype's range."""
    smoothing = problem.options.label_smoothing
    weight = 1.0 - smoothing + smoothing / shape[1]
    rows = shape[0] if problem.options.reduction == "mean" else 1
    held = target_probability[target_probability > 0]
    with np.errstate(over="ignore"):
        return _overflows(weight / (rows * held), dtype)


def _counted_rows(problem: Problem) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The rows the loss counts (label in [0, C), not ignored) that hold some finite logit, and their labels; None
    when the labels are not one class index per row or no row counts."""
    logits = np.asarray(problem.logits, dtype=np.float64)
    if problem.labels is None or logits.size == 0:
        return None, None
    labels = np.asarray(problem.labels)
    if labels.dtype.kind not in "iu" or labels.shape != (logits.shape[0],):
        return None, None  # labels that are not class indices (floats, the wrong count): no softmax facts
    counted = (labels >= 0) & (labels < logits.shape[1])
    if problem.options.ignore_index is not None:
        counted &= labels != problem.options.ignore_index
    keep = np.flatnonzero(counted)
    keep = keep[np.any(np.isfinite(logits[keep]), axis=1)]  # a row of only -inf has no softmax
    if keep.size == 0:
        return None, None
    return logits[keep], labels[keep]


def _range_conditions(problem: Problem, dtype: str) -> frozenset[str]:
    """softmax-sum-overflows, logit-spread-overflows and second-softmax-sum-overflows, over the rows without NaN or
    +inf that hold a finite logit."""
    logits = np.asarray(problem.logits, dtype=np.float64)
    if logits.size == 0:
        return frozenset()
    rows = logits[~np.any(np.isnan(logits) | (logits == np.inf), axis=1) & np.any(np.isfinite(logits), axis=1)]
    if rows.size == 0:
        return frozenset()
    finite = np.where(np.isfinite(rows), rows, np.nan)
    top, bottom = np.nanmax(finite, axis=1), np.nanmin(finite, axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        exps = np.exp(rows - top[:, None])
        sums = np.sum(exps, axis=1)
        probabilities = exps / sums[:, None]
        second = np.sum(np.exp(probabilities - np.max(probabilities, axis=1, keepdims=True)), axis=1)
        spread = top - bottom
    facts = {"softmax-sum-overflows": _overflows(sums, dtype), "logit-spread-overflows": _overflows(spread, dtype),
             "second-softmax-sum-overflows": _overflows(second, dtype)}
    return frozenset(name for name, holds in facts.items() if holds)


def _gradient_conditions(problem: Problem, dtype: str) -> frozenset[str]:
    """uniform-gradient-overflows or uniform-gradient-fits, from C and the number of counted rows."""
    labels = problem.labels
    if labels is None or np.asarray(labels).dtype.kind not in "iu" or np.shape(labels) != (problem.logits.shape[0],):
        return frozenset()
    labels = np.asarray(labels)
    counted = (labels >= 0) & (labels < problem.logits.shape[1])
    if problem.options.ignore_index is not None:
        counted &= labels != problem.options.ignore_index
    rows = int(np.count_nonzero(counted))
    if rows == 0:
        return frozenset()
    overflows = _overflows(problem.logits.shape[1] / rows, dtype)
    return frozenset({"uniform-gradient-overflows" if overflows else "uniform-gradient-fits"})


def _row_losses(problem: Problem) -> np.ndarray:
    """(loss, uniform, smoothing sum) of each counted row of a batch without NaN or +inf logits (no row otherwise):
    its float64 loss, 1 where its finite logits are all equal, and -sum_j log p_j over its classes."""
    logits = np.asarray(problem.logits, dtype=np.float64)
    rows, targets = (None, None) if np.any(np.isnan(logits)) or np.any(logits == np.inf) else _counted_rows(problem)
    if rows is None:
        return np.zeros((0, 3))
    log_p = _log_softmax(rows)
    finite = np.where(np.isfinite(rows), rows, np.nan)
    uniform = np.nanmax(finite, axis=1) == np.nanmin(finite, axis=1)
    return np.stack([-log_p[np.arange(len(rows)), targets], uniform, -np.sum(log_p, axis=1)], axis=1)


def _loss_conditions(parts: list[np.ndarray], dtype: str, options) -> frozenset[str]:
    """row-loss-overflows, loss-sum-overflows, smoothing-sum-overflows and rows-uniform from the (loss, uniform,
    smoothing sum) of every counted row."""
    losses = np.concatenate(parts)
    if losses.size == 0:
        return frozenset()
    with np.errstate(over="ignore", invalid="ignore"):
        total, smoothing_total = np.sum(losses[:, 0]), np.sum(losses[:, 2])
    smoothing = options.label_smoothing > 0 and (
        _overflows(losses[:, 2], dtype) or (options.reduction != "none" and _overflows(smoothing_total, dtype)))
    facts = {"row-loss-overflows": _overflows(losses[:, 0], dtype), "loss-sum-overflows": _overflows(total, dtype),
             "smoothing-sum-overflows": smoothing, "rows-uniform": bool(np.all(losses[:, 1] == 1))}
    return frozenset(name for name, holds in facts.items() if holds)


def _overflows(values, dtype: str) -> bool:
    """Whether some finite value of `values` rounds to ±inf in `dtype`."""
    values = np.asarray(values, dtype=np.float64)
    return bool(np.any(np.isfinite(values) & np.isinf(round_to(values, dtype))))


def _log_softmax(rows: np.ndarray) -> np.ndarray:
    shift = np.max(rows, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shifted = rows - shift
        return shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))


def _thresholds(dtype: str) -> tuple[float, float]:
    """log of the largest probability that rounds to 0 in `dtype` (half its smallest subnormal), and log of its
    smallest normal number."""
    info = float_type(dtype)
    log_normal = float(np.log(info.smallest_normal))
    return log_normal + float(np.log(info.unit_roundoff)), log_normal  # half the smallest subnormal: normal * u
