"""Verdict outcomes element by element, and the worst-of rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xentcompat.run.verdict import judge_grad, judge_loss, shape_mismatch, worst

INF, NAN = math.inf, math.nan


@pytest.mark.parametrize(
    "value, reference, outcome",
    [
        pytest.param(1.0, 1.0, "ok", id="equal"),
        pytest.param(1.0 + 2e-3, 1.0, "ok", id="within-bound"),  # 2 units against a tolerance of 2.5
        pytest.param(1.0 + 3e-3, 1.0, "inaccurate", id="just-beyond-bound"),
        pytest.param(1.1, 1.0, "inaccurate", id="beyond-bound"),
        pytest.param(NAN, 1.0, "nan", id="nan-for-finite"),
        pytest.param(NAN, NAN, "ok", id="nan-for-nan"),
        pytest.param(INF, 1.0, "inf", id="inf-for-finite"),
        pytest.param(-INF, INF, "inf", id="wrong-infinity"),
        pytest.param(INF, INF, "ok", id="same-infinity"),
        pytest.param(INF, NAN, "inf", id="inf-for-nan"),
        pytest.param(1.0, INF, "finite", id="finite-for-inf"),
        pytest.param(1.0, NAN, "finite", id="finite-for-nan"),
        pytest.param(INF, 1e6, "ok", id="result-beyond-dtype-max-overflows"),
        pytest.param(-INF, 1e6, "inf", id="overflow-of-the-wrong-sign"),
    ],
)
def test_loss_outcomes(value, reference, outcome):
    verdict = judge_loss(value, reference, unit=1e-3, largest=65504.0)
    assert verdict.outcome == outcome


def test_error_units_recorded():
    verdict = judge_loss(1.5, 1.0, unit=0.01, largest=1e300)
    assert verdict.error_units == pytest.approx(50.0)
    assert (verdict.value, verdict.reference) == (1.5, 1.0)


def test_gradient_takes_worst_element_and_counts():
    grad = np.array([[0.1, NAN, INF], [0.2, 0.3, 0.4]])
    reference = np.array([[0.1, 0.2, 0.3], [0.2, 0.3, 0.9]])
    verdict = judge_grad(grad, reference, unit=1e-3, largest=1e300)
    assert verdict.outcome == "nan"
    assert (verdict.nan_count, verdict.inf_count) == (1, 1)
    assert verdict.max_error_units == pytest.approx(500.0)


def test_gradient_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="gradient shape"):
        judge_grad(np.zeros((2, 3)), np.zeros((3, 2)), unit=1.0, largest=1.0)


@pytest.mark.parametrize("reference", [0.0, NAN], ids=["sum-of-nothing", "mean-of-nothing"])
def test_loss_of_another_shape_is_inaccurate_and_named(reference):
    verdict = judge_loss(np.zeros(0), reference, unit=1.0, largest=1e300)
    assert (verdict.outcome, verdict.value, verdict.error_units) == ("inaccurate", None, None)
    assert shape_mismatch(np.zeros(0), reference).to_json() == {
        "type": "shape", "message": "loss of shape (0,) where the reference has shape ()"}
    assert shape_mismatch(np.zeros(3), np.ones(3)) is None


def test_worst_order():
    assert worst(np.array(["ok", "inaccurate", "finite"], dtype=object)) == "finite"
    assert worst(np.array([], dtype=object)) == "ok"


def test_row_unit_judges_every_element_and_the_element_units_stay_a_detail():
    """Per-row units (N × 1): tiny elements with large relative errors pass against their row; the record still
    carries the element-wise error."""
    reference = np.array([[-1e-17, 4e-18, 4e-18, 4e-18], [0.5, -0.75, 0.125, 0.125]])
    grad = np.array([[0.0, 0.0, 0.0, 0.0], [0.5, -0.75, 0.125, 0.125 + 2e-3]])
    row = np.array([[1e-7], [1e-3]])
    element = np.maximum(np.abs(reference) * 1e-7, 1e-38)
    verdict = judge_grad(grad, reference, unit=row, largest=3.4e38, element_unit=element)
    assert verdict.outcome == "ok" and verdict.max_error_units == pytest.approx(2.0)
    assert verdict.elementwise_max_units == pytest.approx(1e7, rel=1e-6)  # 1e-17 off on a 1e-17 element
    worse = judge_grad(grad + np.array([[0, 0, 0, 0], [0, 0, 0, 1e-3]]), reference, unit=row, largest=3.4e38)
    assert worse.outcome == "inaccurate" and worse.elementwise_max_units is None


def test_loss_of_another_shape_keeps_the_reference_value():
    assert judge_loss(np.zeros(0), 2.5, unit=1.0, largest=1e300).reference == 2.5
    assert judge_loss(np.zeros(3), np.ones(2), unit=1.0, largest=1e300).reference is None


def test_per_row_loss_reports_its_worst_row():
    verdict = judge_loss(np.array([1.0, 2.5, 3.0]), np.array([1.0, 2.0, 3.001]), unit=1e-3, largest=1e300)
    assert (verdict.outcome, verdict.value, verdict.reference) == ("inaccurate", 2.5, 2.0)
    assert verdict.error_units == pytest.approx(500.0)


def test_per_row_loss_reports_the_row_with_the_largest_error_among_the_worst():
    verdict = judge_loss(np.array([1.1, 2.0, 3.5]), np.array([1.0, 2.0, 3.0]), unit=1e-3, largest=1e300)
    assert (verdict.outcome, verdict.value, verdict.reference) == ("inaccurate", 3.5, 3.0)
    assert verdict.error_units == pytest.approx(500.0)
    nan_rows = judge_loss(np.array([NAN, 1.0, NAN]), np.array([1.0, 1.0, 2.0]), unit=1e-3, largest=1e300)
    assert nan_rows.outcome == "nan" and math.isnan(nan_rows.value) and nan_rows.error_units is None
    assert nan_rows.reference == 1.0  # the first of the NaN rows, whose errors are all unknown


def test_an_error_of_exactly_the_tolerance_is_ok():
    from xentcompat.reference.errors import TOLERANCE_UNITS

    unit = 2.0**-10
    at = judge_loss(1.0 + TOLERANCE_UNITS * unit, 1.0, unit=unit, largest=1e300)
    beyond = judge_loss(1.0 + (TOLERANCE_UNITS + 1) * unit, 1.0, unit=unit, largest=1e300)
    assert (at.outcome, at.error_units, beyond.outcome) == ("ok", TOLERANCE_UNITS, "inaccurate")
