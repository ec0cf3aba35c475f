"""Facts about a case's input, computed from its float64 logits, labels and options, whatever its name: what a cause
selects cells by (`tags` in a cause's entry), so that a user's own batch with a −inf mask or a confident wrong row is
explained as the catalogue's cases are. A fact holds for the batch when it holds for some row (`mask`: some logit is
−inf). They do not depend on the dtype; facts of the input as a dtype sees it are conditions
(`xentcompat.expectations.conditions`).
"""

from __future__ import annotations

import numpy as np

from xentcompat.reference.compact import row_slices

CONFIDENT_GAP = 30.0  # logits this far apart give probabilities below e^-30 = 9e-14: "confident"
LARGE_VOCABULARY = 32768
FAR_BELOW_MAX = 64.0  # Paddle's softmax clips x - max at -64
HUGE_LOGIT = 2.0**15  # half of float16's largest value: beyond any logit a model produces
FLOAT32_SMALLEST_NORMAL = 2.0**-126

FACTS = {
    "mask": "some logit is -inf (a masked class)",
    "masked-target": "some counted row's target logit is -inf",
    "masked-row": "some row's logits are all -inf",
    "nan-logit": "some logit is NaN",
    "pos-inf-logit": "some logit is +inf",
    "huge-logit": f"some finite logit is at least {HUGE_LOGIT:g} in magnitude",
    "subnormal-logit": "some nonzero logit is smaller in magnitude than float32's smallest normal number",
    "confident-right": f"some counted row's target logit is at least {CONFIDENT_GAP:g} above every other finite logit",
    "confident-wrong": f"some counted row's target logit is at least {CONFIDENT_GAP:g} below the row's largest",
    "far-below-max": f"some class a counted row's targets weigh lies more than {FAR_BELOW_MAX:g} below the row's "
                     "largest finite logit (a -inf logit included)",
    "large-vocab": f"at least {LARGE_VOCABULARY} classes",
    "label-out-of-range": "some class-index label lies outside [0, C) and is not the ignore index",
    "label-wraps-to-a-class": "some class-index label lies in [-C, -1] (negative indexing reaches a class) and is not "
                              "the ignore index",
    "label-past-every-class": "some class-index label is at least C or below -C (no indexing reaches a class)",
    "int32-labels": "the class indices are int32",
    "uint8-labels": "the class indices are uint8",
    "float-labels": "the class indices are floating-point numbers",
    "mean-over-nothing": "the reduction is a mean and every row's label is the ignore index",
    "zero-total-weight": "class weights are given and the counted targets' weights sum to 0",
    "invalid-probabilities": "some probability target is negative or NaN",
    "unnormalized-targets": "some row of probability targets, none negative or NaN, does not sum to 1",
    "ignored-rows": "some row's label is the ignore index",
    "smoothed-ignored-rows": "label smoothing is on and some row's label is the ignore index",
    "ignored-row-nonfinite": "some row whose label is the ignore index holds a NaN or an infinite logit",
    "class-weights": "class weights are given",
    "negative-class-weights": "some class weight is negative",
    "label-smoothing": "label smoothing is on",
    "soft-targets": "the targets are probabilities that are not one-hot",
    "extra-dims": "the rows are positions of extra dimensions (n, d1, ...)",
    "empty-batch": "no rows",
    "recipe-mean-of-means": "the batch runs as micro-batches whose mean losses are averaged",
    "recipe-sum-over-count": "the batch runs as micro-batches whose summed losses are divided by the batch's count",
}
PROBABILITY_SUM_TOLERANCE = 1e-6


def input_facts(logits: np.ndarray, labels: np.ndarray | None, probs: np.ndarray | None, options) -> frozenset[str]:
    """The facts (keys of FACTS) that hold for this input."""
    found = set(_option_facts(options, probs, logits))
    found |= _label_facts(logits.shape[1], labels, options)
    for rows in row_slices(logits.shape):
        block = np.asarray(logits[rows], dtype=np.float64)
        block_labels = labels[rows] if _per_row(labels, logits) else None
        found |= _value_facts(block)
        found |= _confidence_facts(block, block_labels, options)
        found |= _ignored_row_facts(block, block_labels, options)
    return frozenset(found)


def _per_row(labels, logits) -> bool:
    return labels is not None and np.asarray(labels).dtype.kind in "iu" and np.shape(labels) == (logits.shape[0],)


def _option_facts(options, probs, logits) -> set[str]:
    found = {"class-weights"} if options.weight is not None else set()
    found |= {"negative-class-weights"} if options.weight is not None and min(options.weight) < 0 else set()
    found |= {"label-smoothing"} if options.label_smoothing else set()
    found |= {"extra-dims"} if options.extra_dims else set()
    found |= {"empty-batch"} if logits.shape[0] == 0 else set()
    found |= {"large-vocab"} if logits.shape[1] >= LARGE_VOCABULARY else set()
    if probs is not None:
        found |= _probability_facts(np.asarray(probs, dtype=np.float64))
        found |= {"far-below-max"} if _far_below_max_weighed(logits, probs) else set()
    return found


