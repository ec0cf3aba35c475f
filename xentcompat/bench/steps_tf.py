"""TensorFlow's timing path: the adapter's `rows` op under its `loss_and_gradient` tape (eager) or the adapter's
`tf.function(jit_compile=True)` (compiled), on the device, the device waited for. Inputs are made on the device in
the dtype."""

from __future__ import annotations

import tensorflow as tf

from xentcompat.bench import inputs as bench_inputs
from xentcompat.bench.steps import Captured, NoTimingPath

DEVICES = {"cpu": "/CPU:0", "cuda": "/GPU:0"}


def check(captured: Captured) -> None:
    if not callable(captured.arguments.get("rows")):
        raise NoTimingPath("its adapter's helper is not handed a rows(x, t) function")


def inputs(rows: int, classes: int, dtype: str, device: str, targets: str) -> tuple:
    """The bench's logits and labels or probabilities, in the dtype on the device."""
    with tf.device(DEVICES[device]):
        x = tf.cast(tf.constant(bench_inputs.logits(rows, classes)), dtype)
        t = tf.constant(bench_inputs.targets(rows, classes, targets))
        return x, (t if targets == "labels" else tf.cast(t, dtype))


def prepare(captured: Captured, rows: int, classes: int, dtype: str, device: str, mode: str):
    module, arguments = captured.api.adapter, captured.arguments
    x, t = inputs(rows, classes, dtype, device, captured.api.targets)

    def step():
        with tf.device(DEVICES[device]):
            if mode == "compiled":
                arguments["xla"](x, t, "mean")
            else:
                module.loss_and_gradient(arguments["rows"], x, t, "mean")
        sync(device)

    return step


def sync(device: str) -> None:
    """Eager CPU ops have finished when they return; a GPU's queue is drained."""
    if device == "cuda":
        tf.test.experimental.sync_devices()


def reset_device_peak(device: str) -> None:
    if device == "cuda":
        tf.config.experimental.reset_memory_stats("GPU:0")


def device_peak_bytes(device: str) -> int | None:
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] if device == "cuda" else None


def release(device: str) -> None:
    """Nothing to release: the inputs and results go with their last reference."""


def device_bandwidth(device: str, repeats: int) -> dict | None:
    """Not measured with TensorFlow: a GPU floor comes from a torch or JAX target on the same machine."""
    return None
