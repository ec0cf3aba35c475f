"""report.md: one API on several Keras backends sits on adjacent rows, case by case."""

from __future__ import annotations

from xentcompat.report.markdown import render_markdown
from xentcompat.report.records import results_document
from tests.test_records import record

SPARSE = "keras.losses.SparseCategoricalCrossentropy(from_logits=False)"


def keras_record(case: str, backend: str, loss: str = "ok", **overrides) -> dict:
    return record(case, loss=loss, framework="keras", framework_version="3.15.1", api=SPARSE, backend=backend,
                  finding=None if loss == "ok" else f"XC-{backend}", **overrides)


def test_backends_of_one_api_are_adjacent_rows_and_differences_show():
    records = [keras_record(case, backend, "finite" if (case, backend) == ("b", "jax") else "ok")
               for backend in ("torch", "jax", "tensorflow") for case in ("a", "b")]
    report = render_markdown(results_document(records, []))
    every_cell = report[report.index("## Every cell"):]
    rows = [line for line in every_cell.splitlines() if line.startswith(f"| `{SPARSE}")]
    assert [row.split(" | ")[0:2] for row in rows[:6]] == [
        [f"| `{SPARSE} [jax]`", "a"], [f"| `{SPARSE} [tensorflow]`", "a"], [f"| `{SPARSE} [torch]`", "a"],
        [f"| `{SPARSE} [jax]`", "b"], [f"| `{SPARSE} [tensorflow]`", "b"], [f"| `{SPARSE} [torch]`", "b"]]
    assert "**finite / ok** !" in rows[3] and "ok / ok" in rows[4]
