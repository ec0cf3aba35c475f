"""report.html: the answer first (the same sentences and decision table as report.md's), then the plots, the findings
and every cell behind a collapsed, filterable table, in one self-contained file.

Inline CSS, inline SVG and one inline script (the filter of the per-cell table): no font, stylesheet, script or image
from anywhere else, so the file opens the same offline, attached to a bug report or archived with a paper. Every text
that comes from the records or the user's case file (API and case ids, error messages, reasons, reproducers,
environment strings) goes through `html.escape`; only an http(s) upstream link becomes a link. The data (decision
table, findings, guidance, hash) comes from the report's data layer, the same as report.md's.
"""

from __future__ import annotations

import datetime
import re
from collections import defaultdict
from html import escape
from urllib.parse import urlsplit

from xentcompat import __version__
from xentcompat.report import decision, devices, forward_mode, hardware, html_decision, plots, relations, rows
from xentcompat.report import bench as bench_section
from xentcompat.report.accumulation import accumulation_intro, accumulation_table
from xentcompat.report.conventions import EMPTY_INTRO, SMOOTHING_INTRO, empty_denominators_table, smoothing_table
from xentcompat.report.findings import Finding, api_label, collect, dtype_order, unexpected
from xentcompat.report.guidance import guidance
from xentcompat.report.markdown import (CELL_COLUMNS, CONFLICTS_INTRO, INVALID_INTRO, LEGEND, OPTIONS_INTRO, anchor,
                                        citation, conflict_text, hidden_rows_intro, not_run_text, relations_intro,
                                        results_hash, set_aside_entries, title)
from xentcompat.report.scale_sweep import INTRO as SWEEP_INTRO, scale_sweep_table
from xentcompat.report.style import CSS
from xentcompat.report.tables import Table, invalid_input_table, option_values_table
from xentcompat.report.training import html_section
from xentcompat.results.record import Record



FILTER_SCRIPT = """
document.querySelectorAll("input.filter").forEach(function (input) {
  var rows = document.querySelectorAll("#" + input.dataset.table + " tbody tr");
  input.addEventListener("input", function () {
    var words = input.value.toLowerCase().split(/\\s+/).filter(Boolean);
    rows.forEach(function (row) {
      var text = row.textContent.toLowerCase();
      row.hidden = !words.every(function (word) { return text.indexOf(word) >= 0; });
    });
  });
});
"""


def render_html(document: dict, today: datetime.date | None = None, records: list[Record] | None = None) -> str:
    """The report of `document`; `records` its records already typed (read from the document when None)."""
    today = today or datetime.date.today()
    records = decision.typed(document.get("records", [])) if records is None else records
    findings = collect(records, document.get("causes"))
    kinds = decision.cause_kinds(document)
    rows = decision.decision_rows(records, kinds)
    first_screen = [html_decision.answer_section(rows, document.get("training"), document.get("bench"))] if rows else []
    stress = html_decision.stress_section(decision.decision_rows(records, kinds, decision.STRESS_COLUMNS))
    sections = [_run(document), _skipped(document), _guidance(records, kinds), _training(document, findings),
                _plots(records),
                _table("invalid", "Invalid input: what each API does", INVALID_INTRO, invalid_input_table(records)),
                _table("options", "Options side by side", OPTIONS_INTRO, option_values_table(records)),
                _table("accumulation", "Gradient accumulation", accumulation_intro(records),
                       accumulation_table(records)),
                _table("empty", "Empty denominators", EMPTY_INTRO, empty_denominators_table(records)),
                _table("smoothing", "Label smoothing conventions", SMOOTHING_INTRO, smoothing_table(records)),
                _table("bf16-scale", "bfloat16 logit scale", SWEEP_INTRO, scale_sweep_table(records)),
                _table("varies-by-cpu", "Varies by CPU", hardware.INTRO, hardware.varies_by_cpu_table(records)),
                _table("varies-by-device", "Varies by device", devices.INTRO,
                       devices.varies_by_device_table(records)),
                _table("forward-mode", "Forward-mode gradients", forward_mode.INTRO,
                       forward_mode.varies_by_direction_table(records)),
                _relations(records),
                _hidden_rows(records),
                _findings(findings) if rows else None, _bench(document), _matrix(records), _not_run(document),
                _conflicts(document)]
    if not rows and findings:  # no API the decision table lists (a check of a user's loss): what deviates first
        sections.insert(0, _findings(findings))
    sections = [section for section in sections if section]
    body = [_header(document, records, findings, today), _contents(sections), *first_screen,
            *([stress] if stress else []), *(html for _, _, html in sections)]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{escape(title(document))}</title>\n<style>{CSS}{html_decision.CSS}</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(body) + f"\n</main>\n<script>{FILTER_SCRIPT}</script>\n</body>\n</html>\n")


