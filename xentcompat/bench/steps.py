"""The timing path: the framework call an API's adapter function makes, timed on device-resident inputs.

The adapters' own `run(Call)` takes float64 numpy logits, converts them to the framework, runs forward and backward,
and converts loss and gradient back to float64 numpy: at 8192 × 128,256 that is 8.4 GB of float64 in, 8.4 GB out,
and the conversions would dominate the time. So the bench does not time `run`; it asks it. Each adapter runs its
APIs through one helper, which the module names (`BENCH_HELPER`, with its step module `BENCH_STEPS`: `_run` in torch
and keras, `_loss_and_grad` in jax and tf_nn) and whose arguments name the
framework function the API is (the loss function, the `rows` function, the loss class and how its input is made)
and the compiled callable its compiled mode uses. The bench calls the API's `run` once on a 2 × 3 problem with that
helper replaced by a recorder, which stops the call and returns those arguments; the framework's step module then
runs exactly that function (and that compiled callable) forward and backward on inputs made on the device in the
dtype, and waits for the device. An API that does not go through its adapter's helper has no timing path and its
measurements say so; so does one whose helper is handed something other than the logits.
"""

from __future__ import annotations

import importlib
import inspect
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from xentcompat.adapters.base import Call, LossApi
from xentcompat.reference.options import Problem

PROBE_SHAPE = (2, 3)


class NoTimingPath(RuntimeError):
    """The bench cannot time this API without its adapter's conversions; the message says why."""


@dataclass(frozen=True)
class Captured:
    """What an API's adapter function handed its framework helper: the helper's arguments by name."""

    api: LossApi
    arguments: dict

    @property
    def steps(self):
        """The step module of the API's framework (inputs, the gradient step, the device sync)."""
        return importlib.import_module(self.api.adapter.BENCH_STEPS)


class _Stop(Exception):
    def __init__(self, arguments: dict):
        super().__init__("captured")
        self.arguments = arguments


def probe_call(api: LossApi) -> Call:
    """A 2 × 3 float32 eager CPU call with default options: only its shape and kind of targets matter."""
    rows, classes = PROBE_SHAPE
    logits = np.zeros(PROBE_SHAPE)
    if api.targets == "probs":
        return Call(Problem(logits, probs=np.full(PROBE_SHAPE, 1 / classes)), "float32")
    return Call(Problem(logits, labels=np.arange(rows, dtype=np.int64) % classes), "float32")


@contextmanager
def _recording(module, name: str):
    helper = getattr(module, name)
    signature = inspect.signature(helper)

    def record(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        raise _Stop(dict(bound.arguments))

    setattr(module, name, record)
    try:
        yield
    finally:
        setattr(module, name, helper)


def capture(api: LossApi) -> Captured:
    """The framework function (and compiled callable) `api`'s adapter function calls; NoTimingPath otherwise."""
    module = api.adapter
    helper = getattr(module, "BENCH_HELPER", None)
    if helper is None or not hasattr(module, helper):
        raise NoTimingPath(f"no timing path for adapter {module.__name__} (it names no BENCH_HELPER)")
    try:
        with _recording(module, helper):
            api.run(probe_call(api))
    except _Stop as stop:
        captured = Captured(api, stop.arguments)
        captured.steps.check(captured)
        return captured
    raise NoTimingPath(f"its adapter function does not call {module.__name__}.{helper}, which the bench times")


def step_module(api: LossApi) -> str | None:
    """The bench's step module for `api`'s adapter (None: the bench has no timing path for it)."""
    return getattr(api.adapter, "BENCH_STEPS", None)
