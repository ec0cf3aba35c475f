"""The options of a softmax cross-entropy call, and the problem (logits + targets + options) the oracle solves.

Every option reduces to one coefficient matrix `c` (N × C) and a denominator `D`:

    row loss    l_i = sum_j c_ij * (lse(x_i) - x_ij)
    loss        none: l      sum: sum_i l_i      mean: sum_i l_i / D

* class-index targets y:  c_ij = (1 - eps) * w[y_i] * [j == y_i] + (eps / C) * w[j]
* probability targets q:  c_ij = w[j] * ((1 - eps) * q_ij + eps / C)
* rows whose label is `ignore_index` get c_i = 0 and do not count in D.
* D: `mean_over="weight"` sums w[y_i] over counted rows (PyTorch's weighted mean for class-index targets);
  `mean_over="rows"` counts rows (PyTorch with probability targets, Keras `sample_weight`). Probability targets
  always count rows.

Class weights may be negative (PyTorch and Keras put no sign on them, and a negative weight is how a loss is
ascended on purpose, as in unlearning a forget set): the formulas hold as written, the row loss of a negatively
weighted target is negative and a weighted mean divides by the signed total D (refused where it is 0).

This is PyTorch's documented semantics for `weight`, `ignore_index` and `label_smoothing`, and the plain textbook
loss when every option is left at its default.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from xentcompat.reference.dtypes import round_to

REDUCTIONS = ("none", "sum", "mean")
MEAN_OVER = ("weight", "rows")


@dataclass(frozen=True)
class Options:
    """The options of one call. `extra_dims` (d1, ...) says the N rows are really (n, d1, ...) positions, row-major:
    PyTorch takes them as (n, C, d1, ...), channels-last frameworks as (n, d1, ..., C); the loss is the same."""

    reduction: str = "mean"
    weight: tuple[float, ...] | None = None
    ignore_index: int | None = None
    label_smoothing: float = 0.0
    mean_over: str = "weight"
    extra_dims: tuple[int, ...] = ()


def options_in_dtype(options: Options, dtype: str) -> Options:
    """`options` as a framework holding its class weights in `dtype` sees them (the weights rounded to it)."""
    if options.weight is None:
        return options
    return replace(options, weight=tuple(round_to(np.asarray(options.weight), dtype).tolist()))


@dataclass(frozen=True)
class Problem:
    """Logits (N × C, float64 values) with exactly one of `labels` (N,) or `probs` (N × C)."""

    logits: np.ndarray
    labels: np.ndarray | None = None
    probs: np.ndarray | None = None
    options: Options = Options()

    @property
    def num_classes(self) -> int:
        return self.logits.shape[1]


def take_rows(problem: Problem, rows: slice) -> Problem:
    """The problem of `rows` of the batch: the same options, the targets of those rows."""
    return Problem(problem.logits[rows], None if problem.labels is None else problem.labels[rows],
                   None if problem.probs is None else problem.probs[rows], problem.options)


@dataclass(frozen=True)
class Terms:
    """What the options reduce to: coefficients `c` (N × C), rows that count, and the mean's denominator."""

    coefficients: np.ndarray
    counted: np.ndarray
    denominator: float


def validate(problem: Problem) -> None:
    """Raise ValueError naming the first thing wrong with `problem`."""
    logits, options = problem.logits, problem.options
    if logits.ndim != 2:
        raise ValueError(f"logits must be 2-D (N, C), got shape {logits.shape}")
    if logits.shape[1] < 1:
        raise ValueError("logits need at least one class (C >= 1)")
    if (problem.labels is None) == (problem.probs is None):
        raise ValueError("give exactly one of labels (class indices) or probs (probability targets)")
    if problem.labels is not None:
        _validate_labels(problem.labels, logits.shape, options.ignore_index)
    else:
        _validate_probs(problem.probs, logits.shape)
        if options.ignore_index is not None:
            raise ValueError("ignore_index applies to class-index targets only, not to probability targets")
    _validate_options(options, logits.shape[0], logits.shape[1])
    _validate_signed_total(problem)


def _validate_labels(labels: np.ndarray, shape: tuple[int, int], ignore_index: int | None) -> None:
    if labels.shape != (shape[0],):
        raise ValueError(f"labels shape {labels.shape} does not match logits shape {shape}: expected ({shape[0]},)")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    counted = labels if ignore_index is None else labels[labels != ignore_index]
    bad = counted[(counted < 0) | (counted >= shape[1])]
    if bad.size:
        raise ValueError(f"label {int(bad[0])} outside [0, {shape[1]})")


def _validate_probs(probs: np.ndarray, shape: tuple[int, int]) -> None:
    if probs.shape != shape:
        raise ValueError(f"probs shape {probs.shape} does not match logits shape {shape}")
    if not np.all(np.isfinite(probs)):
        raise ValueError("probs must be finite (found NaN or inf)")
    if np.any(probs < 0):
        raise ValueError(f"probs must be non-negative (found {probs[probs < 0][0]!r})")


