"""A numerically stable softmax cross-entropy in numpy, loss and gradient, computed in float64 whatever the dtype
it is given and rounded back to it (the mean of the per-row losses; labels outside [0, C) raise).

`xentcompat check examples/stable_numpy.py:cross_entropy --framework numpy` passes with no deviation.
"""

import numpy as np


def cross_entropy(logits, labels):
    dtype = logits.dtype
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
        raise ValueError(f"expected {logits.shape[0]} labels, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be integers, got {labels.dtype}")
    if np.any((labels < 0) | (labels >= logits.shape[1])):
        raise IndexError(f"labels must lie in [0, {logits.shape[1]})")
    x = logits.astype(np.float64)
    n = x.shape[0]
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        top = np.max(x, axis=1, keepdims=True) if x.shape[1] else np.zeros((n, 1))
        top = np.where(top == -np.inf, 0.0, top)  # an all -inf row: no softmax; its exps are 0, a loss of inf
        shifted = x - top
        lse = np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
        log_p = shifted - lse
        rows = -log_p[np.arange(n), labels]
        grad = np.exp(log_p)
        grad[np.arange(n), labels] -= 1.0
    loss = rows.mean() if n else np.float64(np.nan)
    return np.asarray(loss).astype(dtype), (grad / max(n, 1)).astype(dtype)
