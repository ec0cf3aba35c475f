"""The user's layouts of extra dimensions: channels last (Keras, JAX, tf.nn) and classes first (a Keras loss given
`axis=1`, as PyTorch holds its arrays), and back to the reference's rows."""

from __future__ import annotations

import numpy as np
from hypothesis import given, strategies as st

from xentcompat.adapters.layout import classes_first, native, rows_of_classes_first


def test_classes_first_puts_each_positions_classes_on_axis_1():
    rows = np.arange(20.0).reshape(4, 5)  # (N, C) = (4, 5): n = 2 samples of d = 2 positions
    held = classes_first(rows, (2,))
    assert held.shape == (2, 5, 2)
    assert np.array_equal(held[1, :, 0], rows[2]) and np.array_equal(held[0, :, 1], rows[1])
    assert np.array_equal(native(rows, (2,))[1, 0], rows[2])  # channels last: the same position's row


@given(st.integers(1, 3), st.lists(st.integers(1, 3), min_size=0, max_size=3), st.integers(1, 6))
def test_rows_come_back_from_classes_first(n, extra_dims, classes):
    positions = n * int(np.prod(extra_dims))
    rows = np.random.default_rng(0).normal(size=(positions, classes))
    held = classes_first(rows, tuple(extra_dims))
    assert held.shape == ((n, classes, *extra_dims) if extra_dims else (positions, classes))
    assert np.array_equal(rows_of_classes_first(held, rows.shape), rows)
