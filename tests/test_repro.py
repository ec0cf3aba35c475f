"""Reproducer literals: valid Python for every array, large one-hot targets rebuilt from their labels."""

from __future__ import annotations

import numpy as np

from xentcompat.adapters.repro import literal, probs_literal
from xentcompat.reference.case import one_hot


def evaluate(code: str):
    return eval(code, {"np": np})  # the literal is code; evaluating it must give the array back


def test_small_arrays_round_trip_with_non_finite_values():
    values = np.array([[1.5, -np.inf, np.inf], [0.0, 2.0, -3.0]])
    np.testing.assert_array_equal(np.array(evaluate(literal(values))), values)
    assert np.isnan(evaluate(literal(np.array([np.nan])))[0])


def test_large_one_hot_targets_are_rebuilt_from_labels():
    labels = np.array([0, 32767])
    probs = one_hot(labels, 32768)
    code = probs_literal(probs)
    assert code == "(np.arange(32768) == np.array([0, 32767])[:, None]).astype(float)"
    np.testing.assert_array_equal(evaluate(code), probs)


def test_large_arrays_load_from_the_case_file_by_name():
    assert literal(np.zeros((2, 1000)), "logits") == "np.load('case.npz')['logits']"
    assert probs_literal(np.full((2, 1000), 1e-3)) == "np.load('case.npz')['probs']"
    compile(f"q = {probs_literal(np.full((2, 1000), 1e-3))}, 1", "<repro>", "exec")


def test_empty_arrays_keep_their_shape_and_dtype():
    assert evaluate(literal(np.zeros((0, 5)))).shape == (0, 5)
    assert evaluate(literal(np.zeros(0, dtype=np.int64), "labels")).dtype == np.int64
