"""Catalogue cases for options (area "options") and invalid input (area "labels"), at float32.

Options: each case runs through every API that offers the option, with that API's documented semantics (the
reference expresses both weighted means: PyTorch divides by the sum of the targets' weights, Keras `sample_weight`
by the number of rows). An API without the option does not run the case: not applicable, not a failure.

Invalid input: the reference refuses these (a label outside [0, C), a float or mistyped label array, a shape
mismatch, NaN in probability targets). Each API either raises — the good outcome — or returns something anyway
(`silent`). They run in a child process, so a native abort is recorded as `crashed` and the run goes on.
"""

from __future__ import annotations

import numpy as np

from xentcompat.reference.case import Case
from xentcompat.reference.options import Options

INF, NAN = float("inf"), float("nan")
FLOAT32 = ("float32",)
LOGITS = np.random.default_rng(5).normal(0, 2, (4, 5))
LOGITS_CODE = "np.random.default_rng(5).normal(0, 2, (4, 5))"
LABELS = np.array([0, 3, 1, 4])


def _option(case_id: str, description: str, logits=LOGITS, labels=LABELS, probs=None, code=LOGITS_CODE,
            **options) -> Case:
    logits = np.asarray(logits, dtype=np.float64)
    return Case(case_id, "options", logits, None if labels is None else np.asarray(labels),
                None if probs is None else np.asarray(probs, dtype=np.float64), Options(**options), FLOAT32,
                description, code if logits is LOGITS else None)


def _with_row(values, row: int, logits=LOGITS) -> np.ndarray:
    changed = np.array(logits, dtype=np.float64)
    changed[row] = values
    return changed


SOFT = np.array([[0.7, 0.2, 0.1, 0, 0], [0.25] * 4 + [0], [0, 0, 1, 0, 0], [0.1, 0.1, 0.1, 0.1, 0.6]])
MASKED = _with_row([1.0, -INF, 0.5, -INF, 2.0], 1)

OPTION_CASES: tuple[Case, ...] = (
    _option("reduction-none", "one loss per row, the gradient of their sum", reduction="none"),
    _option("reduction-sum", "the sum over rows", reduction="sum"),
    _option("class-weights", "class weights; a weighted mean divides by the targets' weights (PyTorch) or by N "
            "(Keras sample_weight)", weight=(1.0, 2.0, 0.5, 3.0, 0.25)),
    _option("class-weights-zero-total", "every target's class weight is 0: a weighted mean over nothing",
            weight=(0.0, 1.0, 1.0, 0.0, 0.0), labels=[0, 3, 0, 4]),
    _option("class-weights-one-row", "a batch of one row with class weights: the weighted mean is the row's loss "
            "(its weight cancels)", logits=LOGITS[:1], labels=[3], code=None, weight=(1.0, 2.0, 0.5, 3.0, 0.25)),
    _option("class-weights-negative", "class weights with negative entries (ascending the loss of those classes, as "
            "unlearning does): their rows' losses count negative, a weighted mean divides by the signed total 3.25",
            weight=(1.0, -0.5, 0.5, 3.0, -0.25)),
    _option("class-weights-negative-total", "negative class weights whose targets' total is -1.75: a weighted mean "
            "divides by it and changes sign", weight=(1.0, -2.0, 0.5, -1.0, 0.25)),
    _option("ignore-index", "one row's label is the ignore index -100", labels=[0, -100, 1, 4], ignore_index=-100),
    _option("ignore-index-every-row", "every row ignored: a mean over nothing", labels=[-100] * 4,
            ignore_index=-100),
    _option("ignore-index-every-row-smoothed", "every row ignored, with label smoothing 0.1: still a mean over "
            "nothing", labels=[-100] * 4, ignore_index=-100, label_smoothing=0.1),
    _option("ignore-index-every-row-sum", "every row ignored, summed: 0", labels=[-100] * 4, ignore_index=-100,
            reduction="sum"),
    _option("ignore-index-every-row-none", "every row ignored, one loss per row: all 0", labels=[-100] * 4,
            ignore_index=-100, reduction="none"),
    _option("ignore-index-row-neg-inf", "the ignored row holds -inf logits (a fully masked position)",
            logits=_with_row([-INF] * 5, 1), labels=[0, -100, 1, 4], ignore_index=-100),
    _option("ignore-index-row-nan", "the ignored row holds a NaN logit (padding garbage)",
            logits=_with_row([0.0, NAN, 1.0, 2.0, 3.0], 1), labels=[0, -100, 1, 4], ignore_index=-100),
    _option("label-smoothing", "label smoothing 0.1", label_smoothing=0.1),
    _option("label-smoothing-other-classes", "label smoothing 0.125 = 0.1 K / (K - 1) for K = 5: the α/K form of "
            "smoothing 0.1 spread over the K - 1 other classes (Megatron-LM's convention)", label_smoothing=0.125),
    _option("label-smoothing-neg-inf", "label smoothing 0.1 with -inf masked non-target logits: the smoothed "
            "target puts weight on a class of probability 0, so the loss is +inf", logits=MASKED,
            label_smoothing=0.1),
    _option("soft-targets", "probability targets that are not one-hot", labels=None, probs=SOFT),
    _option("soft-targets-unnormalized", "probability rows summing to 0.5 and 2 (used as given)", labels=None,
            probs=SOFT * np.array([[0.5], [2.0], [1.0], [1.0]])),
    _option("empty-batch", "N = 0 rows: the mean is 0 / 0 (NaN), the sum 0", logits=np.zeros((0, 5)),
            labels=np.zeros(0, dtype=np.int64)),
    _option("empty-batch-sum", "N = 0 rows, summed: 0", logits=np.zeros((0, 5)),
            labels=np.zeros(0, dtype=np.int64), reduction="sum"),
    _option("single-class", "C = 1: the loss is 0 and so is the gradient", logits=[[3.0], [-2.0], [0.0]],
            labels=[0, 0, 0]),
    _option("extra-dims", "(N, d) = (2, 2) positions of C = 5 classes: PyTorch (N, C, d), others (N, d, C)",
            extra_dims=(2,)),
    _option("extra-dims-smoothed", "(N, d) = (2, 2) positions of C = 5 classes with label smoothing 0.1: the "
            "smoothing spreads over the C classes, whichever axis holds them", extra_dims=(2,), label_smoothing=0.1),
)


