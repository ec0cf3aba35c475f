"""Error model: how far a correct implementation in a given dtype may land from the float64 reference.

Errors are measured in *units*: the dtype's unit roundoff u times the problem's own scale, so fp16 and fp32 errors
sit on one axis. A value passes when its error is at most `TOLERANCE_UNITS` units.

Cross-entropy is invariant under adding a constant to a row, and a stable implementation is accurate relative to the
logit *differences*: the scale is built from d_j = x_j - m (m the row's largest finite logit), L = log sum_j e^{d_j}
(0 <= L <= log C) and the result itself, never from |x|. Elementwise steps round to the dtype (unit u); sums
accumulate in the accumulator dtype (float32 for float16/bfloat16, as the frameworks' reductions do; else the dtype
itself) with unit u_acc, and a tree reduction of K terms adds ceil(log2 K) roundings to the largest partial sum (the
bound of the pairwise/blocked sums frameworks use; r = u_acc / u below). To first order in u:

    d_j = fl(x_j - m)                 |err| <= u |d_j|
    s = sum_j fl(e^{d_j})             rel. err <= u (sum_j p_j (1 + |d_j|) + r ceil(log2 C))
    L = fl(log s)                     |err| <= u E_L,    E_L = sum_j p_j (1 + |d_j|) + r ceil(log2 C) + L
    log p_j = fl(d_j - L)             |err| <= u (|d_j| + E_L + |d_j - L|) <= u (2 |d_j| + L + E_L)

so for one row with coefficients c_j (see `options`: one-hot, smoothed, weighted or probability targets) and K of
them non-zero,

    l = -sum_j c_j log p_j,   scale_loss = sum_j c_j (2 |d_j| + L + E_L) + [K > 1] (1 + r ceil(log2 K)) |l|

(the last term: the sum over the K terms and the rounding of l to the dtype). A sum over N counted rows adds
r ceil(log2 N) sum_i |l_i| (a tree reduction, not the worst case N - 1 of a sequential one) and the rounding of the
result, |l_sum|; a mean divides the scale by D and adds the rounding of the quotient, |l_mean|.

Gradient element g_j = (sum c) p_j - c_j, with p_j = exp(log p_j): the error of log p_j becomes a relative error of
p_j, and the subtraction rounds once:

    |dg_j| <= u ((sum c) p_j (2 |d_j| + L + E_L + 1) + |g_j|);   a mean: (... + 2 |g_j|) / D, g_j before the
                                                                    division (the quotient rounds once more).

A row's gradient is judged norm-wise: every element against the row's largest unit, since that is the size of the
step that reaches training (on logits [40, 0, 0, 0] the non-target elements are 4e-18 against a target element of
-1: zero for them is no error). The element-wise units stay available (`grad_units`) as a detail. No unit is ever
below the dtype's smallest normal (a result under it may be flushed to zero).

`TOLERANCE_UNITS` is the one constant: `TOLERANCE_MARGIN` times `CALIBRATED_MAX_UNITS`, the largest error of a
correct implementation. `tests/test_error_model.py` calibrates it from both sides: the stable algorithm of
`tests/fused_model.py`, evaluated step by step in each dtype against mpmath on adversarially searched problems, stays
below `CALIBRATED_MAX_UNITS`, while every constructed defect (a loss computed as lse - x_y with lse rounded at the
logits' magnitude, softmax applied twice, lse off by an ulp, log of an underflowed softmax) lands at least four times
above the tolerance. The margin is 2: real kernels on the catalogue land at most 1.31 units (every framework's
float64 gradient of a row 30 above the rest at 1.29, Keras' float32 gradient at 128k classes at 1.31: their sums and
logs are ordered differently from the model's, within the same bound), so twice the calibration leaves them room,
while a catalogued defect's smallest form (a float32 sum added in order that drops a few dozen terms of a 128k row,
2.9 units; Keras' probability clip on a bfloat16 row whose target is below 1e-7, 4.1 units) is above it. With a
margin of 4 those passed in one dtype and failed in the next: whether a defect was seen depended on the dtype, not
on the mechanism.

Negative class weights. The sums above are bounded by their terms' sizes: the units of a problem with signed weights
are those of the same problem with |w| (its coefficients are exactly |c|), a mean's divided by |D| rather than by
D(|w|), plus the rounding of D itself (`_Signed`).

Streaming. The units are computed as the reference is (`blocks`): per row chunk, and per class block for wide rows,
first E_L (it needs the whole row's sum_j p_j (1 + |d_j|)), then the per-class terms. The softmax p is formed block
by block from the reference's per-row normalizer, never whole, and the coefficients c are never formed whole either
(`coefficients`). Work memory stays within the budget; `GradUnits.element` (N × C) is computed only when read.
Whole one-hot rows whose numbers are all finite (every real batch) take one walk for both units, the same sums
reassociated (`_one_hot_rows`); the per-row numbers of a dtype are kept with the reference (`Result.remembered`), so
a verdict and its relations, which ask for both units again, compute them once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from typing import Callable

import numpy as np

from xentcompat.reference.blocks import DEFAULT_BUDGET, Budget, Chunk, Scratch, block_elements, chunks, run_chunks
from xentcompat.reference.coefficients import Coefficients, coefficient_block, coefficients_of
from xentcompat.reference.dtypes import float_type
from xentcompat.reference.online_lse import subtract_max
from xentcompat.reference.options import Problem, has_negative_weights, magnitudes
from xentcompat.reference.softmax_xent import Result, softmax_of_shifted, solve

ACCUMULATOR = {"float16": "float32", "bfloat16": "float32", "float32": "float32", "float64": "float64"}
CALIBRATED_MAX_UNITS = 1.25
TOLERANCE_MARGIN = 2
TOLERANCE_UNITS = TOLERANCE_MARGIN * CALIBRATED_MAX_UNITS
TEMPORARIES = 8  # float64 block-sized arrays a chunk holds at most


@dataclass(frozen=True)
class GradUnits:
    """Gradient units: per row (N × 1, the verdict's) and per element (N × C, a detail, computed when read)."""

    row: np.ndarray
    elements: Callable[[], np.ndarray] = field(repr=False, compare=False)

    @cached_property
    def element(self) -> np.ndarray:
        return self.elements()


@dataclass(frozen=True)
class _Setting:
    """What every chunk of one unit computation reads: the problem, its reference, coefficients and dtype."""

    problem: Problem
    reference: Result
    coefficients: Coefficients
    r: float
    unit: float
    smallest: float

    @property
    def mean(self) -> bool:
        return self.problem.options.reduction == "mean" and self.coefficients.denominator > 0


def _setting(problem: Problem, reference: Result, dtype: str) -> _Setting:
    kind = float_type(dtype)
    return _Setting(problem, reference, coefficients_of(problem), _accumulator_ratio(dtype), kind.unit_roundoff,
                    kind.smallest_normal)


def loss_unit(problem: Problem, reference: Result, dtype: str,
              budget: Budget = DEFAULT_BUDGET) -> float | np.ndarray:
    """One unit of loss error (u * scale) for `problem` in `dtype`: a float, or one per row for reduction none."""
    if has_negative_weights(problem.options):
        signed = _signed(problem, reference, dtype)
        return signed.units(loss_unit(signed.magnitudes, signed.reference, dtype, budget), reference.loss)
    setting = _setting(problem, reference, dtype)
    kind, r, coefficients = float_type(dtype), setting.r, setting.coefficients
    per_row = _row_units(setting, budget)
    per_class, nonzero = per_row.per_class, per_row.nonzero
    row_losses = np.where(np.isfinite(reference.row_losses), np.abs(reference.row_losses), 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        summed = np.where(nonzero > 1, 1 + r * _log2_ceil(nonzero), 0.0)
        row_scale = per_class + summed * row_losses
    row_scale = np.where(np.isfinite(row_scale), row_scale, 0.0)
    reduction = problem.options.reduction
    if reduction == "none":
        return np.maximum(kind.unit_roundoff * row_scale, kind.smallest_normal)
    counted = int(np.count_nonzero(coefficients.counted))
    loss = abs(float(reference.loss)) if np.isfinite(reference.loss) else 0.0
    scale = float(np.sum(row_scale) + r * _log2_ceil(max(counted, 1)) * np.sum(row_losses))
    if reduction == "mean" and coefficients.denominator > 0:
        scale = scale / coefficients.denominator
    return max(kind.unit_roundoff * (scale + loss), kind.smallest_normal)


def grad_units(problem: Problem, reference: Result, dtype: str, budget: Budget = DEFAULT_BUDGET,
               floor: bool = True) -> GradUnits:
    """Units of gradient error: each row's largest (the verdict's) and each element's (N × C, when read).

    `floor=False` leaves out the smallest-normal floor (for a caller that sums the units of many elements and
    accounts for flushed elements itself: `linear_errors`)."""
    if has_negative_weights(problem.options):
        signed = _signed(problem, reference, dtype)
        magnitude = grad_units(signed.magnitudes, signed.reference, dtype, budget, floor)
        grad = np.abs(reference.grad)
        return GradUnits(signed.units(magnitude.row, np.max(grad, axis=1, keepdims=True, initial=0.0)),
                         lambda: signed.units(magnitude.element, grad))
    setting = _setting(problem, reference, dtype)
    if not floor:
        setting = replace(setting, smallest=0.0)
    row = np.maximum(_row_units(setting, budget).grad, setting.smallest)[:, None]

    def elements() -> np.ndarray:
        element = np.empty(problem.logits.shape)
        _grad_pass(setting, budget, element)
        return element

    return GradUnits(row, elements)


def grad_unit(problem: Problem, reference: Result, dtype: str) -> np.ndarray:
    """One unit of gradient error per row (N × 1): the verdict judges every element of a row against it."""
    return grad_units(problem, reference, dtype).row


@dataclass(frozen=True)
class _Signed:
    """Units of a problem with negative class weights, from those of its magnitudes (every weight w as |w|).

    Each sum of c-weighted terms is bounded by the same sum with |c|, so the magnitudes' units bound the signed
    problem's, except where a weighted mean divides: there by the signed total D rather than by D(|w|) (`factor` =
    D(|w|) / |D|), and D itself, a sum of N_counted weights in the accumulator, carries a relative error of
    r ceil(log2 N) D(|w|) / |D| (`relative`), which reaches the loss and every gradient element in proportion."""

    magnitudes: Problem
    reference: Result
    factor: float
    relative: float
    unit: float

    def units(self, magnitude_units, values):
        with np.errstate(invalid="ignore"):
            sizes = np.where(np.isfinite(values), np.abs(values), 0.0)
        return self.factor * magnitude_units + self.unit * self.relative * sizes


def _signed(problem: Problem, reference: Result, dtype: str) -> _Signed:
    magnitude = magnitudes(problem)
    magnitude_reference = reference.remembered("magnitudes", lambda: solve(magnitude))
    factor, relative = 1.0, 0.0
    if problem.options.reduction == "mean" and problem.labels is not None and problem.options.mean_over == "weight":
        signed_total, total = coefficients_of(problem), coefficients_of(magnitude).denominator
        factor = total / abs(signed_total.denominator)
        counted = int(np.count_nonzero(signed_total.counted))
        relative = _accumulator_ratio(dtype) * _log2_ceil(max(counted, 1)) * factor
    return _Signed(magnitude, magnitude_reference, factor, relative, float_type(dtype).unit_roundoff)


def _accumulator_ratio(dtype: str) -> float:
    """r = u_acc / u: how much a rounding in the accumulator weighs against one in the dtype."""
    return float_type(ACCUMULATOR[dtype]).unit_roundoff / float_type(dtype).unit_roundoff


def _grad_pass(setting: _Setting, budget: Budget, element: np.ndarray) -> None:
    """Every element's gradient unit into `element`."""
    row = np.empty((setting.problem.logits.shape[0], 1))
    work = partial(_grad_chunk, setting, row, element)
    run_chunks(work, chunks(setting.problem.logits.shape, block_elements(budget, TEMPORARIES)), budget)


@dataclass(frozen=True)
class _RowUnits:
    """Per row: the loss's per-class sum (`_loss_chunk`), its count of c_j > 0, and the largest gradient unit
    without the smallest-normal floor."""

    per_class: np.ndarray
    nonzero: np.ndarray
    grad: np.ndarray


def _row_units(setting: _Setting, budget: Budget) -> _RowUnits:
    """The per-row numbers of both units in `setting`'s dtype, computed in one pass and kept with the reference
    (a verdict asks for the loss and gradient units, its relations ask again)."""
    key = ("error-model rows", setting.unit, setting.r, budget)
    problem, found = setting.reference.remembered(key, lambda: (setting.problem, _row_pass(setting, budget)))
    return found if problem is setting.problem else _row_pass(setting, budget)


def _row_pass(setting: _Setting, budget: Budget) -> _RowUnits:
    n = setting.problem.logits.shape[0]
    per_row = _RowUnits(np.empty(n), np.empty(n, dtype=np.intp), np.empty(n))
    unfloored = replace(setting, smallest=0.0)

    def work(chunk: Chunk, scratch: Scratch) -> None:
        if not _one_hot_rows(unfloored, per_row, chunk, scratch):
            _loss_chunk(unfloored, per_row.per_class, per_row.nonzero, chunk, scratch)
            _grad_chunk(unfloored, per_row.grad[:, None], None, chunk, scratch)

    run_chunks(work, chunks(setting.problem.logits.shape, block_elements(budget, TEMPORARIES)), budget)
    return per_row


def _one_hot_rows(setting: _Setting, per_row: _RowUnits, chunk: Chunk, scratch: Scratch) -> bool:
    """Both units' per-row numbers for a chunk of whole one-hot rows in one walk over its elements, or False (and
    nothing written) where a counted row is undefined or any of its numbers is not finite (a -inf logit, an
    overflowed gradient): such a chunk takes `_loss_chunk` and `_grad_chunk`, which treat each case.

    With d = x - m <= 0, e = e^d (the reference's own shift and total s, so p = e / s), the same sums reassociated:
    sum_j p_j (1 + |d_j|) = sum_j (1 - d_j) e_j / s, and each element's gradient unit
    u ((sum c) p_j (2 |d_j| + A) + k |g_j|) / D = u k (f (A - 2 d_j) e_j + |g_j|),  A = L + E_L + 1,  f = c' / (k s),
    with k = 2 and c' = (sum c) / D for a mean (k = 1, c' = sum c, D = 1 otherwise)."""
    coefficients, normalizer, rows = setting.coefficients, setting.reference.normalizer, chunk.rows
    if not (coefficients.one_hot and chunk.whole):
        return False
    counted = coefficients.counted[rows]
    if np.any(counted & normalizer.undefined[rows]):
        return False
    x = setting.problem.logits[rows]
    m, s = normalizer.shift[rows], normalizer.total[rows]
    d = subtract_max(x, m, scratch.take("abs_d", x.shape))
    e = np.exp(d, out=scratch.take("p", x.shape))
    work = np.subtract(1.0, d, out=scratch.take("work", x.shape))
    work *= e
    lse = setting.reference.lse[rows]
    big_l = np.where(np.isfinite(lse), np.maximum(lse - m, 0.0), 0.0)
    e_l = np.sum(work, axis=1) / s + setting.r * _log2_ceil(x.shape[1]) + big_l
    k, c = (2.0, coefficients.label_coefficient[rows] / coefficients.denominator) if setting.mean else (
        1.0, coefficients.label_coefficient[rows])
    f = c / (k * s)
    np.multiply(d, (-2.0 * f)[:, None], out=work)
    work += ((big_l + e_l + 1.0) * f)[:, None]
    work *= e
    work += np.abs(setting.reference.grad[rows], out=scratch.take("units", x.shape))
    largest = np.max(work, axis=1) * (k * setting.unit)
    per_class, nonzero = _one_hot_loss_terms(setting, rows, _Rows(m, big_l, e_l))
    if not (np.all(np.isfinite(largest[counted])) and np.all(np.isfinite(e_l[counted]))):
        return False
    per_row.per_class[rows], per_row.nonzero[rows] = per_class, nonzero
    per_row.grad[rows] = np.where(counted, largest, setting.smallest)
    return True


@dataclass(frozen=True)
class _Rows:
    """Per row of a chunk: m (the largest finite logit, 0 if none), L and E_L of the module docstring."""

    m: np.ndarray
    big_l: np.ndarray
    e_l: np.ndarray


@dataclass(frozen=True)
class _Block:
    """One block of a chunk: where the logits are finite (and whether all are), |d| (0 where x is not finite), the
    reference's p (0 where it is NaN) and each row's count of finite logits."""

    finite: np.ndarray
    all_finite: bool
    abs_d: np.ndarray
    p: np.ndarray
    classes: np.ndarray


def _row_terms(setting: _Setting, chunk: Chunk, scratch: Scratch) -> tuple[_Rows, _Block | None]:
    """(m, L, E_L) for the chunk's rows, with the chunk's one block when it has one (so it is formed once)."""
    normalizer, rows = setting.reference.normalizer, chunk.rows
    live = normalizer.counted[rows] & ~normalizer.undefined[rows]
    m = _finite_max(setting.problem.logits[rows], chunk.blocks, np.where(live, normalizer.shift[rows], 0.0), live)
    spread, classes, kept = np.zeros(len(m)), np.zeros(len(m), dtype=np.intp), None
    for cols in chunk.blocks:
        block = _block(setting, rows, cols, m, scratch)
        weighted = np.add(block.abs_d, 1.0, out=scratch.take("work", block.p.shape))
        spread += np.sum(np.multiply(weighted, block.p, out=weighted), axis=1)
        classes += block.classes
        kept = block if chunk.whole else None
    lse = setting.reference.lse[rows]
    big_l = np.where(np.isfinite(lse), np.maximum(lse - m, 0.0), 0.0)
    e_l = spread + setting.r * _log2_ceil(np.maximum(classes, 1)) + big_l
    return _Rows(m, big_l, e_l), kept


def _finite_max(x: np.ndarray, blocks: tuple[slice, ...], known_m: np.ndarray, known: np.ndarray) -> np.ndarray:
    """The largest finite logit of each row (0 if none); rows `known` take `known_m` (the reference's max)."""
    unknown = np.flatnonzero(~known)
    if unknown.size == 0:
        return known_m
    m = np.full(unknown.size, -np.inf)
    for cols in blocks:
        block = np.asarray(x[unknown, cols], dtype=np.float64)
        m = np.maximum(m, np.max(np.where(np.isfinite(block), block, -np.inf), axis=1, initial=-np.inf))
    known_m = known_m.copy()
    known_m[unknown] = np.where(np.isfinite(m), m, 0.0)
    return known_m


def _block(setting: _Setting, rows: slice, cols: slice, m: np.ndarray, scratch: Scratch) -> _Block:
    """The block's terms (see `_Block`), in the worker's scratch. m is the reference's own max on every row whose
    softmax exists, so x - m gives both d and the reference's p there."""
    x = setting.problem.logits[rows, cols]
    finite = np.isfinite(x, out=scratch.take("finite", x.shape, bool))
    all_finite = bool(finite.all())
    classes = np.full(x.shape[0], x.shape[1]) if all_finite else np.count_nonzero(finite, axis=1)
    d = subtract_max(x, m, scratch.take("abs_d", x.shape))
    p = softmax_of_shifted(setting.reference.normalizer, rows, d, out=scratch.take("p", x.shape))
    p[setting.reference.normalizer.undefined[rows]] = 0.0
    np.abs(d, out=d)
    if not all_finite:
        d[~finite] = 0.0
    return _Block(finite, all_finite, d, p, classes)


def _loss_chunk(setting: _Setting, per_class: np.ndarray, nonzero: np.ndarray, chunk: Chunk,
                scratch: Scratch) -> None:
    """Per row: sum_j c_j (2 |d_j| + L + E_L) over finite x_j with c_j > 0, and how many c_j > 0."""
    rows, coefficients = chunk.rows, setting.coefficients
    terms, kept = _row_terms(setting, chunk, scratch)
    if coefficients.one_hot:
        per_class[rows], nonzero[rows] = _one_hot_loss_terms(setting, rows, terms)
        return
    total, count = np.zeros(len(terms.m)), np.zeros(len(terms.m), dtype=np.intp)
    for cols in chunk.blocks:
        block = kept or _block(setting, rows, cols, terms.m, scratch)
        c = coefficient_block(coefficients, rows, cols, out=scratch.take("c", block.p.shape))
        weighted = np.multiply(block.abs_d, 2.0, out=scratch.take("work", c.shape))
        weighted += terms.big_l[:, None]
        weighted += terms.e_l[:, None]
        weighted *= c
        counted = np.greater(c, 0.0, out=scratch.take("c > 0", c.shape, bool))
        count += np.count_nonzero(counted, axis=1)
        counted &= block.finite
        weighted[~counted] = 0.0
        total += np.sum(weighted, axis=1)
    per_class[rows], nonzero[rows] = total, count


def _one_hot_loss_terms(setting: _Setting, rows: slice, terms: _Rows) -> tuple[np.ndarray, np.ndarray]:
    """One-hot rows: c_y (2 |d_y| + L + E_L) where x_y is finite and c_y > 0 (else 0), and whether c_y > 0."""
    coefficients = setting.coefficients
    c = coefficients.label_coefficient[rows]
    x_y = setting.problem.logits[rows][np.arange(len(c)), coefficients.labels[rows]].astype(np.float64)
    finite_y = np.isfinite(x_y)
    at_label = c * (2 * np.abs(np.where(finite_y, x_y - terms.m, 0.0)) + terms.big_l + terms.e_l)
    return np.where(finite_y & (c > 0), at_label, 0.0), c > 0


def _grad_chunk(setting: _Setting, row: np.ndarray, element: np.ndarray | None, chunk: Chunk,
                scratch: Scratch) -> None:
    """Each element's unit u * ((sum c) p_j (2 |d_j| + L + E_L + 1) + |g_j|) (a mean: |g_j| twice, g before the
    division by D, all of it divided by D), at least the smallest normal; the row's largest into `row`."""
    rows, coefficients = chunk.rows, setting.coefficients
    terms, kept = _row_terms(setting, chunk, scratch)
    c_sum = _coefficient_sums(coefficients, chunk, scratch)[:, None]
    largest = np.full(len(terms.m), setting.smallest)
    for cols in chunk.blocks:
        block = kept or _block(setting, rows, cols, terms.m, scratch)
        out = scratch.take("units", block.p.shape) if element is None else element[rows, cols]
        units = _element_units(setting, block, terms, c_sum, setting.reference.grad[rows, cols], out, scratch)
        largest = np.maximum(largest, np.max(units, axis=1, initial=setting.smallest))
    row[rows, 0] = largest


def _element_units(setting: _Setting, block: _Block, terms: _Rows, c_sum, grad, out, scratch: Scratch) -> np.ndarray:
    """The units of one block of gradient elements, into `out`."""
    work = np.multiply(block.abs_d, 2.0, out=scratch.take("work", out.shape))
    work += (terms.big_l + terms.e_l + 1.0)[:, None]
    if not block.all_finite:
        work[~block.finite] = 0.0
    scale = np.multiply(c_sum, block.p, out=out)
    scale *= work
    g = np.abs(grad, out=work)
    _zero_where_not_finite(g, scratch)
    if setting.mean:
        g *= setting.coefficients.denominator
        g *= 2
    scale += g
    _zero_where_not_finite(scale, scratch)
    if setting.mean:
        scale /= setting.coefficients.denominator
    scale *= setting.unit
    return np.maximum(scale, setting.smallest, out=scale)


def _zero_where_not_finite(values: np.ndarray, scratch: Scratch) -> None:
    finite = np.isfinite(values, out=scratch.take("finite values", values.shape, bool))
    if not finite.all():
        values[~finite] = 0.0


def _coefficient_sums(coefficients: Coefficients, chunk: Chunk, scratch: Scratch) -> np.ndarray:
    """sum_j c_j for each row of the chunk (c_y itself for one-hot rows)."""
    rows = chunk.rows
    if coefficients.one_hot:
        return coefficients.label_coefficient[rows]
    total = np.zeros(rows.stop - rows.start)
    for cols in chunk.blocks:
        block = scratch.take("c", (rows.stop - rows.start, cols.stop - cols.start))
        total += np.sum(coefficient_block(coefficients, rows, cols, out=block), axis=1)
    return total


def _log2_ceil(count) -> np.ndarray | int:
    """ceil(log2 count) for counts >= 1 (0 for a single term)."""
    if np.ndim(count) == 0:
        return math.ceil(math.log2(max(int(count), 1)))
    return np.ceil(np.log2(np.maximum(count, 1))).astype(np.float64)
