"""The decision table's cost column, from a document's bench: one shape for the column, each choice's median time and
peak memory, its time against the framework's fused loss on the same backend, and "not timed" where the bench has
nothing."""

from __future__ import annotations

from xentcompat.report.choices import CHOICES
from xentcompat.report.decision import Row
from xentcompat.report.decision_cost import COST_KEY, HOW, legend, with_cost


def _rows(*apis: str) -> list[Row]:
    return [Row(choice, {}, (), 0, 0) for choice in CHOICES if choice.api in apis]


def _measured(api: str, median: float, peak_gib: float | None = 2.0, backend=None, rows=4096, classes=32000,
              **overrides) -> dict:
    return {"api": api, "backend": backend, "dtype": "float32", "device": "cpu", "mode": "eager", "rows": rows,
            "classes": classes, "median_seconds": median, "error": None,
            "peak_bytes": None if peak_gib is None else int(peak_gib * 2**30), **overrides}


TORCH = ("torch.nn.CrossEntropyLoss", "torch.nn.NLLLoss(log(softmax))", "torch.nn.CrossEntropyLoss(softmax)")
KERAS = "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"


def test_each_choice_costs_its_median_and_peak_against_the_fused_loss():
    rows = _rows(*TORCH)
    bench = {"measurements": [
        _measured(TORCH[0], 5.0), _measured(TORCH[1], 9.0, 2.5),
        _measured(TORCH[0], 0.5, rows=8, classes=10),  # another shape: fewer choices timed there
        _measured(TORCH[2], 1.0, mode="compiled"), _measured(TORCH[2], 1.0, dtype="bfloat16"),  # not the column's
        _measured(TORCH[2], None, error={"type": "MemoryError", "message": "out of memory"})]}
    column = with_cost(rows, bench)
    assert column.title == "cost (fp32, 4096 × 32k)"
    cells = {row.choice.api: row.cells[COST_KEY] for row in rows}
    assert (cells[TORCH[0]].mark, cells[TORCH[0]].text) == ("", "5 s, 2 GiB")
    assert cells[TORCH[1]].text == "9 s (×1.8 fused), 2.5 GiB"
    assert (cells[TORCH[2]].mark, cells[TORCH[2]].text) == ("", "out of memory")  # in the column: its failure
    assert legend(column).startswith("cost (fp32, 4096 × 32k): median time")


def test_keras_rows_name_their_backends_and_compare_on_the_same_one():
    rows = _rows(KERAS, "keras.losses.SparseCategoricalCrossentropy(from_logits=False)")
    bench = {"measurements": [_measured(KERAS, 1.5, backend="jax"), _measured(KERAS, 10.0, backend="torch"),
                              _measured("keras.losses.SparseCategoricalCrossentropy(from_logits=False)", 20.0, None,
                                        backend="torch")]}
    with_cost(rows, bench)
    cells = {row.choice.api: row.cells[COST_KEY].text for row in rows}
    assert cells[KERAS] == "JAX: 1.5 s, 2 GiB; torch: 10 s, 2 GiB"
    assert cells["keras.losses.SparseCategoricalCrossentropy(from_logits=False)"] == "torch: 20 s (×2 fused)"


def test_a_peak_the_bench_could_only_bound_is_shown_as_a_lower_bound():
    rows = _rows(TORCH[0])
    with_cost(rows, {"measurements": [_measured(TORCH[0], 0.25, 1.0, rss_before_bytes=2**30,
                                                baseline_rss_bytes=2**20)]})
    assert rows[0].cells[COST_KEY].text == "250 ms, ≥1 GiB"


def test_no_bench_no_column_and_the_legend_says_how_to_get_one():
    rows = _rows(*TORCH)
    assert with_cost(rows, None) is None and with_cost(rows, {"measurements": []}) is None
    assert all(COST_KEY not in row.cells for row in rows)
    assert legend(None) == HOW and "xentcompat bench" in HOW


def test_a_call_that_failed_at_the_shape_says_so_and_an_untimed_one_is_not_timed():
    rows = _rows(*TORCH)
    oom = {"type": "RuntimeError", "message": "DefaultCPUAllocator: can't allocate memory: you tried 6 GB"}
    bench = {"measurements": [_measured(TORCH[0], None, error=oom), _measured(TORCH[1], 9.0),
                              _measured(TORCH[2], None, error={"type": "NoTimingPath", "message": "no path"})]}
    with_cost(rows, bench)
    cells = {row.choice.api: row.cells[COST_KEY] for row in rows}
    assert cells[TORCH[0]].text == "out of memory"
    assert cells[TORCH[1]].text == "9 s, 2 GiB"  # no fused time to compare with
    assert (cells[TORCH[2]].mark, cells[TORCH[2]].text) == ("—", "not timed")
