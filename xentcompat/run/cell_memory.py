"""What one cell of a big batch needs in memory, the budget it must fit, and the lock that runs big cells one at a
time across every shard and worker of a run.

A big batch (see `reference.compact`) is N × C elements E. For a cell in a dtype of s bytes an element:

    need = held + max(framework peak, returned gradient + reference gradient)

* held: the cell's own inputs beyond the case file's pages (memory-mapped, shared, reclaimable): the rounded logits
  when they are not the case's own array (float32, 4E; float64, 8E) and one-hot probabilities for an API that takes
  probability targets (float32, 4E);
* framework peak: the API's forward and backward, its input copies and its returned gradient (what `capture`
  keeps): the API's `memory_batches` × E × s, measured per API on a 512 × 131072 batch and declared with it, plus
  one batch of margin; an API not measured gets `UNMEASURED_BATCHES`. An adapter that returns a big batch's gradient
  as float64 (`FLOAT64_GRADIENT`) adds 8E;
* then the framework's memory is gone and the float64 reference gradient (8E) is formed beside the returned one.

A cell whose need exceeds the budget does not run: its record says so (`crashed`, error `MemoryBudget`, with the
numbers) and it is no finding, since the API was never called. The budget is `XENTCOMPAT_MEMORY_BUDGET`
(bytes; `xentcompat run --memory-budget GIB` sets it), by default half the machine's memory.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from xentcompat.reference.compact import held_as_is, is_big

GIB = 2**30
MARGIN_BATCHES = 1.0
UNMEASURED_BATCHES = 10.0
FLOAT64_GRADIENT = frozenset({"keras", "tensorflow"})  # adapters whose gradient comes back as float64 whatever N × C
ITEM_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}


def memory_budget() -> int:
    """Bytes a big cell may need: XENTCOMPAT_MEMORY_BUDGET, else half the physical memory."""
    given = os.environ.get("XENTCOMPAT_MEMORY_BUDGET")
    if given:
        return int(float(given))
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


def cell_need(api, case, dtype: str) -> tuple[int, str]:
    """(bytes, how they add up) that running `api` on `case` in `dtype` needs at its peak (see the module's text)."""
    elements = int(np.prod(case.logits.shape))
    item = ITEM_BYTES[dtype]
    logits = 0 if held_as_is(case.logits, dtype) else elements * (8 if dtype == "float64" else 4)
    probs = elements * 4 if api.targets == "probs" and case.probs is None else 0
    measured = api.memory_batches
    batches = (UNMEASURED_BATCHES - MARGIN_BATCHES if measured is None else measured) + MARGIN_BATCHES
    framework = int(batches * elements * item) + (elements * 8 if api.framework in FLOAT64_GRADIENT else 0)
    returned = elements * (8 if api.framework in FLOAT64_GRADIENT else 4 if dtype == "bfloat16" else item)
    reference = elements * 8
    need = logits + probs + max(framework, returned + reference)
    how = (f"{_gib(logits + probs)} of rounded inputs + max({_gib(framework)} for the framework ({batches:g} batches "
           f"of {_gib(elements * item)}), {_gib(returned)} returned + {_gib(reference)} float64 reference gradient)")
    return need, how


def refusal(api, case, dtype: str) -> str | None:
    """Why the cell does not run (its need is over the budget), or None: it runs (small cells always do)."""
    if not is_big(case.logits):
        return None
    need, how = cell_need(api, case, dtype)
    budget = memory_budget()
    if need <= budget:
        return None
    return (f"not run: a {case.logits.shape[0]} x {case.logits.shape[1]} batch in {dtype} needs about {_gib(need)} "
            f"({how}), over the memory budget of {_gib(budget)} (xentcompat run --memory-budget GIB)")


@contextmanager
def one_big_cell_at_a_time(case, lock_dir: Path | None):
    """Hold the run's big-cell lock (a file in `lock_dir`, shared by every shard and worker of the run) while a big
    cell runs; nothing for a small cell or without a directory."""
    if lock_dir is None or not is_big(case.logits):
        yield
        return
    with (lock_dir / ".big-cells.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _gib(count: int) -> str:
    return f"{count / GIB:.1f} GiB"
