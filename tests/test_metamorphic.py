"""Metamorphic relations: a correct API keeps every relation; one that is not shift invariant breaks `shift`."""

from __future__ import annotations

import numpy as np
import pytest

from tests import crashing_adapter
from xentcompat.adapters.base import Returned, registered
from xentcompat.reference.cases import by_id
from xentcompat.reference.options import Options, Problem
from xentcompat.reference.softmax_xent import solve
from xentcompat.report.decision import typed
from xentcompat.report.relations import broken_relations_table, checked_count
from xentcompat.run.harness import Cell, check
from xentcompat.run.metamorphic import _split


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


def test_a_broken_relation_names_what_broke_with_both_values(fake_apis):
    record = check(Cell(fake_apis["fake.not_shift_invariant"], by_id("large-offset-1e4"), "float64"), []).record
    shift = next(relation for relation in record["relations"] if relation["relation"] == "shift")
    assert shift["broke"] == "loss" and shift["detail"].startswith("loss ")
    original, transformed = shift["loss"], shift["transformed"]
    assert f"{original:.6g} from the input, {transformed:.6g} from the transformed one" in shift["detail"]
    assert broken_relations_table(typed([record])).rows[0][-1] == shift["detail"]


@pytest.mark.parametrize("a, b, broken, said", [
    ([0.5, 0.25], [0.5, 0.25], False, None),
    ([0.5, 0.25], [0.5, float("nan")], True, "[1] 0.25 from the input, nan from the transformed one"),
    ([0.5, float("inf")], [0.5, float("inf")], False, None),
    ([0.5, float("nan")], [0.5, float("nan")], False, None),
    ([0.5, 0.25], [0.5, 0.375], True, "[1] 0.25 from the input, 0.375 from the transformed one (1.25e+14 units)"),
])
def test_difference_names_the_worst_element(a, b, broken, said):
    import numpy as np
    from xentcompat.run.metamorphic import difference

    units, detail = difference(np.array(a), np.array(b), 1e-15, 0.0)
    assert (detail is not None) == broken and detail == said


def test_a_record_that_does_not_name_what_broke_is_described_by_its_numbers():
    from xentcompat.report.relations import what_broke
    from xentcompat.results.record import Relation

    assert what_broke(Relation("split", False, 11.76, 11.76, 0.0)) == (
        "a value non-finite in one result only (loss or gradient: not named in this record); finite values within 0 "
        "units")
    assert what_broke(Relation("shift", False, 2.5, 2.5, 2.17e6)) == \
        "loss or gradient, by 2.17e+06 units (not named in this record)"
    assert what_broke(Relation("split", False, 1.0, None, None)).startswith("no comparable result")


@pytest.mark.parametrize("rows, calls, ignored", [(4, 2, None), (8, 2, 1), (3, 3, None), (5, 5, None), (7, 2, 2)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_split_keeps_the_batch_shape_and_recombines_the_parts_exactly(rows, calls, ignored, reduction):
    """Even batches run two halves of two copies each, small odd ones single rows copied to the batch's size (every
    call the batch's shape); a larger odd batch two halves as they are. On the reference's own results the parts
    recombine to the whole batch's loss and gradient (weighted, with an ignored row)."""
    rng = np.random.default_rng(rows)
    labels = rng.integers(0, 6, rows)
    if ignored is not None:
        labels[ignored] = -100
    options = Options(reduction=reduction, weight=tuple(rng.uniform(0.5, 2.0, 6)), ignore_index=-100)
    problem = Problem(rng.normal(0, 3, (rows, 6)), labels, None, options)
    parts, combine = _split(problem, "float64")
    assert len(parts) == calls
    assert all(part.logits.shape == problem.logits.shape for part in parts) == (rows % 2 == 0 or rows <= 5)
    results = [Returned(np.asarray(solve(part).loss), solve(part).grad, 0.0) for part in parts]
    loss, grad, _ = combine(results)
    whole = solve(problem)
    np.testing.assert_allclose(loss, whole.loss, rtol=1e-13)
    np.testing.assert_allclose(grad, whole.grad, rtol=1e-13, atol=1e-16)
