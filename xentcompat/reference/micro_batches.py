"""One batch as micro-batches: how a training loop that accumulates gradients cuts it, and the two recipes that
put the micro-batches' losses back together (see `xentcompat.run.accumulation`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from xentcompat.reference.options import Problem, take_rows

RECIPES = ("sum-over-count", "mean-of-means")


@dataclass(frozen=True)
class Accumulation:
    sizes: tuple[int, ...]  # rows per micro-batch, in batch order
    recipe: str  # one of RECIPES

    def __post_init__(self):
        if self.recipe not in RECIPES:
            raise ValueError(f"unknown accumulation recipe {self.recipe!r}; expected one of {', '.join(RECIPES)}")

    @property
    def reduction(self) -> str:
        """The reduction each micro-batch runs with: sums for the documented recipe, means for the naive one."""
        return "sum" if self.recipe == "sum-over-count" else "mean"


def micro_batches(problem: Problem, accumulation: Accumulation, reduction: str | None = None) -> list[Problem]:
    """The micro-batches of `problem`, each with `reduction` (by default the recipe's)."""
    sizes = accumulation.sizes
    if sum(sizes) != problem.logits.shape[0]:
        raise ValueError(f"micro-batch sizes {sizes} do not add up to the batch's {problem.logits.shape[0]} rows")
    ends = np.cumsum(sizes)
    options = replace(problem.options, reduction=reduction or accumulation.reduction)
    return [replace(take_rows(problem, slice(int(end - size), int(end))), options=options)
            for size, end in zip(sizes, ends)]
