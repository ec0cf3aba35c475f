"""A stand-in framework for the fake adapters of the isolation tests: its exceptions are the framework's own."""

from __future__ import annotations

import numpy as np


def checked_loss(logits: np.ndarray, labels: np.ndarray) -> None:
    """Raise IndexError, as a framework does, when a label is outside [0, C) or the label count is wrong."""
    if labels.shape != (logits.shape[0],) or np.any(labels < 0) or np.any(labels >= logits.shape[1]):
        raise IndexError(f"label out of range in {labels.tolist()}")
