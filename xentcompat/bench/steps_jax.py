"""JAX's timing path: the adapter's `rows` function under its `loss_and_pullback` (eager, op by op) or the adapter's
jitted loss-and-gradient (compiled), the result waited for (`jax.block_until_ready`). Inputs are made on the device
in the dtype."""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp

from xentcompat.bench import inputs as bench_inputs
from xentcompat.bench.steps import Captured, NoTimingPath


def check(captured: Captured) -> None:
    if not callable(captured.arguments.get("rows")):
        raise NoTimingPath("its adapter's helper is not handed a rows(x, t) function")


def device(name: str):
    return jax.devices("gpu")[0] if name == "cuda" else jax.devices("cpu")[0]


def inputs(rows: int, classes: int, dtype: str, device_name: str, targets: str) -> tuple:
    """The bench's logits and labels or probabilities, in the dtype on the device."""
    x = jax.device_put(bench_inputs.logits(rows, classes), device(device_name)).astype(dtype)
    t = jax.device_put(bench_inputs.targets(rows, classes, targets), device(device_name))
    return jax.block_until_ready(x), jax.block_until_ready(t if targets == "labels" else t.astype(dtype))


def prepare(captured: Captured, rows: int, classes: int, dtype: str, device_name: str, mode: str):
    module, arguments = captured.api.adapter, captured.arguments
    x, t = inputs(rows, classes, dtype, device_name, captured.api.targets)
    if mode == "compiled":
        def run():
            return arguments["jitted"](x, t, reduction="mean")
    else:
        def run():
            return module.loss_and_pullback(arguments["rows"], x, t, reduction="mean")

    def step():
        with jax.default_device(device(device_name)):
            jax.block_until_ready(run())

    return step


def sync(device_name: str) -> None:
    """Nothing to wait for: each step blocks on its own result."""


_PEAK_BEFORE: dict[str, int] = {}  # the GPU's peak when the current measurement began


def reset_device_peak(device_name: str) -> None:
    """XLA's peak counter cannot be reset: a measurement's peak is read only where the counter rose during it."""


def device_peak_bytes(device_name: str) -> int | None:
    """The GPU's peak allocation where it rose during this measurement (it was then this measurement's, its warm-up
    included); None where it did not (an earlier measurement in the worker reached more) or on the CPU."""
    if device_name != "cuda":
        return None
    peak = _peak_bytes_in_use(device_name)
    return peak if peak is not None and peak > _PEAK_BEFORE.get(device_name, -1) else None


def _peak_bytes_in_use(device_name: str) -> int | None:
    return (device(device_name).memory_stats() or {}).get("peak_bytes_in_use")


def release(device_name: str) -> None:
    """A measurement begins: the computations compiled for earlier ones are dropped (the inputs and results went
    with their last reference) and the GPU's peak so far is noted."""
    jax.clear_caches()
    if device_name == "cuda":
        _PEAK_BEFORE[device_name] = _peak_bytes_in_use(device_name) or 0


def device_bandwidth(device_name: str, repeats: int) -> dict | None:
    """A GPU's copy bandwidth (a 1 GiB array copied: read + write bytes / median time); None on the CPU."""
    if device_name != "cuda":
        return None
    source = jax.device_put(jnp.zeros(1 << 28, dtype=jnp.float32), device(device_name))
    copy = jax.jit(lambda a: a + 0)
    seconds = []
    for attempt in range(repeats + 1):
        start = time.perf_counter()
        jax.block_until_ready(copy(source))
        if attempt:
            seconds.append(time.perf_counter() - start)
    moved = 2 * source.size * source.dtype.itemsize
    return {"bytes_per_second": moved / statistics.median(seconds), "seconds": seconds, "bytes_moved": moved,
            "method": "jax.jit(a + 0) of a 1 GiB GPU array, read + write bytes / median time"}
