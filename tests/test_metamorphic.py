"""Metamorphic relations: a correct API keeps every relation; one that is not shift invariant breaks `shift`."""

from __future__ import annotations

import pytest

from tests import crashing_adapter
from xentcompat.adapters.base import registered
from xentcompat.reference.cases import by_id
from xentcompat.report.decision import typed
from xentcompat.report.relations import broken_relations_table, checked_count
from xentcompat.run.harness import Cell, check


@pytest.fixture(scope="module")
def fake_apis():
    return {api.id: api for api in registered(crashing_adapter.__name__)}


@pytest.mark.parametrize("case", ["random-moderate", "large-offset-1e4", "neg-inf-nontarget", "class-weights",
                                  "label-smoothing", "reduction-none", "reduction-sum"])
def test_a_correct_api_keeps_every_relation(fake_apis, case):
    record = check(Cell(fake_apis["fake.checks_labels"], by_id(case), "float32"), []).record
    relations = {relation["relation"]: relation for relation in record["relations"]}
    assert relations and all(relation["holds"] for relation in relations.values()), relations
    assert {"shift", "split"} <= set(relations)


def test_an_api_that_is_not_shift_invariant_breaks_shift_and_is_reported(fake_apis):
    record = check(Cell(fake_apis["fake.not_shift_invariant"], by_id("large-offset-1e4"), "float64"), []).record
    relations = {relation["relation"]: relation for relation in record["relations"]}
    assert not relations["shift"]["holds"] and relations["shift"]["error_units"] > 1e10
    assert relations["shift"]["transformed"] - relations["shift"]["loss"] == pytest.approx(1.0)
    assert relations["permute"]["holds"]
    table = broken_relations_table(typed([record]))
    assert [row[3] for row in table.rows] == ["shift"]
    assert checked_count(typed([record])) == (len(relations), 1)


def test_relations_are_checked_only_for_eager_cells_of_valid_input(fake_apis):
    invalid = check(Cell(fake_apis["fake.ignores_labels"], by_id("label-minus-1"), "float32"), []).record
    compiled = check(Cell(fake_apis["fake.checks_labels"], by_id("random-moderate"), "float32", mode="compiled"),
                     []).record
    assert invalid["relations"] is None and compiled["relations"] is None


def test_relations_are_not_checked_where_the_cells_own_verdict_deviates(fake_apis):
    """An API off by 1.0 everywhere: its verdict is the finding; no relation is judged on top of it."""
    record = check(Cell(fake_apis["fake.off_by_one"], by_id("large-offset-1e4"), "float64"), []).record
    assert record["loss"]["outcome"] == "inaccurate" and record["relations"] is None


def test_no_shift_where_it_would_leave_the_dtypes_range(fake_apis):
    record = check(Cell(fake_apis["fake.checks_labels"], by_id("near-max-float16"), "float16"), []).record
    assert "shift" not in {relation["relation"] for relation in record["relations"]}


def test_the_report_says_how_many_relations_held(fake_apis):
    from xentcompat.report.markdown import render_markdown
    from xentcompat.results.documents import results_document

    record = check(Cell(fake_apis["fake.checks_labels"], by_id("random-moderate"), "float32"), []).record
    report = render_markdown(results_document([record], []))
    assert "## Metamorphic relations" in report and f"{len(record['relations'])} relations checked, none broken" \
        in report
