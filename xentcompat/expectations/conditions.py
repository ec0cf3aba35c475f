"""Conditions computed from a cell's input, so that a cause explains a user's own batch as it explains the
catalogue's cases: "the target's probability underflows to 0 in this dtype", not "case confident-wrong-gap100".

Each condition is a fact about the problem as the dtype sees it (its logits already rounded to the dtype), computed in
float64 from the exact softmax, over the rows the loss counts (label in [0, C), not ignored) of a batch without NaN or
+inf logits (whose softmax does not exist):

- `target-underflows`: a finite target logit whose probability rounds to 0 in the dtype;
- `target-subnormal`: a target probability below the dtype's smallest normal number that does not round to 0;
- `probability-zero`: some class's probability is 0 in the dtype (an underflow, or a -inf logit);
- `probability-subnormal`: some class's probability is subnormal in the dtype;
- `exp-outside-keras-clip`: exp of some finite logit lies outside [1e-7, 1 - 1e-7], Keras' probability clip (the
  condition of an API fed the unnormalized row exp(x), which a clip before normalizing changes).

An entry names those that must hold (`when`, any of them) and those that must not (`unless`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from xentcompat.reference.compact import is_big, row_slices
from xentcompat.reference.dtypes import float_type
from xentcompat.reference.options import Problem

PROBABILITY_CONDITIONS = ("target-underflows", "target-subnormal", "probability-zero", "probability-subnormal")
CONDITIONS = (*PROBABILITY_CONDITIONS, "exp-outside-keras-clip")
KERAS_EPSILON = 1e-7


def holding(problem: Problem, dtype: str) -> frozenset[str]:
    """The conditions that hold for `problem` in `dtype`."""
    if is_big(problem.logits):
        return _holding_in_chunks(problem, dtype)
    return _probability_conditions(problem, dtype) | _clip_conditions(problem)


def _holding_in_chunks(problem: Problem, dtype: str) -> frozenset[str]:
    """`holding` of a big batch, row chunk by row chunk: every condition is "some row has ...", so the batch's are
    the union of its chunks', once the whole batch is known to hold no NaN or +inf (else there is no softmax)."""
    logits, labels = problem.logits, problem.labels
    per_row_labels = labels is not None and np.shape(labels) == (logits.shape[0],)
    softmax_exists = not any(np.any(np.isnan(logits[rows])) or np.any(logits[rows] == np.inf)
                             for rows in row_slices(logits.shape))
    found: set[str] = set()
    for rows in row_slices(logits.shape):
        part = replace(problem, logits=np.asarray(logits[rows], np.float64),
                       labels=labels[rows] if per_row_labels else labels, probs=None)
        found |= _clip_conditions(part)
        if softmax_exists:
            found |= _probability_conditions(part, dtype)
    return frozenset(found)


def _clip_conditions(problem: Problem) -> frozenset[str]:
    logits = np.asarray(problem.logits, dtype=np.float64)
    finite = logits[np.isfinite(logits)]
    with np.errstate(over="ignore"):
        values = np.exp(finite)
    outside = np.any((values < KERAS_EPSILON) | (values > 1.0 - KERAS_EPSILON))
    return frozenset({"exp-outside-keras-clip"}) if outside else frozenset()


def _probability_conditions(problem: Problem, dtype: str) -> frozenset[str]:
    logits = np.asarray(problem.logits, dtype=np.float64)
    if problem.labels is None or logits.size == 0 or np.any(np.isnan(logits)) or np.any(logits == np.inf):
        return frozenset()
    labels = np.asarray(problem.labels)
    if labels.dtype.kind not in "iu" or labels.shape != (logits.shape[0],):
        return frozenset()  # labels that are not class indices (floats, the wrong count): no softmax facts
    counted = (labels >= 0) & (labels < logits.shape[1])
    if problem.options.ignore_index is not None:
        counted &= labels != problem.options.ignore_index
    keep = np.flatnonzero(counted)
    keep = keep[np.any(np.isfinite(logits[keep]), axis=1)]  # a row of only -inf has no softmax
    if keep.size == 0:
        return frozenset()
    rows, targets = logits[keep], labels[keep]
    log_p = _log_softmax(rows)
    at = np.arange(len(rows))
    target, finite_target = log_p[at, targets], np.isfinite(rows[at, targets])
    zero, subnormal = _thresholds(dtype)
    facts = {
        "target-underflows": np.any(finite_target & (target < zero)),
        "target-subnormal": np.any(finite_target & (target >= zero) & (target < subnormal)),
        "probability-zero": np.any(log_p < zero),
        "probability-subnormal": np.any((log_p >= zero) & (log_p < subnormal)),
    }
    return frozenset(name for name, holds in facts.items() if holds)


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