def _invalid(case_id: str, invalid: str, labels=None, probs=None, **options) -> Case:
    return Case(case_id, "labels", LOGITS, None if labels is None else np.asarray(labels),
                None if probs is None else np.asarray(probs, dtype=np.float64), Options(**options), FLOAT32,
                invalid, LOGITS_CODE, invalid=invalid)


INVALID_CASES: tuple[Case, ...] = (
    _invalid("label-equals-C", "a label equal to C = 5 (one past the last class)", labels=[0, 5, 1, 4]),
    _invalid("label-minus-1", "a label of -1", labels=[0, -1, 1, 4]),
    _invalid("label-far-negative", "a label of -1000, far below -C", labels=[0, -1000, 1, 4]),
    _invalid("label-huge", "a label of 2**31 - 1, far beyond C", labels=[0, 2**31 - 1, 1, 4]),
    _invalid("labels-float", "labels given as floats (0.0, 3.0, ...) instead of integers",
             labels=np.array([0.0, 3.0, 1.0, 4.0])),
    _invalid("labels-fractional", "a fractional label 1.5", labels=np.array([0.0, 1.5, 1.0, 4.0])),
    _invalid("labels-too-many", "5 labels for 4 rows of logits", labels=[0, 3, 1, 4, 2]),
    _invalid("labels-too-few", "3 labels for 4 rows of logits", labels=[0, 3, 1]),
    _invalid("probs-nan", "a NaN in the probability targets", probs=np.where(SOFT == 0.25, NAN, SOFT)),
    _invalid("probs-negative", "a negative probability target", probs=SOFT - 0.05 * (SOFT == 0)),
    _invalid("probs-with-ignore-index", "probability targets with ignore_index 0 (it applies to class indices only)",
             probs=SOFT, ignore_index=0),
    _invalid("label-smoothing-above-1", "label smoothing 1.5, outside [0, 1]", labels=LABELS, label_smoothing=1.5),
)

VALID_LABEL_DTYPES: tuple[Case, ...] = tuple(
    Case(f"labels-{dtype}", "labels", LOGITS, LABELS.astype(dtype), None, Options(), FLOAT32,
         f"valid labels held as {dtype}: an API may refuse the dtype", LOGITS_CODE)
    for dtype in ("int32", "uint8"))
