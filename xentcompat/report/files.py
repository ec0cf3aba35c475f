"""The report's files: results.json, report.md and report.html in one directory."""

from __future__ import annotations

from pathlib import Path

from xentcompat.report.html import render_html
from xentcompat.report.markdown import render_markdown
from xentcompat.report.md_tables import readable_markdown
from xentcompat.results.digests import sealed
from xentcompat.results.documents import write_json_atomic, write_text_atomic
from xentcompat.results.record import Record


def write_reports(document: dict, out: Path) -> list[Record]:
    """results.json (with its records' digests), report.md and report.html in `out`: all three rendered before any
    is written, each written whole or not at all; the records, read once."""
    records = [Record.from_json(r) for r in document["records"]]  # read once, for both reports and the summary
    markdown = readable_markdown(render_markdown(document, records=records))
    html = render_html(document, records=records)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "results.json", sealed(document))
    write_text_atomic(out / "report.md", markdown)
    write_text_atomic(out / "report.html", html)
    return records
