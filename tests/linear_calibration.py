"""The linear error model's calibration from both sides, per dtype: the largest error (loss, dL/dh or dL/dW, in
units) of the correct implementations of `tests.linear_model` on a fixed set of problems, the tolerance, and the
smallest error of a defect on the problem where it matters, all against mpmath. `python -m tests.linear_calibration`
prints the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Callable

import numpy as np

from tests import calibration
from tests.linear_model import (hidden_grad_accumulated_in_dtype, kept_logits, logits_accumulated_in_dtype,
                                logits_from_bfloat16, materialised, weight_grad_of_the_sum)
from xentcompat.reference.dtypes import DTYPE_NAMES, float_type, round_to
from xentcompat.reference.linear_errors import linear_units
from xentcompat.reference.linear_xent import LinearProblem, make_linear_problem, solve_linear
from xentcompat.reference.mp_linear import mp_linear_cross_entropy
from xentcompat.reference.mp_oracle import to_float
from xentcompat.reference.options import Options, options_in_dtype
from xentcompat.run.verdict import classify

CORRECT = (materialised, kept_logits)
SIXTEEN_BIT = ("float16", "bfloat16")


def in_dtype(problem: LinearProblem, dtype: str) -> LinearProblem:
    """`problem` as a framework in `dtype` holds it: h, W, b and the class weights rounded."""
    bias = None if problem.bias is None else round_to(problem.bias, dtype)
    return make_linear_problem(round_to(problem.hidden, dtype), round_to(problem.weight, dtype), problem.labels, bias,
                               options_in_dtype(problem.options, dtype))


def errors_in_units(problem: LinearProblem, dtype: str, loss, grad_hidden, grad_weight) -> tuple[float, float, float]:
    """Largest errors of the loss, dL/dh and dL/dW against mpmath, in units of the linear error model."""
    units = linear_units(problem, solve_linear(problem), dtype)
    truth = [to_float(value) for value in mp_linear_cross_entropy(problem)]
    largest = float_type(dtype).largest
    found = []
    for value, exact, unit in zip((loss, grad_hidden, grad_weight), truth, (units.loss, units.hidden, units.weight)):
        outcomes, errors = classify(value, exact, unit, largest)
        assert set(outcomes.ravel()) <= {"ok", "inaccurate"}, (value, exact)
        found.append(float(np.nanmax(errors, initial=0.0)))
    return tuple(found)


def _normal(rng, shape, sigma):
    return rng.normal(0, sigma, shape)


def calibration_problems() -> list[tuple[str, LinearProblem]]:
    """The fixed set a correct implementation is measured on (float64 values; rounded per dtype by the caller)."""
    rng = np.random.default_rng(20261201)
    found = []
    for reduction in ("none", "sum", "mean"):
        for name, sigma in (("moderate", 0.15), ("confident", 1.5), ("large-logits", 6.0)):
            hidden, weight = _normal(rng, (6, 32), 1.0), _normal(rng, (40, 32), sigma)
            labels = rng.integers(0, 40, 6)
            found.append((f"{name}-{reduction}", make_linear_problem(hidden, weight, labels,
                                                                     options=Options(reduction=reduction))))
        hidden, weight = _normal(rng, (5, 16), 1.0), _normal(rng, (24, 16), 0.5)
        options = Options(reduction=reduction, weight=tuple(rng.uniform(0.25, 3.0, 24)), ignore_index=-100)
        found.append((f"weighted-ignored-{reduction}",
                      make_linear_problem(hidden, weight, [3, -100, 7, 23, 0], options=options)))
        found.append((f"smoothed-{reduction}", make_linear_problem(
            hidden, weight, [3, 5, 7, 23, 0], options=Options(reduction=reduction, label_smoothing=0.1))))
        found.append((f"bias-{reduction}", make_linear_problem(
            hidden, weight, [3, 5, 7, 23, 0], bias=_normal(rng, 24, 2.0), options=Options(reduction=reduction))))
    found.append(("deep-256", make_linear_problem(_normal(rng, (4, 256), 1.0), _normal(rng, (16, 256), 0.1),
                                                  [0, 5, 9, 15])))
    found.append(("wide-512", make_linear_problem(_normal(rng, (4, 16), 1.0), _normal(rng, (512, 16), 0.5),
                                                  [0, 100, 300, 511])))
    return found


@dataclass(frozen=True)
class Defect:
    name: str
    model: Callable[[LinearProblem, str], tuple]
    problem: LinearProblem
    dtypes: tuple[str, ...]


def _aligned(rng, rows: int, depth: int, classes: int) -> LinearProblem:
    """Confident rows: each label's weight row points along its hidden state (z_y near 7.5 at D = 4096, the rest near
    0), so the products of the target's logit all have one sign and a 16-bit running sum stalls."""
    hidden = _normal(rng, (rows, depth), 1.0)
    weight = _normal(rng, (classes, depth), 0.03)
    labels = np.arange(rows) % classes
    weight[labels] = 0.003 * np.sign(hidden) * np.abs(_normal(rng, (rows, depth), 1.0))
    return make_linear_problem(hidden, weight, labels)


