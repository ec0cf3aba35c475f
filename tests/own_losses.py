"""Callables for `xentcompat check` tests: a naive numpy loss with autodiff's gradient, and ones that do not fit."""

import numpy as np


def naive_log_softmax(logits, labels):
    """-log(softmax(x)[y]) in the dtype, its gradient by the chain rule as autodiff takes it: d(-log p)/dp = -1/p, then
    softmax's Jacobian p * (g - sum(g * p)), so a target probability that underflowed to 0 gives 0 * -inf = NaN."""
    n, rows = len(labels), np.arange(len(labels))
    with np.errstate(all="ignore"):
        exps = np.exp(logits - logits.max(axis=1, keepdims=True))
        p = exps / exps.sum(axis=1, keepdims=True)
        loss = -np.log(p[rows, labels]).mean()
        g = np.zeros_like(p)
        g[rows, labels] = -1.0 / (n * p[rows, labels])
        grad = p * (g - np.sum(g * p, axis=1, keepdims=True))
    return loss, grad


def loss_only(logits, labels):
    return np.float32(0.0)


def one_argument(logits):
    return logits


NOT_CALLABLE = 3


def aborts_on_large_vocabularies(logits, labels):
    """A kernel that kills its process at C > 1000 (a native abort), and is a correct loss elsewhere."""
    import os

    if logits.shape[1] > 1000:
        os.abort()
    exps = np.exp(logits.astype(np.float64) - logits.astype(np.float64).max(axis=1, keepdims=True))
    p = exps / exps.sum(axis=1, keepdims=True)
    rows = np.arange(len(labels))
    grad = p.copy()
    grad[rows, labels] -= 1
    return np.asarray(-np.log(p[rows, labels]).mean()).astype(logits.dtype), (grad / len(labels)).astype(logits.dtype)
