"""report.md: the decision table says which Keras backend does what; the per-cell dump is not in report.md."""

from __future__ import annotations

from xentcompat.report.markdown import render_markdown
from xentcompat.results.documents import results_document
from tests.test_records import record

SPARSE = "keras.losses.SparseCategoricalCrossentropy(from_logits=False)"


def keras_record(case: str, backend: str, loss: str = "ok", **overrides) -> dict:
    return record(case, loss=loss, framework="keras", framework_version="3.15.1", api=SPARSE, backend=backend,
                  finding=None if loss == "ok" else f"XC-{backend}", **overrides)


def test_backends_that_differ_share_a_decision_cell_that_says_which_does_what():
    records = [keras_record("confident-wrong-gap100", backend, "finite" if backend == "jax" else "ok", scale=100.0)
               for backend in ("torch", "jax", "tensorflow")]
    report = render_markdown(results_document(records, []))
    start = "| Keras | `Softmax layer, then from_logits=False`"
    [row] = [line for line in report.splitlines() if line.startswith(start)]
    confident = row.split(" | ")[2]
    assert confident == "[✗ JAX: loss 1 for 1; TF, torch ✓](#xc-jax)", confident
    assert "## Every cell" not in report  # the per-cell dump stays in results.json and report.html