def inline(text: str) -> str:
    """Escaped text, with the `code` spans of the data layer's prose as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(str(text)))


def finding_links(finding_ids, separator: str = ", ") -> str:
    return separator.join(f'<a class="finding-link" href="#{escape(anchor(f))}">{escape(f)}</a>'
                          for f in finding_ids)


def upstream_link(url: str) -> str:
    """An http(s) address as a link; anything else as text."""
    parts = urlsplit(str(url))
    if parts.scheme in ("http", "https") and parts.netloc:
        return f'<a href="{escape(str(url))}" rel="noopener noreferrer">{escape(str(url))}</a>'
    return escape(str(url))


def _section(key: str, title: str, parts: list[str]) -> tuple[str, str, str]:
    """(anchor, title, html) of one section, its heading first."""
    return key, title, "\n".join([f'<section id="{key}">', f"<h2>{escape(title)}</h2>", *parts, "</section>"])


def _header(document: dict, records: list[Record], findings: list[Finding], today: datetime.date) -> str:
    return "\n".join([
        "<header>", f"<h1>{escape(title(document))}</h1>",
        f'<p class="meta">Generated {today.isoformat()} by xentcompat {escape(__version__)}; results hash '
        f"<code>{escape(results_hash(document))}</code>; {len(records)} cells, {len(findings)} findings "
        '(<a href="#run">this run</a>).</p>', "</header>"])


def _run(document: dict):
    environments = [_environment(env) for env in document.get("environments", [])] or ["<li>no framework ran</li>"]
    environments += [f"<li>{escape(text[0].upper() + text[1:])}</li>"
                     for text in hardware.machines(document.get("environments", []))]
    return _section("run", "This run", ['<ul class="environments">', *environments, "</ul>",
                                        f'<p class="cite">Cite as: {escape(citation(document))}.</p>'])


def _environment(env: dict) -> str:
    frameworks = ", ".join(f"{name} {version}" for name, version in (env.get("frameworks") or {}).items())
    devices = ", ".join(f"{kind}: {name}" for kind, name in (env.get("devices") or {}).items())
    return (f"<li><strong>{escape(str(env.get('target')))}</strong>: {escape(frameworks)}; devices "
            f"{escape(devices)}; Python {escape(str(env.get('python')))}; {escape(str(env.get('platform')))}; "
            f"machine {escape(str(env.get('machine')))}</li>")


def _contents(sections: list[tuple[str, str, str]]) -> str:
    items = "".join(f'<li><a href="#{key}">{escape(title)}</a></li>' for key, title, _ in sections)
    return f'<nav aria-label="contents"><ul>{items}</ul></nav>'


def _skipped(document: dict):
    targets = document.get("targets", [])
    items = [f"<li>{escape(str(t['name']))}: skipped, {escape(str(t['skipped']))}</li>" for t in targets
             if t.get("skipped")]
    items += [f"<li>{escape(str(t['name']))}: incomplete, {escape(str(t['failed']))}</li>" for t in targets
              if t.get("failed")]
    if not items:
        return None
    return _section("skipped", "Skipped and incomplete targets", ["<ul>", *items, "</ul>"])


def _guidance(records: list[Record], kinds: dict[str, str]):
    answers = guidance(records, kinds)
    if not answers:
        return None
    parts = ["<p>Each claim is computed from this run's records; the findings it rests on are linked.</p>"]
    for answer in answers:
        parts += [f"<h3>{inline(answer.question)}</h3>", "<ul>"]
        for claim in answer.claims:
            evidence = f"{claim.records} records" + ("; " + finding_links(claim.findings) if claim.findings else "")
            parts.append(f"<li>{inline(claim.text)} ({evidence})</li>")
        parts.append("</ul>")
    return _section("guidance", "Guidance from this run", parts)


def _training(document: dict, findings: list[Finding]):
    training = document.get("training")
    if not training:
        return None
    return "training", "Training evidence", html_section(training, findings={finding.id for finding in findings})


def _plots(records: list[Record]):
    if not records:
        return None
    parts = ["<h3>Outcome per API and case, one map per dtype</h3>",
             "<p>The decision table's APIs, eager. A square is the worse of the loss and gradient outcome; blue "
             "(raised) is the good outcome for invalid input, purple (silent) a value returned for it; a blank "
             "square did not run; a dot marks a cell no cause predicts. Hover a square that is not ok for its "
             "outcomes.</p>"]
    for dtype, group in plots.heatmap_records(records).items():
        parts += [f"<h4>{escape(dtype)}</h4>", f'<div class="scroll">{plots.outcome_heatmap(group, dtype)}</div>']
    panels = plots.error_panels(records)
    if panels:
        parts += ["<h3>Loss error against logit scale</h3>",
                  "<p>Where it tells APIs apart: each decision-table API whose loss leaves the band on a realistic "
                  "float32 case where its framework's fused API is ok (Keras backends with the same float32 outcomes "
                  "share a panel, showing the first one's points). "
                  "The loss error in units of the dtype, so every dtype shares one axis, against the case's largest "
                  "finite |logit|. The shaded band is within the bound; a loss "
                  "that is not finite where the reference is sits on the top row.</p>",
                  f'<div class="scroll">{plots.error_legend(records)}</div>', '<div class="panels">',
                  *(f"<figure><figcaption>{escape(label)}</figcaption>{svg}</figure>" for label, svg in panels),
                  "</div>"]
    return _section("plots", "Plots", parts)


def _table(key: str, title: str, intro: str, table: Table | None):
    if table is None:
        return None
    head = "".join(f"<th>{escape(column)}</th>" for column in table.columns)
    rows = ["<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in table.rows]
    return _section(key, title, [f"<p>{inline(intro)}</p>", '<div class="scroll"><table>',
                                 f"<thead><tr>{head}</tr></thead>", "<tbody>", *rows, "</tbody></table></div>"])


def _bench(document: dict):
    bench = document.get("bench")
    return ("bench", bench_section.TITLE, bench_section.html_section(bench)) if bench else None


def _findings(findings: list[Finding]):
    if not findings:
        return _section("findings", "Findings", ["<p>None: every cell agrees with the reference.</p>"])
    return _section("findings", "Findings", [_finding(finding) for finding in findings])


def _finding(finding: Finding) -> str:
    status = escape(finding.status())
    if not finding.predicted:
        status = status.replace("not predicted: new in this run",
                                '<span class="new">not predicted: new in this run</span>')
    items = [f"<li>{status}</li>", "<li>where: " + "; ".join(
        ", ".join(f"<code>{escape(api)}</code>" for api in apis) + f" {escape(where)}"
        for apis, where in finding.where_lines()) + "</li>"]
    if finding.upstream:
        items.append(f"<li>upstream: {', '.join(upstream_link(link) for link in finding.upstream)}</li>")
    elif finding.no_upstream():
        items.append(f"<li>upstream: {escape(finding.no_upstream())}</li>")
    if finding.seed_apis:
        items.append("<li>decision-table APIs affected: "
                     + ", ".join(f"<code>{escape(api)}</code>" for api in finding.seed_apis) + "</li>")
    parts = [f'<article class="finding" id="{escape(anchor(finding.id))}">',
             f"<h3>{escape(finding.id)}: {escape(finding.title)} ({escape(finding.kind)})</h3>",
             f"<p>{inline(finding.explanation())}</p>", "<ul>", *items, "</ul>", _finding_cells(finding)]
    if finding.repro:
        parts.append(f'<pre><code class="language-python">{escape(finding.repro)}</code></pre>')
    return "\n".join(parts + ["</article>"])


def _finding_cells(finding: Finding) -> str:
    rows = finding.cells()
    head = "".join(f"<th>{escape(column)}</th>" for column in CELL_COLUMNS)
    body = ["<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows]
    more = len(finding.records) - len(rows)
    tail = (f"<p>{more} more cells in results.json (<code>finding</code> = <code>{escape(finding.id)}</code>) and in "
            'the <a href="#cells">table of every cell</a>.</p>') if more > 0 else ""
    return "\n".join(['<div class="scroll"><table>', f"<thead><tr>{head}</tr></thead>", "<tbody>", *body,
                      "</tbody></table></div>", tail])


def _matrix(records: list[Record]):
    if not records:
        return None
    dtypes = sorted({r.dtype for r in records}, key=lambda dtype: (dtype_order(dtype), dtype))
    table: dict[tuple[str, str, str], dict[str, Record]] = defaultdict(dict)
    for record in records:  # as in report.md: one API's backends, devices and modes on adjacent rows, case by case
        table[(record.api, record.case, api_label(record))][record.dtype] = record
    head = "".join(f"<th>{escape(dtype)}</th>" for dtype in dtypes)
    rows = [f"<tr><td>{escape(label)}</td><td>{escape(case)}</td>"
            + "".join(_cell(row.get(dtype)) for dtype in dtypes) + "</tr>"
            for (_, case, label), row in sorted(table.items())]
    return _section("cells", "Every cell: loss / gradient", [
        f"<p>{inline(LEGEND)} Deviations are highlighted; ! marks one no expectation entry predicts; — not run.</p>",
        f'<details class="cells"><summary>Show the {len(records)} cells</summary>',
        '<input class="filter" type="search" data-table="cells-table" '
        'placeholder="filter rows: words that must all appear, e.g. torch nan float16" aria-label="filter cells">',
        '<div class="scroll"><table class="cells" id="cells-table">',
        f'<thead><tr><th class="api">api</th><th>case</th>{head}</tr></thead>', "<tbody>", *rows,
        "</tbody></table></div></details>"])


def _cell(record: Record | None) -> str:
    if record is None:
        return "<td>—</td>"
    observed = (record.loss.outcome, record.grad.outcome)
    if observed == ("ok", "ok") and not unexpected(record):
        return "<td>ok</td>"
    text = escape(" / ".join(observed)) + (" !" if unexpected(record) else "")
    error = record.error
    said = f"{error.type}: {error.message}"[:120] if error else ""
    title = f' title="{escape(said)}"' if error else ""
    css = "ok" if observed == ("ok", "ok") else f"o-{observed[0]}" if observed[0] in ("raised", "silent") \
        else "deviation"
    return f'<td class="{css}"{title}>{text}</td>'


def _not_run(document: dict):
    entries = document.get("not_run", []) + set_aside_entries(document)
    if not entries:
        return None
    items = [f"<li>{escape(not_run_text(entry))}</li>" for entry in entries]
    return _section("not-run", "Not run", ["<ul>", *items, "</ul>"])


def _conflicts(document: dict):
    conflicts = document.get("conflicts", [])
    if not conflicts:
        return None
    items = [f"<li>{escape(conflict_text(conflict))}</li>" for conflict in conflicts]
    return _section("conflicts", "Conflicting measurements", [f"<p>{escape(CONFLICTS_INTRO)}</p>", "<ul>", *items,
                                                               "</ul>"])


def _hidden_rows(records: list[Record]):
    return _checked_section("hidden-rows", "Rows a right mean hid", rows.checked_count(records)[0],
                            hidden_rows_intro(records), rows.hidden_rows_table(records))


def _relations(records: list[Record]):
    return _checked_section("relations", "Metamorphic relations", relations.checked_count(records)[0],
                            relations_intro(records), relations.broken_relations_table(records))


def _checked_section(key: str, title: str, checked: int, intro: str, table):
    """A section of what a run checked: none when it checked nothing, the intro alone when nothing deviated."""
    if not checked:
        return None
    if table is None:
        return _section(key, title, [f"<p>{inline(intro)}</p>"])
    return _table(key, title, intro, table)
