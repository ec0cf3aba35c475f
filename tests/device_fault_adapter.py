"""A fake adapter on a fake accelerator, for the device-fault tests: "cuda" here is the CPU under another name.

`fake.device_assert` behaves as a CUDA loss kernel does with an out-of-range label: the kernel's assert is reported
at the next synchronising call, which is in the adapter's own code (its copy to the host), as `AcceleratorError`
("CUDA error: device-side assert triggered"), and every device call of that process fails from then on. On the
"cpu" it raises IndexError where the label is read, as a CPU kernel does. The exception type is torch's own
`torch.AcceleratorError` where torch is installed, else a RuntimeError subclass of the same name.
"""

from __future__ import annotations

import os

import numpy as np

from tests.fake_framework import checked_loss
from xentcompat.adapters.base import register
from xentcompat.reference.softmax_xent import solve

try:
    from torch import AcceleratorError
except ImportError:  # the reference env has no torch: the same name and base class
    class AcceleratorError(RuntimeError):
        pass

_CONTEXT = {"dead": False}


def versions() -> dict[str, str]:
    return {"fake": "1.0"}


def available_devices() -> dict[str, str]:
    return {"cpu": "cpu", "cuda": "fake accelerator"}


def repro(api, call, logits_code) -> str:
    return f"{api.id}(x, y)"


def device_alive(device: str) -> None:
    if device == "cuda" and _CONTEXT["dead"]:
        raise AcceleratorError("CUDA error: device-side assert triggered")


def _copy_to_host(values, device: str):
    """Where an asynchronous device error surfaces: the first synchronising call after the kernel."""
    device_alive(device)
    return values


@register("fake", "fake.device_assert", "fake.device_assert(x, y)")
def device_assert(call):
    labels = np.asarray(call.problem.labels)
    classes = call.problem.logits.shape[1]
    out_of_range = labels.dtype.kind in "iu" and bool(np.any((labels < 0) | (labels >= classes)))
    if call.device == "cpu" or labels.shape != (call.problem.logits.shape[0],):
        checked_loss(call.problem.logits, labels)  # raised where the call is made: a bad label on the CPU, a bad shape
    if out_of_range:
        _CONTEXT["dead"] = True  # the kernel's assert: nothing is raised here, at the launch
    if out_of_range:  # what a kernel past the assert leaves is never read: the copy to the host raises
        return _copy_to_host(0.0, call.device), _copy_to_host(np.zeros_like(call.problem.logits), call.device)
    result = solve(call.problem)
    return _copy_to_host(result.loss, call.device), _copy_to_host(result.grad, call.device)


@register("fake", "fake.device_pid", "fake.device_pid(x, y)")
def device_pid(call):
    """The loss is the id of the process that ran the call."""
    return _copy_to_host(float(os.getpid()), call.device), np.zeros_like(call.problem.logits)
