"""The HTML of the report's first screen: the per-framework sentences and the decision table, and the stress table.

Same data as report.md's (`xentcompat.report.decision`); every text escaped, each cell linked to its first finding.
"""

from __future__ import annotations

import re
from html import escape

from xentcompat.report import decision
from xentcompat.report.decision_cost import legend as cost_legend, with_cost
from xentcompat.report.decision_training import TRAINING_COLUMN, with_training

MARK_CLASS = {"✓": "d-good", "✗": "d-bad", "ℹ": "d-note", "—": "d-none", "": "d-cost"}
CSS = """
.answer { margin: .3em 0 .4em; padding-left: 1.2em; font-size: .8em; line-height: 1.22; }
.answer li { margin: 0; }
table.decision { font-size: .73em; line-height: 1.18; width: 100%; table-layout: fixed; }
table.decision th { font-weight: 600; }
table.decision td, table.decision th { padding: 1px 4px; }
table.decision td.choice { font-family: ui-monospace, "DejaVu Sans Mono", monospace; overflow-wrap: anywhere; }
table.decision td.fw { font-weight: 600; }
table.decision col.fw { width: 6.9em; }
table.decision col.choice { width: 19em; }
table.decision a.note { font-family: system-ui, sans-serif; font-size: .95em; }
td.d-good { background: #e7f5ec; color: #1c6b3a; }
td.d-bad { background: #fdeceb; }
td.d-note { background: #eef3fb; }
td.d-none { color: #9aa3ad; }
td.d-bad a, td.d-note a { color: inherit; text-decoration-color: #b0b7bf; }
.legend { font-size: .78em; line-height: 1.3; color: #4a535c; margin: .3em 0; }
details.framework { margin: 0; }
details.framework > summary { cursor: pointer; font-size: .84em; font-weight: 600; line-height: 1.15; }
details.framework > summary span { font-weight: 400; color: #4a535c; }
"""
# the frameworks opened on the first screen, in order, while their rows add up to at most this: at 1400 × 900 the
# first framework's table, then every other framework's line (one click away)
OPEN_ROWS = 4


def answer_section(rows: list[decision.Row], training: dict | None = None, bench: dict | None = None) -> str:
    cost = with_cost(rows, bench)
    columns = decision.COLUMNS + ((TRAINING_COLUMN,) if with_training(rows, training) else ()) + (
        (cost,) if cost else ())
    sentences = "".join(f"<li>{_inline(text)}</li>" for text in decision.verdict_sentences(rows))
    return "\n".join([
        '<section id="answer">', '<h2 class="first">Which loss API?</h2>', f'<ul class="answer">{sentences}</ul>',
        f'<p class="legend">{escape(decision.DECISION_INTRO)} {_inline(cost_legend(cost))}</p>',
        *framework_tables(rows, columns), "</section>"])


def framework_tables(rows: list[decision.Row], columns) -> list[str]:
    """The decision table, one collapsible table per framework (the same columns, so they line up): the first
    frameworks open while their rows fit `OPEN_ROWS`, the others one click away, every framework's line on the first
    screen."""
    groups: dict[str, list[decision.Row]] = {}
    for row in rows:
        groups.setdefault(row.choice.framework, []).append(row)
    tables, shown = [], 0
    for framework, found in groups.items():
        shown += len(found)
        opened = " open" if shown <= OPEN_ROWS or len(groups) == 1 else ""
        count = f"{len(found)} choice{'s' if len(found) != 1 else ''}"
        tables.append(f'<details class="framework"{opened}><summary>{escape(framework)} <span>({count})</span>'
                      f"</summary>\n{decision_table(found, columns)}</details>")
    return tables


def stress_section(rows: list[decision.Row]) -> str | None:
    rows = [row for row in rows if any(cell.mark != "—" for cell in row.cells.values())]
    if not rows:
        return None
    return "\n".join(['<section id="stress">', "<h2>Stress: the dtype's limits</h2>",
                      f"<p>{escape(decision.STRESS_INTRO)}</p>", decision_table(rows, decision.STRESS_COLUMNS),
                      "</section>"])


def decision_table(rows: list[decision.Row], columns) -> str:
    head = "".join(f"<th>{escape(column.title)}</th>" for column in columns)
    body = []
    for row in rows:  # a precision cause is a note under the choice, not a column's failure
        note = "".join(f' <a class="note" href="#{escape(f.lower())}">ℹ {escape(f)}</a>' for f in row.notes)
        cells = "".join(_cell(row.cells[column.key]) for column in columns)
        body.append(f'<tr><td class="fw">{escape(row.choice.framework)}</td><td class="choice" '
                    f'title="{escape(row.choice.api)}">{escape(row.choice.label)} <span class="form">'
                    f"({escape(row.form_words)})</span>{note}</td>{cells}</tr>")
    return "\n".join([
        '<table class="decision"><colgroup><col class="fw"><col class="choice">' + "<col>" * len(columns)
        + "</colgroup>", f"<thead><tr><th>framework</th><th>choice</th>{head}</tr></thead>", "<tbody>", *body,
        "</tbody></table>"])


def _cell(cell: decision.Cell) -> str:
    text = escape(f"{cell.mark} {cell.text}".strip())
    if cell.findings:
        first, *more = cell.findings
        text = (f'<a href="#{escape(first.lower())}" title="{escape(first)}">{text}</a>'
                + "".join(f' <a href="#{escape(f.lower())}" title="{escape(f)}">+</a>' for f in more))
    return f'<td class="{MARK_CLASS[cell.mark]}">{text}</td>'


def _inline(text: str) -> str:
    """Escaped, with **bold** and `code` spans of the sentences as HTML."""
    html = escape(text)
    html = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", html)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html)