def _validate_options(options: Options, num_rows: int, num_classes: int) -> None:
    if options.reduction not in REDUCTIONS:
        raise ValueError(f"reduction {options.reduction!r} is not one of {', '.join(REDUCTIONS)}")
    if options.mean_over not in MEAN_OVER:
        raise ValueError(f"mean_over {options.mean_over!r} is not one of {', '.join(MEAN_OVER)}")
    if not 0.0 <= options.label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing {options.label_smoothing!r} outside [0, 1]")
    if options.extra_dims and (min(options.extra_dims) < 1 or num_rows % int(np.prod(options.extra_dims))):
        raise ValueError(f"extra_dims {options.extra_dims} do not divide the {num_rows} rows")
    if options.weight is not None:
        weight = np.asarray(options.weight, dtype=np.float64)
        if weight.shape != (num_classes,):
            raise ValueError(f"weight has {weight.size} entries, expected one per class ({num_classes})")
        if not np.all(np.isfinite(weight)):
            raise ValueError("weight entries must be finite (found NaN or inf)")


def _validate_signed_total(problem: Problem) -> None:
    """A weighted mean whose negative class weights cancel its positive ones to 0 divides a non-zero sum by 0."""
    options = problem.options
    if not has_negative_weights(options) or problem.labels is None or options.reduction != "mean" \
            or options.mean_over != "weight":
        return
    _, _, denominator = counted_labels(problem, np.asarray(options.weight, dtype=np.float64))
    if denominator == 0:
        raise ValueError("the class weights of the counted labels sum to 0 (negative weights cancel the positive "
                         "ones): the weighted mean divides by 0")


def has_negative_weights(options: Options) -> bool:
    """Whether some class weight is negative (see `weight_parts`)."""
    return options.weight is not None and min(options.weight) < 0


def weight_parts(problem: Problem) -> tuple[Problem, Problem]:
    """(the problem with w+ = max(w, 0), with w- = max(-w, 0)), both summed where `problem` takes a mean.

    Every coefficient c is linear in the class weights w, so the row losses and gradient of w are those of w+ minus
    those of w-, and a mean is that sum over D(w) = D(w+) - D(w-): signed weights reduce to two problems whose
    weights are non-negative."""
    weight = np.asarray(problem.options.weight, dtype=np.float64)
    reduction = "sum" if problem.options.reduction == "mean" else problem.options.reduction
    return tuple(replace(problem, options=replace(problem.options, weight=tuple(part.tolist()), reduction=reduction))
                 for part in (np.maximum(weight, 0.0), np.maximum(-weight, 0.0)))


def magnitudes(problem: Problem) -> Problem:
    """The problem with every class weight w replaced by |w|: its coefficients are |c| (both parts of a class-index
    coefficient carry the sign of one weight), the sizes an error bound adds up."""
    weight = np.abs(np.asarray(problem.options.weight, dtype=np.float64))
    return replace(problem, options=replace(problem.options, weight=tuple(weight.tolist())))


def class_weights(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """(w, eps / C · w): the class weights (ones without `weight`) and each class's label-smoothing coefficient."""
    num_classes = problem.logits.shape[1]
    options = problem.options
    weight = np.ones(num_classes) if options.weight is None else np.asarray(options.weight, dtype=np.float64)
    return weight, (options.label_smoothing / num_classes) * weight


def counted_labels(problem: Problem, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(counted rows, labels with ignored rows at 0, the mean's denominator) of class-index targets."""
    options, labels = problem.options, problem.labels
    counted = np.ones(len(labels), dtype=bool) if options.ignore_index is None else labels != options.ignore_index
    safe_labels = np.where(counted, labels, 0)
    if options.mean_over == "weight":
        return counted, safe_labels, float(np.sum(weight[safe_labels][counted]))
    return counted, safe_labels, float(np.count_nonzero(counted))


def terms(problem: Problem) -> Terms:
    """The coefficient matrix, counted rows and mean denominator of a validated `problem` (see module doc)."""
    n, num_classes = problem.logits.shape
    eps = problem.options.label_smoothing
    weight, smooth = class_weights(problem)
    if problem.probs is not None:
        coefficients = weight * ((1.0 - eps) * problem.probs + eps / num_classes)
        counted = np.ones(n, dtype=bool)
        return Terms(coefficients, counted, float(n))
    counted, safe_labels, denominator = counted_labels(problem, weight)
    coefficients = np.tile(smooth, (n, 1))
    coefficients[np.arange(n), safe_labels] += (1.0 - eps) * weight[safe_labels]
    coefficients[~counted] = 0.0
    return Terms(coefficients, counted, denominator)
