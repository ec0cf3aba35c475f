"""The four floating dtypes the suite runs, their unit roundoff and range, and rounding into them.

Logits are rounded to the dtype *before* either side sees them: the framework gets the rounded values, the float64
reference computes on the very same values (exactly representable in float64 for every dtype here).
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np


@dataclass(frozen=True)
class FloatType:
    """One floating dtype: `unit_roundoff` is u = 2**-p, half the gap between 1 and the next value."""

    name: str
    numpy_type: type
    unit_roundoff: float
    largest: float
    smallest_normal: float


def _float_type(name: str, numpy_type) -> FloatType:
    info = ml_dtypes.finfo(numpy_type)
    return FloatType(
        name=name,
        numpy_type=numpy_type,
        unit_roundoff=float(info.eps) / 2,
        largest=float(info.max),
        smallest_normal=float(info.smallest_normal),
    )


DTYPES: dict[str, FloatType] = {
    "float16": _float_type("float16", np.float16),
    "bfloat16": _float_type("bfloat16", ml_dtypes.bfloat16),
    "float32": _float_type("float32", np.float32),
    "float64": _float_type("float64", np.float64),
}
DTYPE_NAMES: tuple[str, ...] = tuple(DTYPES)


def float_type(name: str) -> FloatType:
    """The FloatType called `name`; ValueError naming the known ones otherwise."""
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; known: {', '.join(DTYPE_NAMES)}") from None


def round_to(values: np.ndarray, dtype: str) -> np.ndarray:
    """`values` rounded to nearest in `dtype`, returned as float64 (every value exact in float64)."""
    with np.errstate(over="ignore"):
        return np.asarray(values, dtype=np.float64).astype(float_type(dtype).numpy_type).astype(np.float64)


def overflowing_values(values: np.ndarray, dtype: str) -> np.ndarray:
    """The finite entries of `values` that round to ±inf in `dtype` (an input-cast problem, not an API one)."""
    values = np.asarray(values, dtype=np.float64)
    return values[np.isfinite(values) & ~np.isfinite(round_to(values, dtype))]
