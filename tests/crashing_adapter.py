"""A fake adapter for the isolation tests: one API that aborts its process, one that answers correctly."""

from __future__ import annotations

import os

import numpy as np

from xentcompat.adapters.base import register
from xentcompat.reference.softmax_xent import solve


def versions() -> dict[str, str]:
    return {"fake": "1.0"}


def available_devices() -> dict[str, str]:
    return {"cpu": "cpu"}


def repro(api, call, logits_code) -> str:
    return f"{api.id}(x, y)"


@register("fake", "fake.aborts", "fake.aborts(x, y)")
def aborts(call):
    """A native abort (SIGABRT), as a failed C++ assert or a device-side assert does."""
    os.abort()


@register("fake", "fake.checks_labels", "fake.checks_labels(x, y)")
def checks_labels(call):
    labels = np.asarray(call.problem.labels)
    if labels.shape != (call.problem.logits.shape[0],) or np.any(labels < 0) or np.any(
            labels >= call.problem.logits.shape[1]):
        raise IndexError(f"label out of range in {labels.tolist()}")
    result = solve(call.problem)
    return result.loss, result.grad


@register("fake", "fake.ignores_labels", "fake.ignores_labels(x, y)")
def ignores_labels(call):
    """Returns a number whatever the labels hold: what `silent` means."""
    return 1.25, np.zeros_like(call.problem.logits)
