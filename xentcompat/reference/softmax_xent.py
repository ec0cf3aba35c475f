"""Float64 softmax cross-entropy: loss and d(loss)/d(logits), every option, defined on non-finite logits.

For one row x with coefficients c (see `options`), k the (first) index of the max m, e_j = exp(x_j - m),
t = sum_{j != k} e_j and s = 1 + t:

    l = sum_j c_j * (m - x_j) + (sum_j c_j) * log1p(t)          (every term >= 0: no cancellation)
    dl/dx_j = (sum_c - c_j) * p_j - c_j * (1 - p_j),   p_j = e_j / s,   1 - p_j = (s - e_j) / s  (= t / s at k)

so a confident row keeps full relative accuracy in both loss and gradient (1 - p_k is never formed by subtraction).
With one-hot coefficients (class-index targets, no smoothing: c = w_y at the label y only) this is
dl/dx_j = e_j * (w_y / s) off the label and -w_y * (1 - p_y) at it.

Non-finite logits, row by row:
* a -inf logit has p = 0 and gradient 0 where its coefficient is 0 (0 * log 0 = 0); where its coefficient is > 0
  (the target is masked) the loss is +inf and the gradient stays finite (-c_j there);
* a row that is all -inf has no softmax (0 / 0): loss and gradient NaN;
* a row holding +inf or NaN: loss and gradient NaN (inf - inf in the shift). For a single +inf at a non-target the
  limit x_k -> +inf exists (loss +inf, gradient p - y with p one-hot at k), but +inf in a logit is an overflow,
  not a limit: the row's other logits no longer say anything, every stable implementation computes inf - inf there,
  and the convention here is the IEEE one, NaN. An API that returns the limit instead reads `inf`/`finite` and is
  a finding with its numbers, not silently ok;
* a row whose label is `ignore_index` contributes 0 and gradient 0, whatever its logits hold (its softmax is that
  of a row of zeros, 1 / C);
* a mean over nothing (every row ignored, or zero total weight) is NaN; its gradient is 0 (NaN in undefined rows).

Negative class weights: the problem splits into its positive and negative weights (`options.weight_parts`), each
solved as above and summed, and the difference divided by the signed total weight where a mean is due.

Streaming. The batch is walked in row chunks and, for rows wider than a block, class blocks (`blocks`); m, k and t
come from the online log-sum-exp of `online_lse` (running max and rescaled sum), then a second pass over the same
blocks writes the gradient in place of the e_j that the first one left there. Beyond the logits, the targets and the
outputs (the N × C gradient and a few numbers per row) the work memory is at most the budget's `work_bytes` (64 MiB by
default), whatever N and C. No N × C coefficient matrix and no softmax is formed: `Result.softmax` is computed when
read (an N × C float64 array then), from the per-row `Normalizer`.

A mean divides the coefficients by its denominator D before any product (c / D, so tiny class weights such as 3e-301
keep their digits through c * p); the row losses in the result stay those of c itself. Where some c / D would
overflow (a subnormal total weight beside larger smoothed weights) it divides the results by D instead, so the
overflow lands on the loss and gradient as the ±inf they are, not as inf - inf or inf * 0 inside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, partial

import numpy as np

from xentcompat.reference.blocks import DEFAULT_BUDGET, Budget, Chunk, Scratch, block_elements, chunks, run_chunks
from xentcompat.reference.coefficients import Coefficients, coefficient_block, coefficients_of, largest_coefficient
from xentcompat.reference.online_lse import RowLse, row_lse, subtract_max
from xentcompat.reference.options import Options, Problem, has_negative_weights, validate, weight_parts

TEMPORARIES = 8  # float64 block-sized arrays a chunk of the gradient pass holds at most (dense coefficients, a mean)


@dataclass(frozen=True)
class Normalizer:
    """What each row's softmax is: p_j = exp(x_j - shift) / total (x = 0 on an ignored row), NaN where undefined."""

    logits: np.ndarray
    counted: np.ndarray
    undefined: np.ndarray
    shift: np.ndarray
    total: np.ndarray


@dataclass(frozen=True)
class Result:
    """Loss (float for sum/mean, (N,) array for none), gradient (N × C), and per row: losses and lse; the softmax
    (N × C) on demand, and a memo of what callers derive from the result."""

    loss: float | np.ndarray
    grad: np.ndarray
    row_losses: np.ndarray
    lse: np.ndarray
    normalizer: Normalizer = field(repr=False, compare=False)
    memo: dict = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def softmax(self) -> np.ndarray:
        return softmax_matrix(self.normalizer)

    def remembered(self, key, compute):
        """`compute()`, computed on the first ask for `key` and kept with the result (what is derived from it, such
        as the error model's units in a dtype, asked for by a verdict and again by its relations)."""
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]


