"""The report's LLM-scale tables from synthetic records: empty denominators, label-smoothing conventions and the
bfloat16 logit-scale sweep say what the records measured."""

from __future__ import annotations

import math

from tests.test_records import record
from xentcompat.report.conventions import empty_denominators_table, smoothing_table
from xentcompat.report.decision import typed
from xentcompat.report.scale_sweep import quantised, scale_sweep_table


def _cell(case: str, outcome: str, value, reference, **fields) -> dict:
    made = record(case, **fields)
    made["loss"] = {"outcome": outcome, "value": value, "reference": reference, "error_units": 0.0}
    return made


def test_empty_denominators_name_what_each_api_returned():
    records = typed([
        _cell("ignore-index-every-row", "ok", "nan", "nan"),
        _cell("empty-batch-sum", "ok", 0.0, 0.0, options={"reduction": "sum"}),
        _cell("ignore-index-every-row-smoothed", "ok", "nan", "nan", options={"label_smoothing": 0.1}),
        _cell("empty-batch", "inaccurate", None, "nan", api="keras.losses.SparseCategoricalCrossentropy(from_logits=True)",
              backend="jax", framework="keras"),
        _cell("class-weights-zero-total", "raised", None, "nan", api="optax.softmax_cross_entropy", framework="jax",
              error={"type": "ValueError", "message": "no"}),
    ])
    table = empty_denominators_table(records)
    assert table.columns[1:] == ("every target ignored (mean)", "every target ignored (mean, smoothed)",
                                 "zero total class weight (mean)", "empty batch (mean)", "empty batch (sum)")
    rows = {api: row[1:] for row in table.rows for api in row[0].split(", ")}
    assert rows["reference"] == ("NaN", "NaN", "NaN", "NaN", "0")
    assert rows["torch.nn.CrossEntropyLoss"] == ("NaN", "NaN", "—", "—", "0")
    assert rows["keras.losses.SparseCategoricalCrossentropy(from_logits=True) [jax]"][3] == "an array, not a scalar"
    assert rows["optax.softmax_cross_entropy"][2] == "raised ValueError"


def test_a_case_of_any_name_with_an_empty_denominator_gets_its_column():
    """The columns select by the facts of the input, not by case id: a user's case lands in them."""
    made = _cell("my-own-padding-batch", "ok", "nan", "nan", tags=["ignored-rows", "mean-over-nothing"])
    [row] = empty_denominators_table(typed([made])).rows[1:]
    assert row == ("torch.nn.CrossEntropyLoss", "NaN")


def test_smoothing_table_tells_the_two_conventions_apart():
    alpha_k, megatron = 1.5, 1.56
    records = typed([
        _cell("label-smoothing", "ok", alpha_k, alpha_k),
        _cell("label-smoothing-other-classes", "ok", megatron, megatron),
        _cell("label-smoothing", "inaccurate", megatron, alpha_k, api="other.loss", framework="other"),
    ])
    rows = {api: row[1:] for row in smoothing_table(records).rows for api in row[0].split(", ")}
    assert rows["torch.nn.CrossEntropyLoss"] == ("1.5", "1.5", "1.56", "α/K")
    assert rows["other.loss"][-1] == "α·K/(K − 1)"


def test_quantised_losses_are_the_bfloat16_numbers():
    assert quantised(11.5) and quantised(0.1015625)
    assert not quantised(11.503) and not quantised(0.0)


def test_scale_sweep_gives_relative_errors_and_the_last_good_scale():
    def sweep(scale: int, value: float, outcome: str = "ok") -> dict:
        return _cell(f"bf16-scale-{scale}", outcome, value, 10.0, dtype="bfloat16", area="scale-sweep",
                     scale=4.5 * scale)

    records = typed([sweep(5, 10.0625), sweep(10, 10.001), sweep(20, 12.0, "inaccurate")])
    [row] = scale_sweep_table(records).rows
    assert row[0] == "torch.nn.CrossEntropyLoss"
    assert row[1] == "6.3e-03 q" and row[2] == "1.0e-04" and row[3].startswith("✗ 2.0e-01")
    assert row[-1] == "s = 10"
    assert math.isclose(float(row[2].split()[0]), 1e-4)


def test_a_sweep_case_named_otherwise_keeps_its_column_in_order_of_its_logits():
    """Selected by area, ordered by the largest |logit|: renaming a case does not empty its column."""
    made = [_cell("bf16-scale-10", "ok", 10.0, 10.0, dtype="bfloat16", area="scale-sweep", scale=45.0),
            _cell("sweep-wide", "ok", 10.0, 10.0, dtype="bfloat16", area="scale-sweep", scale=20.0)]
    table = scale_sweep_table(typed(made))
    assert table.columns == ("api", "sweep-wide", "s = 10", "ok up to")
    assert table.rows[0][-1] == "all"
