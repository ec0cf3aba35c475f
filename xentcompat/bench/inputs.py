"""The bench's inputs, the same numbers in every framework: normal logits (std 2), uniform int64 labels, softmax
probabilities, made in float32 by row blocks (no N × V temporary beyond the array itself) for the framework to
convert to its dtype on its device."""

from __future__ import annotations

import numpy as np

BLOCK_ROWS = 256
SEED = 0


def logits(rows: int, classes: int) -> np.ndarray:
    generator = np.random.default_rng(SEED)
    out = np.empty((rows, classes), dtype=np.float32)
    for start in range(0, rows, BLOCK_ROWS):
        block = out[start:start + BLOCK_ROWS]
        generator.standard_normal(out=block, dtype=np.float32)
        block *= 2
    return out


def labels(rows: int, classes: int) -> np.ndarray:
    return np.random.default_rng(SEED + 1).integers(0, classes, size=rows, dtype=np.int64)


def probs(rows: int, classes: int) -> np.ndarray:
    """Softmax rows of other normal logits, each summing to 1."""
    out = logits(rows, classes)
    for start in range(0, rows, BLOCK_ROWS):
        block = out[start:start + BLOCK_ROWS]
        block -= block.max(axis=1, keepdims=True)
        np.exp(block, out=block)
        block /= block.sum(axis=1, keepdims=True)
    return out


def targets(rows: int, classes: int, kind: str) -> np.ndarray:
    return labels(rows, classes) if kind == "labels" else probs(rows, classes)
