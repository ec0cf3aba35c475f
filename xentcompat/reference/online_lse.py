"""The log-sum-exp of each row, class block by class block (an online log-sum-exp).

For one row x, with k the (first) index of its max m, the reference needs m, k and

    t = sum_{j != k} e^{x_j - m}            (so lse = m + log1p(t), and s = 1 + t normalizes the softmax)

without ever forming 1 + t before the log (a confident row has t ~ e^-30, and 1 - p_k = t / s keeps its digits).
A class block b holding classes J_b gives, by two passes over the block, its own max m_b (first at k_b) and

    t_b = sum_{j in J_b, j != k_b} e^{x_j - m_b}.

Running over the blocks in order, with (m, k, t) the state so far (m = -inf, t = 0 before the first block), a
block whose max is larger takes over and rescales what came before, its old max included; any other block is rescaled
into the running sum, its own max included:

    m_b > m:    t <- t_b + (1 + t) e^{m - m_b},    m <- m_b,  k <- k_b
    m_b <= m:   t <- t + (1 + t_b) e^{m_b - m}                        (a tie keeps the earlier k)

Every term is >= 0, so each merge adds a relative rounding of a few ulps, no cancellation; and 1 + t is only ever
scaled by e^{m - m_b} < 1, which puts the digits it drops below t's own last one. A block of only -inf has no max
and is skipped; a block holding NaN or +inf marks its row (a row with either is NaN, see `softmax_xent`). With one
block the state is the block's own: m, k and t are exactly what one pass over the whole row computes.

Each block's e^{x_j - m_b} is left in `out` (the gradient's storage): where m_b turns out to be the row's max, the
gradient pass uses it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RowLse:
    """Per row of a chunk: the max m, its first index k, t, whether a NaN or +inf was seen, and each block's max."""

    m: np.ndarray
    k: np.ndarray
    t: np.ndarray
    poisoned: np.ndarray
    block_maxima: tuple[np.ndarray, ...]


def row_lse(x: np.ndarray, out: np.ndarray, blocks: tuple[slice, ...]) -> RowLse:
    """The online log-sum-exp of the rows of `x` over the class `blocks`, e^{x - m_b} left in `out` (same shape)."""
    rows = x.shape[0]
    m, k, t = np.full(rows, -np.inf), np.zeros(rows, dtype=np.intp), np.zeros(rows)
    poisoned = np.zeros(rows, dtype=bool)
    maxima = []
    for cols in blocks:
        m_b, k_b, t_b = block_lse(x[:, cols], out[:, cols])
        poisoned |= np.isnan(m_b) | (m_b == np.inf)
        maxima.append(m_b)
        m, k, t = merge(m, k, t, m_b, k_b + cols.start, t_b)
    return RowLse(m, k, t, poisoned, tuple(maxima))


def block_lse(x: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(m_b, k_b, t_b) of each row of the block `x`, with e^{x - m_b} written to `out`.

    Pass one: the first argmax (NaN counts as the max, so a row holding NaN gets m_b = NaN). Pass two: e^{x - m_b},
    summed with the max's own term (exactly 1) held out."""
    local = np.arange(x.shape[0])
    k = np.argmax(x, axis=1)
    m = x[local, k].astype(np.float64)
    subtract_max(x, m, out)
    np.exp(out, out=out)
    held = out[local, k]
    out[local, k] = 0.0
    t = np.sum(out, axis=1)
    out[local, k] = held
    return m, k, t


def merge(m, k, t, m_b, k_b, t_b) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The running (m, k, t) after one more block (module docstring); rows whose block has no max keep theirs."""
    seen = m_b > -np.inf  # False for a block of -inf, and for NaN
    newer = seen & (m_b > m)
    older = seen & ~newer
    taken_over = t_b + (1.0 + t) * np.exp(m - m_b)
    rescaled = t + (1.0 + t_b) * np.exp(m_b - m)
    t = np.where(newer, taken_over, np.where(older, rescaled, t))
    return np.where(newer, m_b, m), np.where(newer, k_b, k), t


def subtract_max(x: np.ndarray, m: np.ndarray, out: np.ndarray) -> np.ndarray:
    """x - m (m one per row) in float64 into `out`; narrower logits are widened first (exactly) and shifted in place,
    which is quicker than numpy's mixed-type subtraction."""
    if x.dtype == np.float64:
        return np.subtract(x, m[:, None], out=out)
    out[...] = x
    return np.subtract(out, m[:, None], out=out)