def softmax_cross_entropy(
    logits, labels=None, probs=None, options: Options = Options()
) -> Result:
    """The reference loss and gradient of `logits` against `labels` or `probs`; ValueError on invalid input."""
    problem = make_problem(logits, labels, probs, options)
    return solve(problem)


def make_problem(logits, labels=None, probs=None, options: Options = Options()) -> Problem:
    """A validated Problem from array-likes (ValueError naming what is wrong)."""
    problem = Problem(
        logits=np.asarray(logits, dtype=np.float64),
        labels=None if labels is None else np.asarray(labels),
        probs=None if probs is None else np.asarray(probs, dtype=np.float64),
        options=options,
    )
    validate(problem)
    return problem


def solve(problem: Problem, budget: Budget = DEFAULT_BUDGET, out: np.ndarray | None = None) -> Result:
    """Loss and gradient of an already validated problem, streamed within `budget`.

    The logits may be float16, float32 or float64 (every value is exact in float64); they are read, never copied.
    The gradient is written to `out` when given (a float64 array of the logits' shape, reused by a caller that
    checks many batches of one shape: a new N × C array costs the kernel's zeroing of its pages), else to a new one."""
    if has_negative_weights(problem.options):
        return _signed_solve(problem, budget, out)
    coefficients = coefficients_of(problem)
    reduction, denominator = problem.options.reduction, coefficients.denominator
    mean = reduction == "mean" and denominator > 0
    divide_first = mean and np.isfinite(largest_coefficient(coefficients) / denominator)
    mean_over = denominator if divide_first else None
    outputs = _outputs(problem.logits.shape, mean_over is not None, out)
    work = partial(_solve_chunk, problem, coefficients, mean_over, outputs)
    run_chunks(work, chunks(problem.logits.shape, block_elements(budget, TEMPORARIES)), budget)
    normalizer = Normalizer(problem.logits, coefficients.counted, outputs["undefined"], outputs["shift"],
                            outputs["total"])
    row_losses, grad = outputs["row_losses"], outputs["grad"]
    result = partial(Result, grad=grad, row_losses=row_losses, lse=outputs["lse"], normalizer=normalizer)
    if reduction == "none":
        return result(loss=row_losses)
    if reduction == "sum":
        return result(loss=float(np.sum(row_losses)))
    if not mean:
        np.multiply(grad, 0.0, out=grad)
        return result(loss=float("nan"))
    if not divide_first:
        np.divide(grad, denominator, out=grad)
        return result(loss=float(np.sum(row_losses)) / denominator)
    return result(loss=float(np.sum(outputs["mean_row_losses"])))


def _signed_solve(problem: Problem, budget: Budget, out: np.ndarray | None) -> Result:
    """The result of signed class weights: that of their positive part minus that of their negative part."""
    positive, negative = (solve(part, budget) for part in weight_parts(problem))
    grad = np.subtract(positive.grad, negative.grad, out=out)
    row_losses = positive.row_losses - negative.row_losses
    result = partial(Result, grad=grad, row_losses=row_losses, lse=positive.lse, normalizer=positive.normalizer)
    if problem.options.reduction != "mean":
        return result(loss=row_losses if problem.options.reduction == "none" else float(np.sum(row_losses)))
    denominator = coefficients_of(problem).denominator
    np.divide(grad, denominator, out=grad)
    return result(loss=float(np.sum(row_losses)) / denominator)


def softmax_matrix(normalizer: Normalizer, budget: Budget = DEFAULT_BUDGET) -> np.ndarray:
    """The N × C softmax of the reference's rows (see `Normalizer`), block by block into one new array."""
    out = np.empty(normalizer.logits.shape)

    def fill(chunk: Chunk, _: Scratch) -> None:
        for cols in chunk.blocks:
            softmax_block(normalizer, chunk.rows, cols, out=out[chunk.rows, cols])

    run_chunks(fill, chunks(out.shape, block_elements(budget, 1)), budget)
    return out


def softmax_block(normalizer: Normalizer, rows: slice, cols: slice, out: np.ndarray | None = None) -> np.ndarray:
    """p[rows, cols] = e / s as the reference forms it: exp(x - m) / s, 1 / C on ignored rows, NaN where undefined."""
    shifted = np.subtract(normalizer.logits[rows, cols], normalizer.shift[rows, None], out=out, dtype=np.float64)
    return softmax_of_shifted(normalizer, rows, shifted, out=shifted)


