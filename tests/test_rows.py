"""A mean or a sum judged row by row (run/rows.py): a kernel wrong on one row of a mean is caught, a right one is
not, the record says which row and by how much, and the report lists it."""

from __future__ import annotations

import pytest

from tests import crashing_adapter
from xentcompat.adapters.base import registered
from xentcompat.reference.cases import by_id
from xentcompat.reference.errors import TOLERANCE_UNITS
from xentcompat.report.decision import typed
from xentcompat.report.rows import checked_count, hidden_rows_table
from xentcompat.run.harness import Cell, check
from xentcompat.run.rejudge import under_todays_tolerance


@pytest.fixture(scope="module")
def fake_apis():
    return {api.id: api for api in registered(crashing_adapter.__name__)}


def test_a_kernel_wrong_on_one_row_of_a_mean_is_caught_where_the_mean_alone_passes(fake_apis):
    record = check(Cell(fake_apis["fake.one_row_off"], by_id("random-moderate"), "float32"), []).record
    loss, rows = record["loss"], record["loss"]["rows"]
    assert loss["outcome"] == "ok" and loss["error_units"] <= TOLERANCE_UNITS  # the mean of 8 rows: 6 units / 8
    assert rows["outcome"] == "inaccurate" and (rows["rows"], rows["row"]) == (8, 7)
    assert rows["error_units"] == pytest.approx(6.0, rel=1e-6)
    table = hidden_rows_table(typed([record]))
    [(api, case, dtype, reduced, worst, cause)] = table.rows
    assert (api, case, dtype, cause) == ("fake.one_row_off", "random-moderate", "float32", "—")
    assert worst.startswith("[7] of 8: ") and worst.endswith("(6 units)")
    assert checked_count(typed([record])) == (1, 1)


@pytest.mark.parametrize("case", ["random-moderate", "reduction-sum", "class-weights", "ignore-index-row-neg-inf",
                                  "nan-logit"])
def test_a_right_kernel_passes_row_by_row(fake_apis, case):
    record = check(Cell(fake_apis["fake.exact"], by_id(case), "float32"), []).record
    assert record["loss"]["outcome"] == "ok" and record["loss"]["rows"]["outcome"] == "ok"
    assert hidden_rows_table(typed([record])) is None


def test_rows_are_judged_only_where_the_loss_is_reduced_eager_and_valid(fake_apis):
    per_row = check(Cell(fake_apis["fake.exact"], by_id("reduction-none"), "float32"), []).record
    compiled = check(Cell(fake_apis["fake.exact"], by_id("random-moderate"), "float32", mode="compiled"), []).record
    invalid = check(Cell(fake_apis["fake.ignores_labels"], by_id("label-minus-1"), "float32"), []).record
    assert all("rows" not in record["loss"] for record in (per_row, compiled, invalid))


def test_a_sum_is_judged_row_by_row_too(fake_apis):
    """A sum's unit sums the rows' scales: one row 6 of its own units off is within the sum's, not within its own."""
    record = check(Cell(fake_apis["fake.one_row_off"], by_id("reduction-sum"), "float32"), []).record
    assert record["loss"]["outcome"] == "ok" and record["loss"]["rows"]["outcome"] == "inaccurate"
    assert record["loss"]["rows"]["row"] == 3


def test_rejudge_judges_the_rows_again_under_todays_tolerance(fake_apis):
    record = check(Cell(fake_apis["fake.one_row_off"], by_id("random-moderate"), "float32"), []).record
    looser = {**record, "loss": {**record["loss"], "rows": {**record["loss"]["rows"], "outcome": "ok",
                                                            "error_units": 1.5 * TOLERANCE_UNITS}}}
    assert under_todays_tolerance(looser)["loss"]["rows"]["outcome"] == "inaccurate"
    assert under_todays_tolerance(looser)["loss"]["outcome"] == "ok"


def test_the_rows_reference_is_computed_once_for_every_api_reading_the_case(fake_apis, monkeypatch):
    """The per-row reference and unit depend on the case, dtype and targets, not the API: kept after the first API,
    they give each later API the judgement a fresh computation gives."""
    from xentcompat.run import harness, rows

    computed = []
    monkeypatch.setattr(harness, "row_truth", lambda problem, dtype: computed.append(dtype)
                        or rows.row_truth(problem, dtype))
    harness._KEPT.clear()
    case = by_id("class-weights")
    kept = [check(Cell(fake_apis[name], case, "float32"), []).record["loss"]["rows"]
            for name in ("fake.exact", "fake.one_row_off")]
    assert computed == ["float32"]
    api = fake_apis["fake.one_row_off"]
    fresh = rows.check_rows(api, Cell(api, case, "float32").call())
    assert kept[1] == fresh and kept[1]["outcome"] == "inaccurate" and kept[0]["outcome"] == "ok"
