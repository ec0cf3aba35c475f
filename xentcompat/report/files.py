"""The report's files: results.json, report.md and report.html in one directory."""

from __future__ import annotations

from pathlib import Path

from xentcompat.report.html import render_html
from xentcompat.report.inert import inert_markdown
from xentcompat.report.markdown import render_markdown
from xentcompat.results.documents import write_json_atomic, write_text_atomic
from xentcompat.results.record import Record


def write_reports(document: dict, out: Path) -> list[Record]:
    """results.json, report.md and report.html in `out` (each written whole or not at all); the records, read once."""
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "results.json", document)
    records = [Record.from_json(r) for r in document["records"]]  # read once, for both reports and the summary
    write_text_atomic(out / "report.md", inert_markdown(render_markdown(document, records=records)))
    write_text_atomic(out / "report.html", render_html(document, records=records))
    return records
