"""The reference's row pass compiled, where it was built: m, k, t and the one-hot gradient's e^{x - m} c / s in one
walk per row.

`row_lse` and the scaling of `_one_hot_gradient` take five numpy passes over each row, the float64 e^x among them
(see benchmarks/oracle.py); `_rows.c` does the same arithmetic with each row in cache: the max and its first index,
e^{x_j - m} with glibc's vector exp (under 1 ulp, as numpy's) written once while summed (blocks of 128, block sums
added pairwise, the max's own term held out as `block_lse` holds it), then the scaling by c / (1 + t). It agrees with
the numpy pass within a few float64 ulps (tests/test_compiled_rows.py), not bit for bit: the two exps and the two
summation orders differ in the last digits.

It is used for one-hot coefficients on float32 and float64 logits (float16 and bfloat16 take the numpy pass), and only
where the module was built with a vector exp (x86_64 Linux); `XENTCOMPAT_NUMPY_REFERENCE=1` turns it off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

try:
    from xentcompat.reference import _rows
except ImportError:  # not built here: no compiler, or not x86_64 Linux
    _rows = None

SWITCH = "XENTCOMPAT_NUMPY_REFERENCE"
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def built() -> bool:
    """Whether the compiled row pass is here, with a vector exp."""
    return _rows is not None and bool(_rows.VECTOR_EXP)


def applies(x: np.ndarray) -> bool:
    """Whether `x`'s rows take the compiled pass: built, not switched off, and float32 or float64 logits."""
    return built() and x.dtype in DTYPES and os.environ.get(SWITCH, "") in ("", "0")


@dataclass(frozen=True)
class Rows:
    """Per row: the max m, its first index k, t = sum_{j != k} e^{x_j - m}, and whether it holds NaN or +inf."""

    m: np.ndarray
    k: np.ndarray
    t: np.ndarray
    poisoned: np.ndarray


def row_pass(x: np.ndarray, out: np.ndarray, coefficients: np.ndarray | None) -> Rows:
    """`Rows` of `x`, with e^{x - m} written to `out` (float64, x's shape), times c_i / (1 + t_i) on row i when
    `coefficients` (float64, one per row) are given. m, k, t and `out` mean nothing on a poisoned row."""
    n, c = x.shape
    x = np.ascontiguousarray(x)
    if out.dtype != np.float64 or out.shape != x.shape or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float64 array of shape {x.shape}, got {out.dtype} {out.shape}")
    rows = Rows(np.empty(n), np.empty(n, dtype=np.int64), np.empty(n), np.empty(n, dtype=np.uint8))
    weights = None if coefficients is None else np.ascontiguousarray(coefficients, dtype=np.float64)
    _rows.rows(x, n, c, x.itemsize, out, weights, rows.m, rows.k, rows.t, rows.poisoned)
    return Rows(rows.m, rows.k.astype(np.intp), rows.t, rows.poisoned.astype(bool))
