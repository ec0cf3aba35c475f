"""Gradient accumulation: micro-batches summed and divided by the batch's count give the batch's loss and gradient;
the mean of micro-batch means does not when the micro-batches' counts differ, by the amount the arithmetic says."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests import crashing_adapter
from xentcompat.adapters.base import Call, registered
from xentcompat.reference.cases import CATALOGUE, by_id
from xentcompat.reference.micro_batches import Accumulation, micro_batches
from xentcompat.reference.softmax_xent import solve
from xentcompat.report.accumulation import accumulation_table, recipe_sentences
from xentcompat.report.decision import typed
from xentcompat.run.accumulation import accumulate, repro
from xentcompat.run.harness import Cell, cells, check


@pytest.fixture(scope="module")
def exact_api():
    return {api.id: api for api in registered(crashing_adapter.__name__)}["fake.exact"]


def _call(case_id: str) -> Call:
    case = by_id(case_id)
    return Call(case.problem("float64", "labels"), "float64")


def test_micro_batches_keep_every_row_once_with_the_recipes_reduction():
    problem = _call("accumulate-uneven-ignored-mean-of-means").problem
    parts = micro_batches(problem, Accumulation((4, 4, 4), "sum-over-count"))
    assert [part.options.reduction for part in parts] == ["sum"] * 3
    assert np.array_equal(np.concatenate([part.logits for part in parts]), problem.logits)
    assert [int(np.sum(part.labels != -100)) for part in parts] == [1, 4, 2]


def test_sizes_that_do_not_cover_the_batch_are_refused_in_one_line():
    with pytest.raises(ValueError, match=r"micro-batch sizes \(4, 4\) do not add up to the batch's 12 rows"):
        micro_batches(_call("accumulate-uneven-sizes-sum-over-count").problem, Accumulation((4, 4), "sum-over-count"))
    with pytest.raises(ValueError, match="unknown accumulation recipe 'median'"):
        Accumulation((12,), "median")


@pytest.mark.parametrize("batch", ["uneven-sizes", "uneven-ignored"])
def test_sum_over_count_is_the_batch_and_mean_of_means_is_what_the_arithmetic_says(exact_api, batch):
    call = _call(f"accumulate-{batch}-sum-over-count")
    whole = solve(call.problem)
    steps = by_id(f"accumulate-{batch}-sum-over-count").accumulation
    documented = accumulate(exact_api, call, steps)
    assert documented.loss == pytest.approx(whole.loss, rel=1e-14)
    np.testing.assert_allclose(documented.grad, whole.grad, rtol=1e-13, atol=1e-16)
    naive = accumulate(exact_api, call, replace(steps, recipe="mean-of-means"))
    parts = micro_batches(call.problem, replace(steps, recipe="mean-of-means"))
    expected = np.mean([solve(part).loss for part in parts])
    assert naive.loss == pytest.approx(expected, rel=1e-14)
    assert abs(naive.loss - whole.loss) > 0.01 * whole.loss  # uneven counts: the naive loss is not the batch's


def test_an_accumulation_cell_is_judged_against_the_batch_and_reproduced_per_micro_batch(exact_api):
    documented = check(Cell(exact_api, by_id("accumulate-uneven-ignored-sum-over-count"), "float32"), []).record
    naive = check(Cell(exact_api, by_id("accumulate-uneven-ignored-mean-of-means"), "float32"), [])
    assert (documented["loss"]["outcome"], documented["grad"]["outcome"]) == ("ok", "ok")
    assert documented["relations"] is None  # relations of the batch are the other cases' business
    assert naive.observed == ("inaccurate", "inaccurate")
    assert naive.repro.count("# micro-batch") == 3 and "(the mean of the micro-batch means)" in naive.repro
    call = Cell(exact_api, by_id("accumulate-uneven-ignored-sum-over-count"), "float32").call()
    assert "/ 7 (the batch's count)" in repro(exact_api, call, by_id("accumulate-uneven-ignored-sum-over-count")
                                              .accumulation)


def test_accumulation_cases_run_eager_only_and_summing_only_where_the_api_can_sum(exact_api):
    accumulation = [case for case in CATALOGUE if case.area == "accumulation"]
    without = replace(exact_api, id="fake.mean_only", supports=frozenset({"ignore_index"}))
    found = cells([exact_api, without], accumulation, ["float32"], modes=("eager", "compiled"))
    assert {cell.mode for cell in found} == {"eager"}
    assert {cell.case.accumulation.recipe for cell in found if cell.api.id == "fake.mean_only"} == {"mean-of-means"}
    assert len([cell for cell in found if cell.api.id == "fake.exact"]) == 4


def test_an_api_taking_the_count_gets_the_batchs_count_and_its_losses_are_added(exact_api):
    """transformers' num_items_in_batch: each micro-batch divided by the batch's count, the losses summed."""
    seen = []

    def counted_mean(call):
        seen.append(call.num_items)
        result = solve(call.problem)
        denominator = call.num_items or float(np.sum(call.problem.labels != -100))
        return result.loss * np.sum(call.problem.labels != -100) / denominator, result.grad * (
            np.sum(call.problem.labels != -100) / denominator)

    api = replace(exact_api, id="fake.counted", run=counted_mean, supports=frozenset({"ignore_index", "num_items"}))
    call = _call("accumulate-uneven-ignored-sum-over-count")
    result = accumulate(api, call, by_id("accumulate-uneven-ignored-sum-over-count").accumulation)
    assert seen == [7, 7, 7]
    assert result.loss == pytest.approx(solve(call.problem).loss, rel=1e-14)


def test_the_report_states_each_recipe_with_its_numbers(exact_api):
    records = [check(Cell(exact_api, case, "float32"), []).record for case in CATALOGUE
               if case.area == "accumulation"]
    for record in records:
        if record["finding"]:
            record["finding"] = "XC-mean-of-micro-batch-means"
    table = accumulation_table(typed(records))
    assert [row[0] for row in table.rows] == ["every target counted",
                                              "padding rows ignored: uneven counts of targets"]
    assert all(row[2].startswith("✓") and row[3].startswith("✗") for row in table.rows)
    [sentence] = recipe_sentences(typed(records))
    assert "in 2 of 2 cells" in sentence and "off by up to" in sentence


def test_a_nan_gradient_norm_read_from_disk_is_shown_not_divided(exact_api):
    """A record read back from results.json holds a nan gradient norm as the string "nan"."""
    records = [check(Cell(exact_api, case, "float32"), []).record for case in CATALOGUE
               if case.area == "accumulation"]
    for record in records:
        record["grad"] = {**record["grad"], "norm": "nan"}
    table = accumulation_table(typed(records))
    assert table.rows and all("‖g‖ ×nan" in cell for row in table.rows for cell in row[2:4])