def softmax_of_shifted(normalizer: Normalizer, rows: slice, shifted: np.ndarray,
                       out: np.ndarray | None = None) -> np.ndarray:
    """The softmax of `rows` from x - m already formed (any value on rows that are ignored or undefined)."""
    out = np.exp(shifted, out=out)
    np.divide(out, normalizer.total[rows, None], out=out)
    ignored = ~normalizer.counted[rows]
    out[ignored] = (1.0 / normalizer.total[rows][ignored])[:, None]
    out[normalizer.undefined[rows]] = np.nan
    return out


def _outputs(shape: tuple[int, int], mean: bool, grad: np.ndarray | None) -> dict[str, np.ndarray]:
    """The arrays every chunk writes its rows of: the gradient and, per row, losses, lse and the normalizer."""
    if grad is None:
        grad = np.empty(shape)
    elif grad.shape != shape or grad.dtype != np.float64 or not grad.flags.writeable:
        raise ValueError(f"out must be a writeable float64 array of shape {shape}, got {grad.dtype} {grad.shape}")
    n = shape[0]
    per_row = ["row_losses", "lse", "shift", "total"] + (["mean_row_losses"] if mean else [])
    return {"grad": grad, "undefined": np.zeros(n, dtype=bool), **{name: np.empty(n) for name in per_row}}


def _solve_chunk(problem: Problem, coefficients: Coefficients, mean_over: float | None, outputs: dict,
                 chunk: Chunk, scratch: Scratch) -> None:
    """Loss terms, gradient, lse and normalizer of the rows of `chunk`, written to `outputs`."""
    rows, num_classes = chunk.rows, problem.num_classes
    x, grad = problem.logits[rows], outputs["grad"][rows]
    lse = row_lse(x, grad, chunk.blocks)
    counted = coefficients.counted[rows]
    undefined = counted & (lse.poisoned | ~np.isfinite(lse.m))
    live = counted & ~undefined
    m = np.where(live, lse.m, 0.0)
    k = np.where(live, lse.k, 0)
    t = np.where(counted, lse.t, float(num_classes - 1))  # an ignored row is a row of zeros: t = C - 1
    s = 1.0 + t
    _refresh_stale_blocks(x, grad, chunk.blocks, lse, m, live)
    terms = _one_hot_gradient if coefficients.one_hot else _dense_gradient
    cross, mean_cross, c_sum, mean_c_sum = terms(coefficients, mean_over, x, grad, chunk, m, k, t, s, scratch)
    log1p_t = np.log1p(t)
    outputs["row_losses"][rows] = np.where(counted, cross + c_sum * log1p_t, 0.0)
    if mean_over is not None:
        outputs["mean_row_losses"][rows] = np.where(counted, mean_cross + mean_c_sum * log1p_t, 0.0)
    outputs["lse"][rows] = m + log1p_t
    outputs["shift"][rows], outputs["total"][rows], outputs["undefined"][rows] = m, s, undefined
    grad[~counted] = 0.0
    for name in ("row_losses", "lse") + (("mean_row_losses",) if mean_over is not None else ()):
        outputs[name][rows][undefined] = np.nan
    grad[undefined] = np.nan


def _refresh_stale_blocks(x, grad, blocks, lse: RowLse, m, live) -> None:
    """Rewrite e^{x - m} over every block whose max was not its row's: its e^{x - m_b} is off by e^{m_b - m}."""
    for cols, m_b in zip(blocks, lse.block_maxima):
        if np.any(live & (m_b != m)):
            np.exp(subtract_max(x[:, cols], m, grad[:, cols]), out=grad[:, cols])


def _one_hot_grad_coefficients(coefficients: Coefficients, rows: slice, mean_over: float | None) -> np.ndarray:
    """c_y of each row as the gradient takes it: c_y, or c_y / D under a mean."""
    c = coefficients.label_coefficient[rows]
    return c if mean_over is None else c / mean_over


def _one_hot_gradient(coefficients, mean_over, x, grad, chunk, m, k, t, s, scratch):
    """One-hot rows: the gradient e_j * (c_y / s) off the label and (c_y - c_y) p_y - c_y (1 - p_y) at it, in place
    of e in `grad`; returns the loss's cross terms c_y (m - x_y) and the
    coefficient sums (= c_y)."""
    rows = chunk.rows
    labels = coefficients.labels[rows]
    local = np.arange(len(labels))
    c = coefficients.label_coefficient[rows]
    c_grad = _one_hot_grad_coefficients(coefficients, rows, mean_over)
    x_y = x[local, labels].astype(np.float64)
    e_y = np.exp(x_y - m)
    one_minus_p_y = np.where(labels == k, t / s, (s - e_y) / s)
    at_label = (c_grad - c_grad) * (e_y / s) - c_grad * one_minus_p_y
    scale = (c_grad / s)[:, None]
    for cols in chunk.blocks:
        np.multiply(grad[:, cols], scale, out=grad[:, cols])
    grad[local, labels] = at_label
    shifted_y = m - x_y
    cross = np.where(c > 0, c * shifted_y, 0.0)
    mean_cross = None if mean_over is None else np.where(c_grad > 0, c_grad * shifted_y, 0.0)
    return cross, mean_cross, c, c_grad


