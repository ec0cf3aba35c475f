"""Helpers for copy-paste reproducers: numpy arrays as Python literals every framework accepts."""

from __future__ import annotations

import math

import numpy as np

MAX_LITERAL_ELEMENTS = 256


def literal(values: np.ndarray) -> str:
    """A nested-list literal of `values` (non-finite as float('inf') etc.); larger arrays as a numpy expression."""
    values = np.asarray(values)
    if values.size > MAX_LITERAL_ELEMENTS:
        return f"np.load('case.npz')['logits']  # {values.shape} values, too many to print"
    return _nested(values.tolist())


def _nested(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_nested(item) for item in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return f"float('{value}')"
    return repr(value)
