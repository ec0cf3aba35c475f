"""One jax compilation cache per run, so that eager jax compiles each distinct program once.

Eager jax lowers and compiles a program again each time a jitted function inside the loss (`jax.nn.log_softmax`,
optax's losses, a `custom_jvp`) runs under `jax.vjp`: its linearized jaxpr is a new object on every call, so jax's
in-memory caches miss, and in the eager jax shard about 38 % of the compiles were of a program the process had
already compiled. jax's persistent compilation cache gives those back (the same executable: its key is the lowered
module, the compile options, the device and the jax and XLA versions), and shares programs between a run's
processes (xdist workers, the isolation child, the jax and keras-jax shards).

The cache lives for one run only: a fresh directory made at the start and removed at the end, so every run compiles
every program it needs at least once and no run's time or results lean on an earlier one. A cache the user set up
(`JAX_COMPILATION_CACHE_DIR` already in the environment) is left as it is.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from xentcompat.adapters.base import target_named

DIRECTORY = "JAX_COMPILATION_CACHE_DIR"


def runs_jax(target: str) -> bool:
    """Whether target `target` runs jax (and so compiles each eager op)."""
    return "jax" in target_named(target).requires


def settings(directory: Path) -> dict[str, str]:
    """The environment that points jax at `directory`, caching every program however short its compile."""
    return {DIRECTORY: str(directory), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


def start(parent: Path | None = None) -> Path | None:
    """Make a fresh cache directory and set this process's environment to use it (children inherit it); None when
    the environment names a cache already (the user's, or the run's that started this process)."""
    if os.environ.get(DIRECTORY):
        return None
    directory = Path(tempfile.mkdtemp(prefix="xentcompat-jax-cache-", dir=parent))
    os.environ.update(settings(directory))
    if "jax" in sys.modules:  # imported already: it read its settings from the environment then
        _configure(sys.modules["jax"], settings(directory))
    return directory


def _configure(jax, environment: dict[str, str]) -> None:
    jax.config.update("jax_compilation_cache_dir", environment[DIRECTORY])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def stop(directory: Path | None) -> None:
    """Remove a cache `start` made (and its setting from the environment)."""
    if directory is None:
        return
    for name in settings(directory):
        os.environ.pop(name, None)
    shutil.rmtree(directory, ignore_errors=True)
