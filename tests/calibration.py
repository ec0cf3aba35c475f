"""The error model's calibration from both sides, per dtype: the largest error of a correct implementation, the
tolerance, and the smallest error of a catalogued defect. `python -m tests.calibration` prints the table, and the same
two sides measured on the kept report's records (`kept_gap`): per dtype and quantity, the largest error of a cell no
cause covers, and the smallest error of a cell whose cause says it is inaccurate.

Correct: the stable algorithm of `tests.fused_model.fused`, rounded step by step in the dtype, on a fixed set of
problems (moderate, offset, spiked, wide, smoothed, weighted, probability targets, every reduction) and the
counterexamples adversarial search has found. Defects: each on the problem where it matters, judged against the
loss that was intended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from tests.fused_model import double_softmax, fused, log_of_softmax, lse_one_ulp_high, unshifted_lse
from xentcompat.reference.dtypes import DTYPE_NAMES, float_type, round_to
from xentcompat.reference.errors import TOLERANCE_UNITS, grad_unit, loss_unit
from xentcompat.reference.mp_oracle import mp_softmax_cross_entropy, to_float
from xentcompat.reference.options import Options, Problem, options_in_dtype
from xentcompat.reference.softmax_xent import make_problem, solve
from xentcompat.run.verdict import classify

# Found by search (float64): one logit 625 above eleven zeros, label 4, smoothing 0.1, per-row losses; a row with a
# logit 30 above the rest, a one-hot probability target elsewhere, smoothing 0.1 (1.00 units of gradient error).
_SPIKE_30 = [[0.0] * 7, [0.0, 30.0] + [0.0] * 5, [0.0] * 7, [0.0] * 7]
_TARGET_6 = [[0.0] * 7, [0.0] * 6 + [1.0], [0.0] * 7, [0.0] * 7]
COUNTEREXAMPLES = (
    ("spike-625-smoothed", [[0.0] * 7 + [625.0] + [0.0] * 4], [4], None,
     Options(reduction="none", label_smoothing=0.1)),
    ("spike-30-probability-target-smoothed", _SPIKE_30, None, _TARGET_6,
     Options(reduction="none", label_smoothing=0.1)),
)


def in_dtype(problem: Problem, dtype: str) -> Problem | None:
    """`problem` as a framework in `dtype` sees it (logits, probabilities and weights rounded); None if a logit
    overflows the dtype."""
    logits = round_to(problem.logits, dtype)
    if not np.all(np.isfinite(logits) | ~np.isfinite(problem.logits)):
        return None
    probs = None if problem.probs is None else round_to(problem.probs, dtype)
    return make_problem(logits, problem.labels, probs, options_in_dtype(problem.options, dtype))


def errors_in_units(problem: Problem, dtype: str, loss, grad) -> tuple[float, float]:
    """Largest loss and gradient errors of (loss, grad) against mpmath, in units of the error model."""
    reference = solve(problem)
    mp_loss, mp_grad = mp_softmax_cross_entropy(problem)
    largest = float_type(dtype).largest
    loss_outcomes, loss_errors = classify(loss, to_float(mp_loss), loss_unit(problem, reference, dtype), largest)
    grad_outcomes, grad_errors = classify(grad, to_float(mp_grad), grad_unit(problem, reference, dtype), largest)
    assert set(loss_outcomes.ravel()) <= {"ok", "inaccurate"}, (loss, mp_loss)
    assert set(grad_outcomes.ravel()) <= {"ok", "inaccurate"}, (grad, mp_grad)
    return float(np.nanmax(loss_errors, initial=0.0)), float(np.nanmax(grad_errors, initial=0.0))


def calibration_problems() -> list[tuple[str, Problem]]:
    """The fixed set a correct implementation is measured on (float64 values; rounded per dtype by the caller)."""
    rng = np.random.default_rng(20261201)
    found = [(name, make_problem(logits, labels, probs, options))
             for name, logits, labels, probs, options in COUNTEREXAMPLES]
    for reduction in ("none", "sum", "mean"):
        for sigma, offset in ((3.0, 0.0), (1.0, 1e4), (10.0, -300.0), (0.01, 5.0)):
            logits = rng.normal(offset, sigma, (6, 12))
            labels = rng.integers(0, 12, 6)
            found.append((f"normal({offset:g}, {sigma:g})-{reduction}",
                          make_problem(logits, labels, options=Options(reduction=reduction))))
        spiked = np.zeros((4, 12))
        spiked[np.arange(4), [7, 3, 0, 11]] = [625.0, 40.0, 9.0, 200.0]
        found.append((f"spiked-smoothed-{reduction}", make_problem(
            spiked, [4, 3, 5, 0], options=Options(reduction=reduction, label_smoothing=0.1))))
        found.append((f"weighted-{reduction}", make_problem(
            rng.normal(0, 4, (5, 6)), [0, 1, 2, 3, 4], options=Options(reduction=reduction,
                                                                       weight=(0.5, 2.0, 1.0, 3.0, 0.25, 1.0)))))
        probs = rng.dirichlet(np.ones(8), 3)
        found.append((f"soft-targets-{reduction}", make_problem(rng.normal(0, 3, (3, 8)), probs=probs,
                                                                options=Options(reduction=reduction))))
    found.append(("wide-4096", make_problem(rng.normal(0, 2, (2, 4096)), [5, 4000])))
    return found


@dataclass(frozen=True)
class Defect:
    name: str
    model: Callable[[Problem, str], tuple]
    logits: object
    labels: object


_OFFSET = np.random.default_rng(1).normal(0, 1, (4, 10)) + 1e4
_MODERATE = np.random.default_rng(0).normal(0, 3, (8, 10))
DEFECTS = (
    Defect("lse rounded at the logits' magnitude, logits near 1e4 (optax integer labels in bf16)", unshifted_lse,
           _OFFSET, [0, 1, 2, 3]),
    Defect("lse one ulp high, logits near 1e4", lse_one_ulp_high, _OFFSET, [0, 1, 2, 3]),
    Defect("softmax applied twice, normal(0, 3) logits", double_softmax, _MODERATE, [0, 1, 2, 3, 4, 5, 6, 7]),
    Defect("log of softmax, p_y = e^-100", log_of_softmax, [[0.0, 100.0, 0.0]], [0]),
)


def correct_max(dtype: str) -> tuple[float, str]:
    """The largest error (loss or gradient, in units) of the correct implementation on the calibration set."""
    worst = (0.0, "")
    for name, problem in calibration_problems():
        problem = in_dtype(problem, dtype)
        if problem is not None:
            worst = max(worst, (max(errors_in_units(problem, dtype, *fused(problem, dtype))), name))
    return worst


def defect_errors(dtype: str) -> list[tuple[str, float]]:
    """Each defect's error (the larger of loss and gradient, in units) where it runs in `dtype`."""
    found = []
    for defect in DEFECTS:
        problem = in_dtype(make_problem(defect.logits, defect.labels), dtype)
        if problem is None or (defect.model is log_of_softmax and dtype != "float32"):
            continue  # e^-100 is a subnormal only in float32: elsewhere log(softmax) is exact (64) or -inf (16-bit)
        with np.errstate(all="ignore"):
            found.append((defect.name, max(errors_in_units(problem, dtype, *defect.model(problem, dtype)))))
    return found


