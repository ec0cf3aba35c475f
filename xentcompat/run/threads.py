"""Threads per process: the processes a run starts (shards side by side, pytest-xdist workers inside a shard) share
the machine's cores, so each runs its kernels on its share of them instead of all of them.

Each framework's CPU kernels start as many OpenMP threads as there are cores; two processes that each do so on the
same cores wait on one another's spinning threads (torch's matrix on 2 cores, float32, every mode, 2 workers: 133 s,
114 s at one thread each). `OMP_NUM_THREADS` is set for the processes started, to the cores over the processes
running at once (at least 1), unless the user set it.
"""

from __future__ import annotations

import os

VARIABLE = "OMP_NUM_THREADS"


def per_process(processes: int, environ=None) -> dict[str, str]:
    """The environment entry giving each of `processes` processes its share of the cores; empty where the user set
    `OMP_NUM_THREADS` or a single process runs."""
    environ = os.environ if environ is None else environ
    if VARIABLE in environ or processes <= 1:
        return {}
    return {VARIABLE: str(max(1, (os.cpu_count() or 1) // processes))}
