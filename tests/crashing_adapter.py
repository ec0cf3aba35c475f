"""Fake adapters for the isolation tests: one API that aborts its process, one that answers correctly (or raises
through its framework), one that answers whatever the input, one that tells which process ran it, and one whose
adapter code itself is broken."""

from __future__ import annotations

import os

import numpy as np

from tests.fake_framework import checked_loss
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
    checked_loss(call.problem.logits, np.asarray(call.problem.labels))
    result = solve(call.problem)
    return result.loss, result.grad


@register("fake", "fake.exact", "fake.exact(x, y)")
def exact(call):
    """The float64 reference itself, every option honoured (ignore_index included)."""
    result = solve(call.problem)
    return result.loss, result.grad


@register("fake", "fake.ignores_labels", "fake.ignores_labels(x, y)")
def ignores_labels(call):
    """Returns a number whatever the labels hold: what `silent` means."""
    return 1.25, np.zeros_like(call.problem.logits)


@register("fake", "fake.reports_its_process", "fake.reports_its_process(x, y)")
def reports_its_process(call):
    """The loss is the id of the process that ran the call."""
    return float(os.getpid()), np.zeros_like(call.problem.logits)


@register("fake", "fake.broken_conversion", "fake.broken_conversion(x, y)")
def broken_conversion(call):
    """An adapter bug: a name that does not exist, in the adapter's own label conversion."""
    labels = np.asarray(call.problem.labels, dtype=np.int64)
    return undefined_name(labels)  # noqa: F821


@register("fake", "fake.not_shift_invariant", "fake.not_shift_invariant(x, y)")
def not_shift_invariant(call):
    """Right, except on rows whose largest logit is 0 (as the shift makes them): there the loss is 1 too large."""
    result = solve(call.problem)
    return result.loss + float(np.all(np.max(call.problem.logits, axis=1) == 0)), result.grad


@register("fake", "fake.off_by_one", "fake.off_by_one(x, y)")
def off_by_one(call):
    """The loss 1.0 too large on every input."""
    result = solve(call.problem)
    return result.loss + 1.0, result.grad


@register("fake", "fake.one_row_off", "fake.one_row_off(x, y)")
def one_row_off(call):
    """Right, except the last row's loss is 6 of its units too large; a mean carries 1/N of that."""
    from dataclasses import replace

    from xentcompat.reference.errors import loss_unit

    problem = call.problem
    rows = replace(problem, options=replace(problem.options, reduction="none"))
    per_row = solve(rows)
    off = np.zeros(problem.logits.shape[0])
    off[-1] = 6 * np.asarray(loss_unit(rows, per_row, call.dtype))[-1]
    result = solve(problem)
    reduced = {"none": off, "sum": off.sum(), "mean": off.mean()}[problem.options.reduction]
    return result.loss + reduced, result.grad
