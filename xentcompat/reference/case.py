"""One case of the catalogue: float64 logits (±inf and NaN allowed), class-index labels or probability targets,
options, the dtypes it runs in and its tier; `problem(dtype, targets)` is the case as a dtype sees it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np

from xentcompat.reference.compact import is_big, one_hot_compact, overflowing_in_chunks, rounded_compact
from xentcompat.reference.dtypes import DTYPE_NAMES, overflowing_values, round_to
from xentcompat.reference.facts import input_facts
from xentcompat.reference.micro_batches import Accumulation
from xentcompat.reference.options import Options, Problem, options_in_dtype, validate


@dataclass(frozen=True)
class Case:
    id: str
    area: str
    logits: np.ndarray
    labels: np.ndarray | None = None
    probs: np.ndarray | None = None
    options: Options = Options()
    dtypes: tuple[str, ...] = DTYPE_NAMES
    description: str = ""
    logits_code: str | None = field(default=None, compare=False)
    invalid: str | None = None
    tier: str = "realistic"  # or "stress": values at the dtype's limits, which models do not produce
    accumulation: Accumulation | None = None  # run as micro-batches, reduced by a recipe (area "accumulation")

    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # per-dtype facts, kept

    @property
    def facts(self) -> frozenset[str]:
        """The facts of its input (`reference.facts`) and, run as micro-batches, its recipe; computed once."""
        recipe = frozenset() if self.accumulation is None else frozenset({f"recipe-{self.accumulation.recipe}"})
        return self.remembered("facts", lambda: input_facts(self.logits, self.labels, self.probs, self.options)
                               | recipe)

    def runs_in(self, dtype: str) -> bool:
        return dtype in self.dtypes and self.overflowing(dtype).size == 0

    def overflowing(self, dtype: str) -> np.ndarray:
        """The finite logits that overflow `dtype` (computed once per dtype: a big batch is walked once)."""
        find = overflowing_in_chunks if is_big(self.logits) else overflowing_values
        return self.remembered(("overflowing", dtype), lambda: find(self.logits, dtype))

    def remembered(self, key, compute):
        """`compute()`, computed on the first ask for `key` and kept with the case."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def problem(self, dtype: str, targets: str, mean_over: str = "weight") -> Problem:
        """The case as `dtype` sees it, with `targets` "labels" or "probs" (labels become one-hot probabilities).

        Logits, probabilities and class weights are rounded to `dtype`, as the framework holds them.
        """
        options = options_in_dtype(replace(self.options, mean_over=mean_over), dtype)
        big = is_big(self.logits)  # held compact (see `compact`): never an N × C float64 copy per dtype
        rounded = partial(rounded_compact if big else round_to, dtype=dtype)
        if self.invalid is not None:  # as given: the reference refuses it, the API shows what it does with it
            probs = None if self.probs is None or targets == "labels" else rounded(self.probs)
            return Problem(rounded(self.logits), self.labels if targets == "labels" else None, probs, options)
        labels, probs = self.labels, self.probs
        if targets == "probs" and probs is None:
            probs = (one_hot_compact if big else one_hot)(labels, self.logits.shape[1])
            labels = None
        problem = Problem(
            logits=rounded(self.logits),
            labels=labels if targets == "labels" else None,
            probs=None if probs is None or targets == "labels" else rounded(probs),
            options=options,
        )
        validate(problem)
        return problem

    def has_targets(self, targets: str) -> bool:
        """Whether the case can feed an API taking `targets`.

        Valid labels also make one-hot probabilities, unless rows are ignored (`ignore_index` is for class indices).
        """
        if targets == "labels":
            return self.labels is not None
        one_hot_able = self.invalid is None and self.options.ignore_index is None
        return self.probs is not None or (self.labels is not None and one_hot_able)


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    probs = np.zeros((len(labels), num_classes))
    probs[np.arange(len(labels)), labels] = 1.0
    return probs
