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
        _cell("empty-batch-sum", "ok", 0.0, 0.0),
        _cell("empty-batch", "inaccurate", None, "nan", api="keras.losses.SparseCategoricalCrossentropy(from_logits=True)",
              backend="jax", framework="keras"),
        _cell("class-weights-zero-total", "raised", None, "nan", api="optax.softmax_cross_entropy", framework="jax",
              error={"type": "ValueError", "message": "no"}),
    ])
    table = empty_denominators_table(records)
    rows = {api: row[1:] for row in table.rows for api in row[0].split(", ")}
    assert rows["reference"] == ("NaN", "NaN", "NaN", "0")
    assert rows["torch.nn.CrossEntropyLoss"] == ("NaN", "—", "—", "0")
    assert rows["keras.losses.SparseCategoricalCrossentropy(from_logits=True) [jax]"][2] == "an array, not a scalar"
    assert rows["optax.softmax_cross_entropy"][1] == "raised ValueError"


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
        return _cell(f"bf16-scale-{scale}", outcome, value, 10.0, dtype="bfloat16")

    records = typed([sweep(5, 10.0625), sweep(10, 10.001), sweep(20, 12.0, "inaccurate")])
    [row] = scale_sweep_table(records).rows
    assert row[0] == "torch.nn.CrossEntropyLoss"
    assert row[1] == "6.3e-03 q" and row[2] == "1.0e-04" and row[3].startswith("✗ 2.0e-01")
    assert row[-1] == "s = 10"
    assert math.isclose(float(row[2].split()[0]), 1e-4)
