"""report.md: the decision table says which Keras backend does what; the per-cell dump is not in report.md."""

from __future__ import annotations

import re

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
    start = "| Keras `Softmax layer, then from_logits=False`"
    [row] = [line for line in report.splitlines() if line.startswith(start)]
    confident = row.split(" | ")[1]
    assert confident == "[✗ JAX: loss 1 for 1; TF, torch ✓](#xc-jax)", confident
    assert "## Every cell" not in report  # the per-cell dump stays in results.json and report.html


HOSTILE = ["mine-<img src=x onerror=alert(1)>", "mine-\x1b[2J\x1b[31mred", "mine-\rover\x07bell", "mine-<script>x"]


def test_report_md_holds_no_html_but_its_anchors_and_no_terminal_control_characters(tmp_path):
    """Case ids (a user's file), messages (a framework's exception) reach report.md as text, not as HTML or as
    escape sequences a terminal would run."""
    from xentcompat.report.files import write_reports

    records = [record(case, loss="nan", finding="XC-unexplained-nan",
                      error={"type": "Hostile", "message": f"<b>{case}</b>\x1b]0;title\x07"}) for case in HOSTILE]
    write_reports(results_document(records, []), tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "mine-" in text and "mine-&lt;img src=x" in text
    stray = [line for line in text.splitlines() if re.search(r'<(?!a id="xc-[a-z0-9-]+">|/a>)', line)]
    assert stray == []
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", text)
    assert "\\x1b[2J" in text  # shown, not run


def test_inert_markdown_keeps_the_reports_own_anchors_and_text():
    from xentcompat.report.inert import inert_markdown

    kept = '### <a id="xc-softmax-twice"></a>Softmax twice\n| a | b\tc |\n'
    assert inert_markdown(kept) == kept
    assert inert_markdown("<a href=x>\x1b") == "&lt;a href=x>\\x1b"
