"""Verdicts: what a framework returned, judged against the float64 reference in units of the dtype's error model.

Each element gets an outcome (the README, "Verdicts"); a loss or a gradient takes the worst of its elements, in the order
`SEVERITY`. A result beyond the dtype's largest finite value may come back as the infinity of its sign: that is the
dtype's range, not the API's error, and counts as `ok`. A loss of another shape than the reference's (an empty
array where a scalar is due, say) has no value to compare: it is `inaccurate`, with no value or error in units, and
`shape_mismatch` names the two shapes for the record's `error`.
"""

from __future__ import annotations

import numpy as np

from xentcompat.reference.compact import is_big, row_slices
from xentcompat.reference.errors import TOLERANCE_UNITS
from xentcompat.results.record import Failure, GradVerdict, LossVerdict

SEVERITY = ("nan", "inf", "finite", "inaccurate", "ok")


def classify(values, reference, unit, largest: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-element outcomes and errors in units (NaN where either side is not finite)."""
    masks, errors = outcome_masks(values, reference, unit, largest)
    outcomes = np.full(errors.shape, "ok", dtype=object)
    for outcome, mask in masks:
        outcomes[mask] = outcome
    return outcomes, errors


def outcome_masks(values, reference, unit, largest: float) -> tuple[list[tuple[str, np.ndarray]], np.ndarray]:
    """Where each outcome but `ok` holds (disjoint masks: an element is inaccurate only when both sides are finite,
    inf / finite / nan by what the value is) and the errors in units."""
    values, reference = np.broadcast_arrays(np.asarray(values, np.float64), np.asarray(reference, np.float64))
    unit = np.broadcast_to(np.asarray(unit, np.float64), values.shape)
    both_finite = np.isfinite(values) & np.isfinite(reference)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        errors = np.where(both_finite, np.abs(values - reference) / unit, np.nan)
    ref_finite = np.isfinite(reference)
    overflowed = ref_finite & (np.abs(reference) > largest) & (values == np.copysign(np.inf, reference))
    infinite = np.isinf(values)
    wrong_inf = (infinite & ref_finite & ~overflowed) | (infinite & np.isinf(reference) & (values != reference)) \
        | (infinite & np.isnan(reference))
    return [("inaccurate", both_finite & (errors > TOLERANCE_UNITS)), ("inf", wrong_inf),
            ("finite", np.isfinite(values) & ~ref_finite), ("nan", np.isnan(values) & ~np.isnan(reference))], errors


def _worst_present(masks: list[tuple[str, np.ndarray]]) -> str:
    """`worst` of the outcomes `outcome_masks` found (no per-element array of outcomes formed)."""
    present = {outcome for outcome, mask in masks if mask.any()}
    return next((outcome for outcome in SEVERITY if outcome in present), "ok")


def worst(outcomes: np.ndarray) -> str:
    """The most severe outcome present (`ok` for an empty array)."""
    present = set(np.asarray(outcomes, dtype=object).ravel())
    return next((outcome for outcome in SEVERITY if outcome in present), "ok")


def shape_mismatch(value, reference) -> Failure | None:
    """The record's `error` for a loss whose shape is not the reference's, else None."""
    got, want = np.shape(value), np.shape(reference)
    if got == want:
        return None
    return Failure("shape", f"loss of shape {got} where the reference has shape {want}")


def judge_loss(value, reference, unit, largest: float) -> LossVerdict:
    """Verdict on a loss (scalar, or per-row for reduction none: reported at its worst element)."""
    if shape_mismatch(value, reference):
        return LossVerdict("inaccurate", None, float(reference) if np.ndim(reference) == 0 else None, None)
    outcomes, errors = classify(value, reference, unit, largest)
    outcome = worst(outcomes)
    index = _worst_index(outcomes, errors, outcome)
    values, refs = np.broadcast_arrays(np.asarray(value, np.float64), np.asarray(reference, np.float64))
    if index is None:
        return LossVerdict(outcome, None, None, None)
    error = errors.ravel()[index]
    return LossVerdict(
        outcome,
        float(values.ravel()[index]),
        float(refs.ravel()[index]),
        None if np.isnan(error) else float(error),
    )


def judge_rows(values, reference, unit, largest: float) -> tuple[LossVerdict, int | None]:
    """`judge_loss` of per-row losses, with the index of the row it reports (the worst; None for no row)."""
    outcomes, errors = classify(values, reference, unit, largest)
    index = _worst_index(outcomes, errors, worst(outcomes))
    return judge_loss(values, reference, unit, largest), index


def judge_grad(grad, reference, unit, largest: float, element_unit=None) -> GradVerdict:
    """Verdict on a gradient: worst element outcome against `unit` (per row: N × 1, or per element), largest error
    in units, NaN and inf counts; with `element_unit`, the largest element-wise error as a detail."""
    if np.shape(grad) != np.shape(reference):
        raise ValueError(f"gradient shape {np.shape(grad)} differs from the logits' {np.shape(reference)}")
    if is_big(reference):
        return _judge_grad_in_chunks(grad, reference, unit, largest)
    grad = np.asarray(grad, np.float64)
    masks, errors = outcome_masks(grad, reference, unit, largest)
    detail = None if element_unit is None else _largest(outcome_masks(grad, reference, element_unit, largest)[1])
    return GradVerdict(
        outcome=_worst_present(masks),
        max_error_units=_largest(errors),
        nan_count=int(np.count_nonzero(np.isnan(grad))),
        inf_count=int(np.count_nonzero(np.isinf(grad))),
        elementwise_max_units=detail,
        norm=_norm(grad),
        reference_norm=_norm(reference),
    )


def _judge_grad_in_chunks(grad, reference, unit, largest: float) -> GradVerdict:
    """`judge_grad` of a big batch (see `reference.compact`), row chunk by row chunk: the same outcome, largest
    error, counts and norms, with float64 temporaries of one chunk. The element-wise detail is left out (None): its
    units would be a third N × C float64 array beside the two gradients."""
    unit = np.broadcast_to(np.asarray(unit, np.float64), np.shape(reference))
    present, largest_error, nans, infs, squares, reference_squares = set(), None, 0, 0, 0.0, 0.0
    for rows in row_slices(np.shape(reference)):
        values = np.asarray(grad[rows], np.float64)
        masks, errors = outcome_masks(values, reference[rows], unit[rows], largest)
        present.add(_worst_present(masks))
        chunk_largest = _largest(errors)
        if chunk_largest is not None:
            largest_error = chunk_largest if largest_error is None else max(largest_error, chunk_largest)
        nans += int(np.count_nonzero(np.isnan(values)))
        infs += int(np.count_nonzero(np.isinf(values)))
        squares += _norm(values) ** 2
        reference_squares += _norm(reference[rows]) ** 2
    return GradVerdict(outcome=worst(np.array(sorted(present), dtype=object)), max_error_units=largest_error,
                       nan_count=nans, inf_count=infs, norm=float(np.sqrt(squares)),
                       reference_norm=float(np.sqrt(reference_squares)))


def _norm(values) -> float:
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.linalg.norm(np.asarray(values, np.float64).ravel()))


def _largest(errors: np.ndarray) -> float | None:
    finite_errors = errors[~np.isnan(errors)]
    return float(np.max(finite_errors)) if finite_errors.size else None


def _worst_index(outcomes: np.ndarray, errors: np.ndarray, outcome: str) -> int | None:
    flat = outcomes.ravel()
    if flat.size == 0:
        return None
    candidates = np.flatnonzero(flat == outcome)
    flat_errors = np.nan_to_num(errors.ravel()[candidates], nan=-1.0)
    return int(candidates[np.argmax(flat_errors)])
