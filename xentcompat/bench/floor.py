"""The memory-bandwidth floor: no implementation can be faster than moving the bytes it must move.

A fused forward + backward must at least read the logits (N·V·s bytes, s the itemsize) and write their gradient
(N·V·s), and read the targets: N int64 labels (8 N bytes) or N·V probabilities (N·V·s). So

    floor = bytes_to_move / bandwidth,

with the bandwidth measured on this machine in the same run: a copy of a buffer far larger than the caches, split
over the CPUs in threads (numpy releases the GIL while it copies), bytes moved = read + write, the median of repeats.
An API's time is shown as a ratio to the floor and to the fastest API measured at the same shape, dtype and device.
"""

from __future__ import annotations

import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from xentcompat.bench.grid import ITEMSIZE, LABEL_ITEMSIZE

COPY_BYTES = 1 << 29  # 512 MiB read, 512 MiB written per repeat


def bytes_to_move(rows: int, classes: int, dtype: str, targets: str = "labels") -> int:
    """Logits read, gradient written, targets read: the least a forward + backward must move."""
    logits = rows * classes * ITEMSIZE[dtype]
    target_bytes = rows * LABEL_ITEMSIZE if targets == "labels" else logits
    return 2 * logits + target_bytes


def floor_seconds(moved: int, bytes_per_second: float) -> float:
    return moved / bytes_per_second


def ratio(seconds: float | None, reference: float | None) -> float | None:
    """`seconds / reference`, or None when either is unknown (a failed measurement, no bandwidth)."""
    if seconds is None or not reference:
        return None
    return seconds / reference


def fastest(medians: list[float | None]) -> float | None:
    known = [m for m in medians if m is not None]
    return min(known) if known else None


def measure_bandwidth(repeats: int = 5, size: int = COPY_BYTES, threads: int | None = None) -> dict:
    """The host's copy bandwidth: {"bytes_per_second" (median), "seconds" (each repeat), "bytes_moved", "threads",
    "method"}. One warm-up copy (page faults) is not counted."""
    threads = threads or os.cpu_count() or 1
    source = np.ones(size // 8, dtype=np.float64)
    target = np.empty_like(source)
    slices = [slice(i * len(source) // threads, (i + 1) * len(source) // threads) for i in range(threads)]
    seconds = []
    with ThreadPoolExecutor(threads) as pool:
        for attempt in range(repeats + 1):
            start = time.perf_counter()
            list(pool.map(lambda part: np.copyto(target[part], source[part]), slices))
            if attempt:
                seconds.append(time.perf_counter() - start)
    moved = 2 * source.nbytes
    return {"bytes_per_second": moved / statistics.median(seconds), "seconds": seconds, "bytes_moved": moved,
            "threads": threads, "method": f"numpy copy of {source.nbytes >> 20} MiB in {threads} threads, "
                                          "read + write bytes / median time"}
