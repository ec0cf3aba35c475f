"""Catalogue cases of linear cross-entropy (area "linear"): hidden states h (N × D), a weight W (V × D), labels and
options, for the APIs that take h and W (`torch.nn.functional.linear_cross_entropy` and the materialised
`cross_entropy(h @ W.T, y)`), as data.

h, W (and a bias) are rounded to the dtype at run time, as the framework holds them; the reference computes on those
values. A linear API's `targets` says which gradient its cells judge: "linear" dL/dh, "linear-weight" dL/dW (each
gradient a record of its own, the loss judged in both). Every other API does not run these cases, nor a linear API
the others.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from xentcompat.reference.dtypes import DTYPE_NAMES, overflowing_values, round_to
from xentcompat.reference.facts import input_facts
from xentcompat.reference.linear_xent import LinearProblem, make_linear_problem
from xentcompat.reference.options import Options, options_in_dtype

LINEAR_TARGETS = {"linear": "hidden", "linear-weight": "weight"}


@dataclass(frozen=True, eq=False)
class LinearCase:
    id: str
    hidden: np.ndarray
    weight: np.ndarray
    labels: np.ndarray
    bias: np.ndarray | None = None
    options: Options = Options()
    dtypes: tuple[str, ...] = DTYPE_NAMES
    description: str = ""
    logits_code: str | None = None  # the code that makes h and W (what a reproducer runs)
    tier: str = "realistic"
    area: str = "linear"
    invalid: str | None = None
    probs: None = None
    accumulation: None = None

    @cached_property
    def logits(self) -> np.ndarray:
        """z = h @ W.T (+ b) of the case's float64 values."""
        return make_linear_problem(self.hidden, self.weight, self.labels, self.bias, self.options).logits

    @cached_property
    def facts(self) -> frozenset[str]:
        """The facts of its logits, labels and options (`reference.facts`)."""
        return input_facts(self.logits, self.labels, None, self.options)

    def runs_in(self, dtype: str) -> bool:
        return dtype in self.dtypes and self.overflowing(dtype).size == 0

    def overflowing(self, dtype: str) -> np.ndarray:
        """The finite entries of h, W and b that overflow `dtype` (an input-cast limit, not the API's), computed once
        per dtype: every API × mode asks."""
        if dtype not in self._overflowing:
            arrays = (self.hidden, self.weight) + (() if self.bias is None else (self.bias,))
            self._overflowing[dtype] = np.concatenate([overflowing_values(a, dtype) for a in arrays])
        return self._overflowing[dtype]

    @cached_property
    def _overflowing(self) -> dict[str, np.ndarray]:
        return {}

    def has_targets(self, targets: str) -> bool:
        return targets in LINEAR_TARGETS

    def problem(self, dtype: str, targets: str = "linear", mean_over: str = "weight") -> LinearProblem:
        """The case as `dtype` holds it (h, W, b and class weights rounded), judging the gradient `targets` names."""
        options = options_in_dtype(replace(self.options, mean_over=mean_over), dtype)
        bias = None if self.bias is None else round_to(self.bias, dtype)
        return make_linear_problem(round_to(self.hidden, dtype), round_to(self.weight, dtype), self.labels, bias,
                                   options, LINEAR_TARGETS.get(targets, "hidden"))


def _normal(seed: int, rows: int, depth: int, classes: int, sigma: float) -> tuple[np.ndarray, np.ndarray, str]:
    """h ~ normal(0, 1) (N × D) and W ~ normal(0, sigma / sqrt(D)) (V × D): logits of standard deviation ~sigma."""
    rng = np.random.default_rng(seed)
    hidden = rng.normal(0, 1, (rows, depth))
    weight = rng.normal(0, sigma / np.sqrt(depth), (classes, depth))
    code = (f"rng = np.random.default_rng({seed}); h = rng.normal(0, 1, ({rows}, {depth})); "
            f"W = rng.normal(0, {sigma} / np.sqrt({depth}), ({classes}, {depth}))")
    return hidden, weight, code


def _labels(rows: int, classes: int) -> np.ndarray:
    return np.arange(rows) * 7 % classes


def _linear(case_id: str, description: str, seed: int = 0, rows: int = 8, depth: int = 64, classes: int = 512,
            sigma: float = 2.0, labels=None, **options) -> LinearCase:
    hidden, weight, code = _normal(seed, rows, depth, classes, sigma)
    labels = _labels(rows, classes) if labels is None else np.asarray(labels, dtype=np.int64)
    return LinearCase(case_id, hidden, weight, labels, options=Options(**options), description=description,
                      logits_code=code)


def _confident() -> LinearCase:
    """Rows whose target weight points along the hidden state (|h . w_y| near 30, a confident right prediction) and
    rows where a wrong class does (confident and wrong): large logits from an ordinary matmul."""
    base = _linear("linear-confident", "", seed=1)
    weight = base.weight.copy()
    unit = base.hidden / np.linalg.norm(base.hidden, axis=1, keepdims=True)
    right, wrong = base.labels[:4], (base.labels[4:] + 1) % weight.shape[0]
    weight[right] = 30.0 * unit[:4] / np.linalg.norm(base.hidden[:4], axis=1, keepdims=True)
    weight[wrong] = 30.0 * unit[4:] / np.linalg.norm(base.hidden[4:], axis=1, keepdims=True)
    return replace(base, weight=weight, logits_code=None,
                   description="|h . w| = 30: four rows confident and right, four confident in a wrong class")


def _with_bias() -> LinearCase:
    base = _linear("linear-bias", "", seed=6)
    bias = np.random.default_rng(6).normal(0, 1, base.weight.shape[0])
    return replace(base, bias=bias, description="normal(0, 2) logits plus a normal(0, 1) bias (linear_bias)")


def _class_weights(classes: int = 512) -> tuple[float, ...]:
    return tuple(np.random.default_rng(3).uniform(0.25, 4.0, classes).round(3).tolist())


LINEAR_CASES: tuple[LinearCase, ...] = (
    _linear("linear-moderate", "h normal(0, 1), N x D x V = 8 x 64 x 512, logits normal(0, 2)"),
    _confident(),
    _linear("linear-ignore-index", "two of eight rows labelled -100 (ignore_index)", seed=2,
            labels=[0, -100, 14, 21, -100, 35, 42, 49], ignore_index=-100),
    _linear("linear-ignore-index-every-row", "every row labelled -100: a mean over nothing (NaN), gradients 0",
            seed=9, labels=[-100] * 8, ignore_index=-100),
    _linear("linear-class-weights", "class weights uniform in [0.25, 4]: a weighted mean", seed=3,
            weight=_class_weights()),
    _linear("linear-label-smoothing", "label smoothing 0.1", seed=4, label_smoothing=0.1),
    _linear("linear-reduction-sum", "reduction sum", seed=5, reduction="sum"),
    _linear("linear-reduction-none", "reduction none: one loss per row, the gradient of their sum", seed=7,
            reduction="none"),
    _with_bias(),
    _linear("linear-vocab-32k", "an LLM-sized vocabulary: N x D x V = 16 x 128 x 32768, logits normal(0, 2)",
            seed=8, rows=16, depth=128, classes=32768),
)
