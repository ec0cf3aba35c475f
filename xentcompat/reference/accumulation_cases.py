"""Catalogue cases for gradient accumulation (area "accumulation", float32): one batch of 12 rows, run as
micro-batches and reduced by one recipe (see `xentcompat.run.accumulation`).

* uneven-sizes: micro-batches of 2, 7 and 3 rows, every target counted;
* uneven-ignored: three micro-batches of 4 rows holding 1, 4 and 2 counted targets (the rest `ignore_index` -100:
  padding), the language-model case: equal micro-batch shapes, uneven counts.

Each runs with the documented recipe (`sum-over-count`: sum each micro-batch, divide by the batch's count) and the
naive one (`mean-of-means`). The reference is the full batch's mean, the loss the step should see.
"""

from __future__ import annotations

import numpy as np

from xentcompat.reference.case import Case
from xentcompat.reference.micro_batches import RECIPES, Accumulation
from xentcompat.reference.options import Options

LOGITS_CODE = "np.random.default_rng(11).normal(0, 3, (12, 10))"
LOGITS = np.random.default_rng(11).normal(0, 3, (12, 10))
LABELS = np.arange(12) * 7 % 10
IGNORED = (1, 2, 3, 10, 11)  # rows of padding: micro-batches of 4 rows hold 1, 4 and 2 counted targets


def _cases():
    ignored = np.where(np.isin(np.arange(12), IGNORED), -100, LABELS)
    batches = {
        "uneven-sizes": ((2, 7, 3), LABELS, Options(), "micro-batches of 2, 7 and 3 rows"),
        "uneven-ignored": ((4, 4, 4), ignored, Options(ignore_index=-100),
                           "micro-batches of 4 rows with 1, 4 and 2 counted targets (the rest ignore_index -100)"),
    }
    return tuple(
        Case(f"accumulate-{name}-{recipe}", "accumulation", LOGITS, labels, None, options, ("float32",),
             f"{words}, accumulated as {recipe}", LOGITS_CODE, accumulation=Accumulation(sizes, recipe))
        for name, (sizes, labels, options, words) in batches.items() for recipe in RECIPES)


ACCUMULATION_CASES = _cases()
