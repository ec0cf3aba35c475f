"""Helpers for copy-paste reproducers: numpy arrays as Python literals every framework accepts."""

from __future__ import annotations

import math

import numpy as np

from xentcompat.adapters.layout import native_code

MAX_LITERAL_ELEMENTS = 256


def literal(values: np.ndarray, name: str = "logits") -> str:
    """A nested-list literal of `values` (non-finite as float('inf') etc.).

    An array too large to print is loaded from the case's own `.npz` (the array `name`).
    """
    values = np.asarray(values)
    if values.size == 0:  # a literal [] would lose the shape (an empty batch keeps its class axis)
        return f"np.zeros({values.shape}, dtype={values.dtype.name!r})"
    if values.size > MAX_LITERAL_ELEMENTS:
        return f"np.load('case.npz')[{name!r}]"
    return _nested(values.tolist())


def probs_literal(probs: np.ndarray) -> str:
    """Probability targets as code; large one-hot rows (labels fed to a probability API) rebuilt from the labels."""
    probs = np.asarray(probs)
    labels = np.argmax(probs, axis=1)
    one_hot = np.arange(probs.shape[1]) == labels[:, None]
    if probs.size > MAX_LITERAL_ELEMENTS and np.array_equal(probs, one_hot):
        return f"(np.arange({probs.shape[1]}) == np.array({literal(labels, 'labels')})[:, None]).astype(float)"
    return literal(probs, "probs")


def array_code(values: np.ndarray, name: str) -> str:
    """Logits, labels or probability targets (`name`) as code."""
    return probs_literal(values) if name == "probs" else literal(values, name)


def target_lines(problem, as_labels, as_floats) -> list[str]:
    """A reproducer's `y = ...` (class indices in their own dtype) and `q = ...` (probability targets, float64) lines,
    each in the user's channels-last layout: `as_labels(code)` and `as_floats(code)` turn the numpy code into the
    framework's array."""
    extra_dims, lines = problem.options.extra_dims, []
    if problem.labels is not None:
        labels = f"np.asarray({array_code(problem.labels, 'labels')}, dtype=np.{problem.labels.dtype.name})"
        lines.append(f"y = {as_labels(labels + native_code(extra_dims))}")
    if problem.probs is not None:
        probs = f"np.asarray({array_code(problem.probs, 'probs')}, dtype=np.float64)"
        lines.append(f"q = {as_floats(probs + native_code(extra_dims, problem.num_classes))}")
    return lines


def _nested(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_nested(item) for item in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return f"float('{value}')"
    return repr(value)
