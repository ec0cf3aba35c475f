"""Big batches (a user's 4096 × 131072 logits): held in the smallest exact container, walked in row chunks.

A batch is *big* when its logits as float64 would take more than `big_batch_bytes()` (256 MiB by default; the
`XENTCOMPAT_BIG_BATCH_BYTES` environment variable changes it, so a test can send a 64 × 4096 batch down this path).
For a big batch a dtype's rounded logits are not a float64 copy: every float16, bfloat16 and float32 value is exact
in float32 and every float32 value in float64, so

    float64 cell: the logits as they are (float16/32/64);   float32 cell: float32 (as they are when already so);
    float16 / bfloat16 cell: rounded to the dtype, held in float32,

which the reference reads without copying and an adapter converts to its dtype exactly. Everything else that walks
a big batch (overflow checks, the logit scale, input conditions, the gradient verdict) goes by row chunks of at most
`CHUNK_ELEMENTS` elements, so its float64 temporaries stay a few tens of MiB.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np

from xentcompat.reference.dtypes import float_type

DEFAULT_BIG_BATCH_BYTES = 256 * 2**20
CHUNK_ELEMENTS = 4 * 2**20  # 32 MiB as float64
EXACT_IN_FLOAT32 = (np.float16, np.float32)


def big_batch_bytes() -> int:
    return int(os.environ.get("XENTCOMPAT_BIG_BATCH_BYTES", DEFAULT_BIG_BATCH_BYTES))


def is_big(logits) -> bool:
    """Whether the batch `logits` (any array with a shape: numpy, a framework's tensor) takes the big-batch path:
    its float64 copy would exceed the threshold."""
    shape = tuple(logits.shape) if hasattr(logits, "shape") else np.shape(logits)
    return math.prod(shape) * 8 > big_batch_bytes()


def row_slices(shape: tuple[int, ...], elements: int = CHUNK_ELEMENTS) -> Iterator[slice]:
    """Row ranges of an N × C array holding at most `elements` elements each (one row at least)."""
    rows = shape[0] if shape else 0
    step = max(1, elements // max(1, int(np.prod(shape[1:], dtype=np.int64))))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


def held_as_is(values: np.ndarray, dtype: str) -> bool:
    """Whether `dtype` holds every value of `values` exactly, so a big batch's rounded logits are `values` itself."""
    return (dtype == "float64" and values.dtype in (np.float16, np.float32, np.float64)) or \
        (dtype == "float32" and values.dtype in EXACT_IN_FLOAT32)


def rounded_compact(values: np.ndarray, dtype: str) -> np.ndarray:
    """`values` rounded to `dtype` as `round_to` rounds them, held in the smallest exact container (see above)."""
    if held_as_is(values, dtype):
        return values
    target = float_type(dtype).numpy_type
    out = np.empty(values.shape, np.float64 if dtype == "float64" else np.float32)
    with np.errstate(over="ignore"):
        for rows in row_slices(values.shape):
            out[rows] = np.asarray(values[rows], np.float64).astype(target)
    return out


def float64_unless_big(values: np.ndarray) -> np.ndarray:
    """An API's result as float64, except a big batch's, which keeps an exact container of its own dtype (float16,
    float32 or float64; bfloat16 and integers become float32 / float64) instead of an N × C float64 copy."""
    if not is_big(values):
        return values.astype(np.float64, copy=False)
    if values.dtype in (np.float16, np.float32, np.float64):
        return values
    return values.astype(np.float32 if values.dtype.name == "bfloat16" else np.float64)


def one_hot_compact(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """One-hot probability rows in float32 (0 and 1 are exact in every dtype)."""
    probs = np.zeros((len(labels), num_classes), np.float32)
    probs[np.arange(len(labels)), labels] = 1.0
    return probs


def overflowing_in_chunks(values: np.ndarray, dtype: str) -> np.ndarray:
    """The finite entries of `values` that round to ±inf in `dtype`, found row chunk by row chunk."""
    numpy_type = float_type(dtype).numpy_type
    found = []
    with np.errstate(over="ignore", invalid="ignore"):
        for rows in row_slices(np.shape(values)):
            chunk = np.asarray(values[rows], np.float64)
            found.append(chunk[np.isfinite(chunk) & ~np.isfinite(chunk.astype(numpy_type))])
    return np.concatenate(found) if found else np.zeros(0)


def largest_finite_magnitude(values: np.ndarray) -> float:
    """max |x| over the finite entries (0 when none is finite), row chunk by row chunk."""
    largest = 0.0
    for rows in row_slices(np.shape(values)):
        chunk = np.abs(np.asarray(values[rows], np.float64))
        largest = max(largest, float(np.max(chunk, where=np.isfinite(chunk), initial=0.0)))
    return largest