def _far_below_max_weighed(logits: np.ndarray, probs) -> bool:
    """Whether some class given a nonzero probability target lies more than FAR_BELOW_MAX below its row's largest."""
    for rows in row_slices(logits.shape):
        block = np.asarray(logits[rows], dtype=np.float64)
        if block.size == 0:
            continue
        below = _far_below_largest_finite(block)
        if np.any(below & (np.asarray(probs[rows], dtype=np.float64) != 0)):
            return True
    return False


def _probability_facts(values: np.ndarray) -> set[str]:
    found = {"soft-targets"} if np.any((values != 0) & (values != 1)) else set()
    invalid = np.isnan(values) | (values < 0)
    found |= {"invalid-probabilities"} if np.any(invalid) else set()
    valid_rows = values[~np.any(invalid, axis=1)] if values.ndim == 2 else values[:0]
    if np.any(np.abs(np.sum(valid_rows, axis=1) - 1.0) > PROBABILITY_SUM_TOLERANCE):
        found.add("unnormalized-targets")
    return found


def _label_facts(classes: int, labels, options) -> set[str]:
    if labels is None:
        return set()
    values = np.asarray(labels)
    if values.dtype.kind == "f":
        return {"float-labels"}
    if values.dtype.kind not in "iu":
        return set()
    found = {f"{values.dtype.name}-labels"} if values.dtype.name in ("int32", "uint8") else set()
    ignored = values == options.ignore_index if options.ignore_index is not None else np.zeros(values.shape, bool)
    found |= {"ignored-rows"} if np.any(ignored) else set()
    found |= {"smoothed-ignored-rows"} if np.any(ignored) and options.label_smoothing else set()
    found |= {"mean-over-nothing"} if values.size and np.all(ignored) and options.reduction == "mean" else set()
    wide = values.astype(np.int64)
    facts = {"label-out-of-range": (wide < 0) | (wide >= classes), "label-wraps-to-a-class": (wide < 0) & (wide >= -classes),
             "label-past-every-class": (wide >= classes) | (wide < -classes)}
    found |= {name for name, where in facts.items() if np.any(where & ~ignored)}
    if options.weight is not None and np.any(~ignored):
        weight = np.asarray(options.weight, dtype=np.float64)
        inside = ~ignored & ~facts["label-out-of-range"]
        if np.all(inside[~ignored]) and np.sum(weight[wide[inside]]) == 0:
            found.add("zero-total-weight")
    return found


def _value_facts(block: np.ndarray) -> set[str]:
    found = {"mask"} if np.any(block == -np.inf) else set()
    found |= {"pos-inf-logit"} if np.any(block == np.inf) else set()
    found |= {"nan-logit"} if np.any(np.isnan(block)) else set()
    magnitude = np.abs(block[np.isfinite(block)])
    found |= {"huge-logit"} if np.any(magnitude >= HUGE_LOGIT) else set()
    found |= {"subnormal-logit"} if np.any((magnitude > 0) & (magnitude < FLOAT32_SMALLEST_NORMAL)) else set()
    if block.size and np.any(np.all(block == -np.inf, axis=1)):
        found.add("masked-row")
    return found


def _ignored_row_facts(block: np.ndarray, labels, options) -> set[str]:
    if labels is None or options.ignore_index is None or block.size == 0:
        return set()
    ignored = block[labels == options.ignore_index]
    return {"ignored-row-nonfinite"} if ignored.size and not np.all(np.isfinite(ignored)) else set()


def _confidence_facts(block: np.ndarray, labels, options) -> set[str]:
    """masked-target, confident-right and confident-wrong, over the counted rows (label in [0, C), not ignored)."""
    if labels is None or block.size == 0:
        return set()
    counted = (labels >= 0) & (labels < block.shape[1])
    if options.ignore_index is not None:
        counted &= labels != options.ignore_index
    rows = np.flatnonzero(counted)
    if rows.size == 0:
        return set()
    values, targets = block[rows], labels[rows]
    target = values[np.arange(rows.size), targets]
    found = {"masked-target"} if np.any(target == -np.inf) else set()
    finite = np.where(np.isfinite(values), values, -np.inf)
    others = finite.copy()
    others[np.arange(rows.size), targets] = -np.inf
    largest_other = np.max(others, axis=1)
    usable = np.isfinite(target) & np.isfinite(largest_other)
    with np.errstate(invalid="ignore", over="ignore"):
        gap = np.where(usable, target - largest_other, 0.0)
    if np.any(gap >= CONFIDENT_GAP):
        found.add("confident-right")
    if np.any(gap <= -CONFIDENT_GAP):
        found.add("confident-wrong")
    if _far_below_max(values, targets, options):
        found.add("far-below-max")
    return found


def _far_below_largest_finite(values: np.ndarray) -> np.ndarray:
    """Where a logit lies more than FAR_BELOW_MAX below its row's largest finite logit (-inf included; NaN not)."""
    largest = np.max(np.where(np.isfinite(values), values, -np.inf), axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        return np.isfinite(largest) & (values - largest < -FAR_BELOW_MAX)


def _far_below_max(values: np.ndarray, targets: np.ndarray, options) -> bool:
    """Whether a class the counted rows' targets weigh (the target; every class with label smoothing) lies more
    than FAR_BELOW_MAX below its row's largest logit."""
    below = _far_below_largest_finite(values)
    if options.label_smoothing:
        return bool(np.any(below))
    return bool(np.any(below[np.arange(targets.size), targets]))
