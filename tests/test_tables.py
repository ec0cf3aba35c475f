"""Side-by-side tables: invalid labels per API, option values per API, and the same-name-different-number check."""

from __future__ import annotations

from xentcompat.report.decision import typed
from xentcompat.report.guidance import guidance
from xentcompat.report.html import render_html
from xentcompat.report.markdown import render_markdown
from xentcompat.report.tables import invalid_input_table, option_values_table, same_name_different_numbers
from xentcompat.results.documents import results_document
from tests.test_records import record

TORCH, SPARSE = "torch.nn.CrossEntropyLoss", "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"


def invalid(api: str, case: str, outcome: str, backend=None, value=None, error=None) -> dict:
    rec = record(case, loss=outcome, value=value, api=api, backend=backend, area="labels", invalid="bad label",
                 error=error, finding=None if outcome == "raised" else "XC-bad")
    rec["grad"] = {**rec["grad"], "outcome": outcome}
    return rec


def option(api: str, value: float, backend=None, case="class-weights", dtype="float32") -> dict:
    """An option cell that agrees with its own reference: the value it returned."""
    found = record(case, value=value, api=api, backend=backend, area="options", dtype=dtype)
    found["loss"]["reference"] = value
    return found


def test_invalid_table_says_what_each_api_did():
    records = [invalid(TORCH, "label-equals-C", "raised", error={"type": "IndexError", "message": "m"}),
               invalid(SPARSE, "label-equals-C", "silent", backend="jax", value=0.5),
               invalid(SPARSE, "label-minus-1", "crashed", backend="jax",
                       error={"type": "crashed", "message": "killed by signal SIGABRT (-6)"})]
    table = invalid_input_table(typed(records))
    assert table.columns == ("api", "label-equals-C", "label-minus-1")
    assert table.rows == ((f"{SPARSE} [jax]", "silent: 0.5", "crashed (killed by signal SIGABRT (-6))"),
                          (TORCH, "raised IndexError", "—"))
    silent, = [c for a in guidance(typed(records)) for c in a.claims if c.text.startswith("Return a value anyway")]
    assert f"`{SPARSE} [jax]` on label-equals-C" in silent.text and silent.findings == ("XC-bad",)


def test_same_option_name_different_numbers_side_by_side():
    records = [option(TORCH, 1.25), option(SPARSE, 0.9375, "tensorflow"), option(TORCH, 2.0, case="reduction-sum"),
               option(SPARSE, 2.0, "tensorflow", case="reduction-sum")]
    differing = {"class-weights": {TORCH: 1.25, f"{SPARSE} [tensorflow]": 0.9375}}
    assert same_name_different_numbers(typed(records)) == differing
    table = option_values_table(typed(records))
    assert ("class-weights", "1.25", "1.25", "ok / ok", TORCH) in table.rows
    assert ("class-weights", "0.9375", "0.9375", "ok / ok", f"{SPARSE} [tensorflow]") in table.rows
    report = render_markdown(results_document(records, []))
    assert "## Options side by side" in report and f"`{TORCH}` 1.25, `{SPARSE} [tensorflow]` 0.9375" in report
    assert "Options side by side" in render_html(results_document(records, []))


def test_values_of_one_reference_or_of_another_dtype_are_not_different_meanings():
    """Rounding (Keras' 1e-7 clip, a bfloat16 cell) moves a value, not the option's meaning."""
    clipped = option(SPARSE, 1.19209e-07, "jax", case="single-class")
    clipped["loss"]["reference"] = 0.0
    records = [option(TORCH, 0.0, case="single-class"), clipped,
               option(TORCH, 1.25), option(TORCH, 1.25, dtype="bfloat16"),
               option(SPARSE, 1.2578, "jax", dtype="bfloat16")]
    assert same_name_different_numbers(typed(records)) == {}


def test_no_tables_without_their_records():
    assert invalid_input_table(typed([record("a")])) is None and option_values_table(typed([record("a")])) is None
    assert "Invalid input" not in render_markdown(results_document([record("a")], []))
