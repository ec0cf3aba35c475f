"""Channels-last layout of extra dimensions (Keras, JAX, tf.nn): the reference's rows as a user holds them; and the
classes-first layout `(n, C, d1, ...)` of a Keras loss given `axis=1`.

PyTorch puts classes second, `(N, C, d1, ...)`: its adapter has its own.
"""

from __future__ import annotations

import numpy as np


def native(values: np.ndarray, extra_dims: tuple[int, ...]) -> np.ndarray:
    """Rows as the user holds them for `extra_dims` (d1, ...): (N, C) -> (n, d1, ..., C), (N,) -> (n, d1, ...).

    No extra dims: the array as it is (a label array of the wrong length included).
    """
    return values.reshape(-1, *extra_dims, *values.shape[1:]) if extra_dims else values


def classes_first(values: np.ndarray, extra_dims: tuple[int, ...]) -> np.ndarray:
    """Rows as `(n, C, d1, ...)` (the classes on axis 1): `native`, then the class axis moved to 1."""
    return np.moveaxis(native(values, extra_dims), -1, 1) if extra_dims else values


def rows_of_classes_first(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """`classes_first` undone: `(n, C, d1, ...)` -> the reference's rows of `shape` (N, C)."""
    return np.moveaxis(values, 1, -1).reshape(shape) if values.ndim > 2 else values.reshape(shape)


def native_code(extra_dims: tuple[int, ...], num_classes: int | None = None) -> str:
    """`native` as code appended to an array: logits and probabilities given `num_classes`, labels without."""
    if not extra_dims:
        return ""
    shape = (-1, *extra_dims) + (() if num_classes is None else (num_classes,))
    return f".reshape({', '.join(map(str, shape))})"