def table(correct=correct_max, defects=defect_errors) -> list[tuple[str, float, float, float, str]]:
    """(dtype, largest correct error, tolerance, smallest defect error, that defect) per dtype, from `correct(dtype)`
    and `defects(dtype)` (this module's, or another error model's calibration)."""
    rows = []
    for dtype in DTYPE_NAMES:
        found, _ = correct(dtype)
        name, smallest = min(defects(dtype), key=lambda item: item[1])
        rows.append((dtype, found, TOLERANCE_UNITS, smallest, name))
    return rows


def print_table(rows) -> None:
    print("| dtype | largest correct error | tolerance | smallest defect error | defect |")
    print("|---|---|---|---|---|")
    for dtype, correct, tolerance, smallest, name in rows:
        print(f"| {dtype} | {correct:.3g} | {tolerance:g} | {smallest:.3g} | {name} |")


def kept_gap(records: list[dict]) -> list[tuple[str, str, float, str, float, str]]:
    """(dtype, quantity, largest error of a cell no cause covers, that cell, smallest error of a cell its cause calls
    inaccurate, that cell) per dtype and quantity, from stored records (errors in units as recorded)."""
    rows = []
    for dtype in DTYPE_NAMES:
        for quantity, field in (("loss", "error_units"), ("grad", "max_error_units")):
            correct, defect = (0.0, "-"), (float("inf"), "-")
            for record in records:
                units = (record.get(quantity) or {}).get(field)
                if record["dtype"] != dtype or units is None or units != units:
                    continue
                where = f"{record['api']} {record['case']} {record['device']} {record['mode']}"
                expected = record.get("expected") or {}
                if expected.get("cause") is None:
                    correct = max(correct, (units, where))
                elif expected.get(quantity) == "inaccurate" and record[quantity]["outcome"] == "inaccurate":
                    defect = min(defect, (units, where))
            rows.append((dtype, quantity, *correct, *defect))
    return rows


if __name__ == "__main__":
    import json
    import sys
    from pathlib import Path

    print_table(table())
    kept = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/report/results.json")
    print(f"\n{kept}: largest error of a cell no cause covers, smallest of a cell its cause calls inaccurate\n")
    print("| dtype | quantity | largest uncaused | cell | smallest defect | cell |")
    print("|---|---|---|---|---|---|")
    for dtype, quantity, correct, where, defect, cell in kept_gap(json.loads(kept.read_text())["records"]):
        print(f"| {dtype} | {quantity} | {correct:.3g} | {where} | {defect:.3g} | {cell} |")
