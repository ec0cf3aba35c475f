"""Timing one step: a warm-up call apart (for a compiled mode it holds the trace and compile), then `repeats` timed
calls; their median and spread; the process's peak memory over the timed calls.

Peak host memory is the peak resident set (VmHWM) above the baseline taken after the framework was imported: the
kernel's high-water mark is reset (`echo 5 > /proc/self/clear_refs`) after the warm-up, so the peak is that of the
timed calls, inputs included. Where the mark cannot be reset, the process's lifetime peak (getrusage) is used and
the method says so. On CUDA the framework's own peak allocation counter is used instead.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable

CLEAR_REFS = "/proc/self/clear_refs"
STATUS = "/proc/self/status"


@dataclass(frozen=True)
class Timing:
    first_call: float  # the warm-up: for a compiled mode, trace + compile + one run
    seconds: list[float]  # the timed repeats

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def summary(self, compiled: bool) -> dict:
        low, high = quartiles(self.seconds)
        return {"seconds": self.seconds, "median_seconds": self.median, "min_seconds": min(self.seconds),
                "max_seconds": max(self.seconds), "q1_seconds": low, "q3_seconds": high,
                "first_call_seconds": self.first_call,
                "compile_seconds": max(0.0, self.first_call - self.median) if compiled else None}


def quartiles(values: list[float]) -> tuple[float, float]:
    """(Q1, Q3) by the inclusive method (each a value between samples); one sample: itself twice."""
    if len(values) < 2:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


def time_step(step: Callable[[], None], repeats: int, after_warm_up: Callable[[], None] = lambda: None) -> Timing:
    """Call `step` once (not counted), run `after_warm_up` (a peak-memory reset), then time `repeats` calls."""
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    after_warm_up()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    return Timing(first, seconds)


def status_bytes(field: str) -> int | None:
    """A /proc/self/status memory field (VmRSS, VmHWM) in bytes, or None where there is none."""
    try:
        with open(STATUS, encoding="ascii") as stream:
            for line in stream:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS; whether it could be."""
    try:
        with open(CLEAR_REFS, "w", encoding="ascii") as stream:
            stream.write("5")
        return True
    except OSError:
        return False


def host_peak_bytes(was_reset: bool) -> tuple[int, str]:
    """(peak resident bytes, method): VmHWM (since the reset, if `was_reset`), else the lifetime peak (getrusage)."""
    peak = status_bytes("VmHWM")
    if peak is not None:
        return peak, "VmHWM, reset after the warm-up" if was_reset else "VmHWM, process lifetime (no reset)"
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, "getrusage ru_maxrss (process lifetime)"


def current_rss() -> int:
    found = status_bytes("VmRSS")
    if found is not None:
        return found
    return host_peak_bytes(False)[0]
