"""Forward-mode gradients: which cells run in mode "forward", and the report's table of the cells whose outcome
depends on the direction of differentiation."""

from __future__ import annotations

import numpy as np

from tests.test_decision import cell
from xentcompat.adapters.base import FORWARD_MAX_ELEMENTS, WITH_FORWARD, LossApi
from xentcompat.reference.case import Case
from xentcompat.reference.option_cases import INVALID_CASES, OPTION_CASES
from xentcompat.reference.options import Options
from xentcompat.report.forward_mode import varies_by_direction_table
from xentcompat.run.harness import cells, runs_forward

CE = "torch.nn.CrossEntropyLoss"


def _case(case_id: str, rows: int, classes: int) -> Case:
    return Case(case_id, "extreme", np.zeros((rows, classes)), np.zeros(rows, dtype=np.int64), None, Options(),
                ("float32",), "zeros")


def _api(modes) -> LossApi:
    return LossApi("loss", "torch", "labels", "loss(x, y)", run=lambda call: None, modes=modes)


def test_forward_mode_runs_valid_cases_up_to_the_tangent_bound():
    bound = _case("at-the-bound", FORWARD_MAX_ELEMENTS // 8, 8)
    over = _case("past-the-bound", FORWARD_MAX_ELEMENTS // 8 + 1, 8)
    invalid = next(case for case in INVALID_CASES if case.id == "label-equals-C")
    assert runs_forward(bound) and not runs_forward(over) and not runs_forward(invalid)
    ran = cells([_api(WITH_FORWARD)], [bound, over, invalid], ["float32"], modes=("eager", "forward"))
    assert {(c.case.id, c.mode) for c in ran} == {("at-the-bound", "eager"), ("at-the-bound", "forward"),
                                                 ("past-the-bound", "eager"), ("label-equals-C", "eager")}


def test_an_api_without_forward_mode_gets_no_forward_cell():
    ran = cells([_api(frozenset({"eager", "compiled"}))], OPTION_CASES[:3], ["float32"], modes=("forward",))
    assert ran == []


def test_cells_whose_outcome_depends_on_the_direction_are_listed_with_both_outcomes():
    records = [cell(CE, "nan-logit", "ok", "ok", mode="eager"),
               cell(CE, "nan-logit", "ok", "nan", "XC-forward", mode="forward"),
               cell(CE, "neg-inf-nontarget", "ok", "nan", "XC-log", mode="eager"),
               cell(CE, "neg-inf-nontarget", "ok", "ok", mode="forward"),
               cell(CE, "random-moderate", "ok", "ok", mode="eager"),
               cell(CE, "random-moderate", "ok", "ok", mode="forward"),
               cell(CE, "pos-inf-target", "ok", "nan", "XC-forward", mode="forward")]  # no eager cell: no pair
    table = varies_by_direction_table(records)
    assert table.columns == ("api", "cases", "dtypes", "reverse mode", "forward mode")
    assert table.rows == ((CE, "neg-inf-nontarget", "float32", "ok / nan (XC-log)", "ok / ok"),
                          (CE, "nan-logit", "float32", "ok / ok", "ok / nan (XC-forward)"))
    assert varies_by_direction_table([r for r in records if r.case == "random-moderate"]) is None
