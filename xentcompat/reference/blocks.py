"""How the reference and the error model walk an N × C batch: row chunks, class blocks, and the work memory they use.

A `Budget` is the float64 work memory the passes may hold at once (`work_bytes`, split evenly over `workers` threads).
A pass that keeps `temporaries` float64 arrays of one block's size gets blocks of

    E = work_bytes / (workers * 8 * temporaries)        elements.

A row that fits (C <= E) is processed whole, floor(E / C) rows per chunk; a wider row is one chunk of its own, split
into class blocks of E classes each. So the memory a pass adds beyond its inputs and the outputs it was asked for is
at most `work_bytes` plus a few float64 numbers per row and per class, whatever N and C are.

Chunks are independent (each writes only its own rows of the outputs), so they run on a thread pool: numpy releases
the GIL inside its loops, and a chunk's numbers do not depend on the thread that computes them. Each worker gets a
`Scratch` for the pass: work arrays it reuses from chunk to chunk, since an array of a few MiB allocated anew each
time comes back from the kernel as fresh pages to be zeroed (which costs more than the arithmetic done in it).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, TypeVar

import numpy as np

T = TypeVar("T")


def _available_cores() -> int:
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return max(os.cpu_count() or 1, 1)


@dataclass(frozen=True)
class Budget:
    """Work memory for one streaming pass: `work_bytes` in all, over `workers` threads."""

    work_bytes: int = 64 * 2**20
    workers: int = _available_cores()


DEFAULT_BUDGET = Budget()


@dataclass(frozen=True)
class Chunk:
    """Rows `rows` of the batch, walked in the class blocks `blocks` (one block holding every class, or several)."""

    rows: slice
    blocks: tuple[slice, ...]

    @property
    def whole(self) -> bool:
        """Whether the chunk's rows are one block (nothing to carry from block to block)."""
        return len(self.blocks) == 1


def block_elements(budget: Budget, temporaries: int) -> int:
    """E: elements per block, so that `temporaries` float64 blocks per worker fit the budget (at least 1)."""
    return max(budget.work_bytes // (budget.workers * 8 * max(temporaries, 1)), 1)


def chunks(shape: tuple[int, int], elements: int) -> list[Chunk]:
    """The chunks of an (N, C) batch for blocks of `elements` elements (see the module docstring)."""
    n, num_classes = shape
    if num_classes <= elements:
        step = elements // num_classes
        every_class = (slice(0, num_classes),)
        return [Chunk(slice(i, min(i + step, n)), every_class) for i in range(0, n, step)]
    blocks = tuple(slice(j, min(j + elements, num_classes)) for j in range(0, num_classes, elements))
    return [Chunk(slice(i, i + 1), blocks) for i in range(n)]


@dataclass
class Scratch:
    """Named work arrays of one worker, reused from chunk to chunk within one pass (each kept at its largest)."""

    buffers: dict[str, np.ndarray] = field(default_factory=dict)

    def take(self, name: str, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
        """An uninitialized array of `shape` that stays this worker's until `name` is taken again."""
        size = int(np.prod(shape))
        buffer = self.buffers.get(name)
        if buffer is None or buffer.size < size or buffer.dtype != dtype:
            buffer = self.buffers[name] = np.empty(size, dtype=dtype)
        return buffer[:size].reshape(shape)


def run_chunks(work: Callable[[Chunk, Scratch], T], planned: list[Chunk], budget: Budget) -> list[T]:
    """`work(chunk, scratch)` on every chunk, on `budget.workers` threads when there is more than one chunk; results
    in order. Each thread has its own scratch for the pass.

    Each call runs with numpy's overflow and invalid-operation warnings off (the thread's own error state): the
    passes compute on NaN and ±inf rows on purpose and overwrite what they give there."""
    scratches: dict[int, Scratch] = {}

    def quiet(chunk: Chunk) -> T:
        scratch = scratches.setdefault(threading.get_ident(), Scratch())
        with np.errstate(over="ignore", invalid="ignore"):
            return work(chunk, scratch)

    workers = min(budget.workers, len(planned))
    if workers <= 1:
        return [quiet(chunk) for chunk in planned]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(quiet, planned))