def _shared_direction(rng, rows: int, depth: int, classes: int) -> LinearProblem:
    """Weight rows sharing a mean direction (anisotropic output embeddings): sum_j p_j W_jk does not cancel, so the
    small terms a 16-bit running sum over V drops are a real part of dL/dh."""
    weight = 0.1 + _normal(rng, (classes, depth), 0.02)
    return make_linear_problem(_normal(rng, (rows, depth), 0.3), weight, np.arange(rows) * 7 % classes)


def _defects() -> tuple[tuple[Defect, ...], tuple[Defect, ...]]:
    """(defects the model flags with the full margin, defects it flags with less)."""
    rng = np.random.default_rng(7)
    moderate = make_linear_problem(_normal(rng, (6, 32), 1.0), _normal(rng, (40, 32), 0.15), rng.integers(0, 40, 6))
    flagged = (
        Defect("logits accumulated in the 16-bit dtype, confident rows, D = 4096", logits_accumulated_in_dtype,
               _aligned(rng, 4, 4096, 16), SIXTEEN_BIT),
        Defect("logits from bfloat16-rounded h and W", logits_from_bfloat16, moderate, ("float32", "float64")),
        Defect("weight gradient of the sum where the mean is due, N = 6", weight_grad_of_the_sum, moderate,
               DTYPE_NAMES),
    )
    narrow = (Defect("dL/dh accumulated in bfloat16 over V = 2048, weight rows sharing a direction",
                     hidden_grad_accumulated_in_dtype, _shared_direction(rng, 4, 16, 2048), ("bfloat16",)),)
    return flagged, narrow


DEFECTS, NARROW_DEFECTS = _defects()


@cache
def correct_max(dtype: str) -> tuple[float, str]:
    """The largest error (of loss, dL/dh, dL/dW, in units) of the correct implementations on the calibration set."""
    worst = (0.0, "")
    for name, problem in calibration_problems():
        problem = in_dtype(problem, dtype)
        for model in CORRECT:
            worst = max(worst, (max(errors_in_units(problem, dtype, *model(problem, dtype))),
                                f"{model.__name__} on {name}"))
    return worst


@cache
def defect_errors(dtype: str, defects: tuple[Defect, ...] = DEFECTS) -> tuple[tuple[str, float], ...]:
    """Each defect's error (the largest of loss, dL/dh, dL/dW, in units) where it applies in `dtype` (computed once
    per process: the mpmath oracle on D = 4096 takes seconds)."""
    found = []
    for defect in defects:
        if dtype in defect.dtypes:
            problem = in_dtype(defect.problem, dtype)
            found.append((defect.name, max(errors_in_units(problem, dtype, *defect.model(problem, dtype)))))
    return tuple(found)


def table() -> list[tuple[str, float, float, float, str]]:
    """(dtype, largest correct error, tolerance, smallest defect error, that defect) per dtype."""
    return calibration.table(correct_max, defect_errors)


if __name__ == "__main__":
    calibration.print_table(table())
    for name, error in defect_errors("bfloat16", NARROW_DEFECTS):
        print(f"\nnarrow margin: {name}: {error:.3g} units in bfloat16")
