"""Keras' timing path: the adapter's loss object and input (`_loss_of`: logits, a Softmax layer, the backend's softmax
or exp), its gradient by the backend's autodiff as the adapter takes it (eager), or the adapter's compiled
loss-and-gradient (`_compiled`: XLA on TensorFlow and JAX). Inputs, device sync and peak memory are the backend's
(the torch, JAX or TensorFlow step module)."""

from __future__ import annotations

import importlib

import keras

from xentcompat.bench.steps import Captured, NoTimingPath

BACKEND = keras.backend.backend()
_BACKEND_STEPS = {"torch": "xentcompat.bench.steps_torch", "jax": "xentcompat.bench.steps_jax",
                  "tensorflow": "xentcompat.bench.steps_tf"}
backend_steps = importlib.import_module(_BACKEND_STEPS[BACKEND])


def check(captured: Captured) -> None:
    if "loss_class" not in captured.arguments:
        raise NoTimingPath("its adapter's helper is not handed a Keras loss class")


def _gradient(loss_of, x, t):
    """d loss / d x by the backend's autodiff, pulling back ones as the adapter does."""
    if BACKEND == "tensorflow":
        import tensorflow as tf
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = loss_of(x, t, None)
        return tape.gradient(loss, x)
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp
        loss, pullback = jax.vjp(lambda x: loss_of(x, t, None), x)
        return jax.block_until_ready(pullback(jnp.ones_like(loss)))
    x.grad = None
    loss_of(x, t, None).backward()
    return x.grad


def prepare(captured: Captured, rows: int, classes: int, dtype: str, device: str, mode: str):
    module, arguments = captured.api.adapter, captured.arguments
    chosen = (arguments["loss_class"], arguments["from_logits"], arguments["predict"], (), dtype)
    with keras.device(module.KERAS_DEVICES[device]):
        x, t = backend_steps.inputs(rows, classes, dtype, device, captured.api.targets)
    compiled = module._compiled(*chosen) if mode == "compiled" else None
    loss_of = module._loss_of(*chosen)

    def step():
        with keras.device(module.KERAS_DEVICES[device]):
            result = compiled(x, t, None) if compiled else _gradient(loss_of, x, t)
            if BACKEND == "jax":
                import jax
                jax.block_until_ready(result)
        backend_steps.sync(device)

    return step


def sync(device: str) -> None:
    backend_steps.sync(device)


def reset_device_peak(device: str) -> None:
    backend_steps.reset_device_peak(device)


def device_peak_bytes(device: str) -> int | None:
    return backend_steps.device_peak_bytes(device)


def release(device: str) -> None:
    backend_steps.release(device)


def device_bandwidth(device: str, repeats: int) -> dict | None:
    return backend_steps.device_bandwidth(device, repeats)