def _dense_gradient(coefficients, mean_over, x, grad, chunk, m, k, t, s, scratch: Scratch):
    """Any coefficients, block by block: (c_sum - c) p - c (1 - p) in place of e in `grad`; returns the loss's cross
    terms sum_j c_j (m - x_j) and the coefficient sums, of c and of the mean's c / D. A chunk of one block forms its
    coefficients once; a wider row forms each block twice (for the sums, then for the gradient)."""
    pair = partial(_coefficient_pair, coefficients, chunk.rows, mean_over=mean_over, scratch=scratch)
    kept = pair(chunk.blocks[0]) if chunk.whole else None
    sums = [_row_sums(kept or pair(cols)) for cols in chunk.blocks]
    c_sum = _blocks_sum(a for a, _ in sums)
    grad_sum = c_sum if mean_over is None else _blocks_sum(b for _, b in sums)
    cross = [_dense_block(kept or pair(cols), x[:, cols], grad[:, cols], grad_sum, m, k - cols.start, t, s, scratch)
             for cols in chunk.blocks]
    mean_cross = None if mean_over is None else _blocks_sum(b for _, b in cross)
    return _blocks_sum(a for a, _ in cross), mean_cross, c_sum, grad_sum


def _row_sums(pair) -> tuple[np.ndarray, np.ndarray]:
    c, c_grad = pair
    return np.sum(c, axis=1), (None if c_grad is None else np.sum(c_grad, axis=1))


def _dense_block(pair, x, e, c_sum, m, k_local, t, s, scratch: Scratch) -> tuple[np.ndarray, np.ndarray | None]:
    """One block: the gradient (c_sum - c) * p - c * (1 - p) in place of e (1 - p at the row's max is t / s), and
    the block's cross terms sum_j c_j (m - x_j), of c and of the mean's c / D (None without a mean)."""
    c, c_grad = pair
    _block_gradient(e, c if c_grad is None else c_grad, c_sum, k_local, t, s, scratch)
    shifted = np.subtract(m[:, None], x, out=scratch.take("shifted", e.shape), dtype=np.float64)
    cross = _positive_cross_terms(c, shifted, scratch)
    mean_cross = None if c_grad is None else _positive_cross_terms(c_grad, shifted, scratch)
    return cross, mean_cross


def _positive_cross_terms(c: np.ndarray, shifted: np.ndarray, scratch: Scratch) -> np.ndarray:
    """sum_j c_j (m - x_j) over the c_j > 0 of each row (0 * inf where x_j = -inf and c_j = 0 counts as 0)."""
    terms = np.multiply(c, shifted, out=scratch.take("cross terms", c.shape))
    terms[c <= 0] = 0.0
    return np.sum(terms, axis=1)


def _block_gradient(e: np.ndarray, c: np.ndarray, c_sum: np.ndarray, k_local: np.ndarray, t, s,
                    scratch: Scratch) -> None:
    """(c_sum - c) * p - c * (1 - p) over one block, in place of e; 1 - p at the row's max is t / s."""
    s = s[:, None]
    one_minus_p = np.subtract(s, e, out=scratch.take("one minus p", e.shape))
    np.divide(one_minus_p, s, out=one_minus_p)
    at_max = np.flatnonzero((k_local >= 0) & (k_local < e.shape[1]))
    one_minus_p[at_max, k_local[at_max]] = (t / s[:, 0])[at_max]
    np.divide(e, s, out=e)
    np.multiply(c, one_minus_p, out=one_minus_p)
    weighted = np.subtract(c_sum[:, None], c, out=scratch.take("weighted", e.shape))
    np.multiply(weighted, e, out=weighted)
    np.subtract(weighted, one_minus_p, out=e)


def _coefficient_pair(coefficients: Coefficients, rows: slice, cols: slice, mean_over: float | None,
                      scratch: Scratch):
    """(c, c / D): the block of c, and of the mean's coefficients (None without a mean), in the worker's scratch."""
    shape = (rows.stop - rows.start, cols.stop - cols.start)
    c = coefficient_block(coefficients, rows, cols, out=scratch.take("c", shape))
    return c, (None if mean_over is None else np.divide(c, mean_over, out=scratch.take("c / D", shape)))


def _blocks_sum(partials) -> np.ndarray:
    """Per-row sum over blocks (the one block's own sum when there is one)."""
    partials = list(partials)
    return partials[0] if len(partials) == 1 or partials[0] is None else np.sum(partials, axis=0)
