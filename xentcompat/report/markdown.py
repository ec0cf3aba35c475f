"""report.md: the answer first (a sentence per framework and the decision table), the stress table, then the run,
guidance, side-by-side tables, the findings ordered by impact and, from a merged bench.json, speed and memory; every
cell's record stays in results.json.

Everything shown is computed from the results document alone: a merged CI run renders the same way.
"""

from __future__ import annotations

import datetime
import hashlib
import json

from xentcompat import __version__
from xentcompat.report import decision, devices, forward_mode, hardware, relations, rows
from xentcompat.report.accumulation import accumulation_intro, accumulation_table
from xentcompat.report.bench import markdown_section as bench_section
from xentcompat.report.conventions import EMPTY_INTRO, SMOOTHING_INTRO, empty_denominators_table, smoothing_table
from xentcompat.report.decision_cost import legend as cost_legend, with_cost
from xentcompat.report.decision_training import TRAINING_COLUMN, with_training
from xentcompat.report.findings import Finding, collect
from xentcompat.report.guidance import guidance
from xentcompat.report.scale_sweep import INTRO as SWEEP_INTRO, scale_sweep_table
from xentcompat.report.tables import Table, invalid_input_table, option_values_table
from xentcompat.report.training import markdown_section
from xentcompat.results.record import Record

INVALID_INTRO = ("The reference refuses these inputs; a clear error is the good outcome. `silent` shows the loss the "
                 "API returned anyway; `crashed` how the process died (the case ran in a child process).")
OPTIONS_INTRO = ("Float32. Each reference is the loss as that API documents the option (e.g. a weighted mean divided "
                 "by the targets' weights in PyTorch, by N with Keras `sample_weight`), so one case can hold "
                 "different correct numbers.")
LEGEND = ("Outcomes: `ok`, `inaccurate` (beyond the error bound), `nan`, `inf`, `finite` (where the reference is "
          "infinite or NaN), `raised`, `silent` (invalid input accepted), `crashed`; each cell is loss / gradient.")


UNMEASURED = ("seconds",)  # how long a call took is the machine's, not the measurement's


def results_hash(document: dict) -> str:
    """sha256 of what was measured: the records without their timings, each as canonical JSON, in sorted order, so
    the same measurements give the same hash whatever the run's timing or the order of its shards."""
    texts = sorted(json.dumps({k: v for k, v in record.items() if k not in UNMEASURED}, sort_keys=True)
                   for record in document.get("records", []))
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]


def citation(document: dict) -> str:
    return (f"xentcompat {__version__}, results hash {results_hash(document)} "
            "(see CITATION.cff; the hash identifies the records this report was rendered from)")


def render_markdown(document: dict, today: datetime.date | None = None, records: list[Record] | None = None) -> str:
    """The report of `document`; `records` its records already typed (read from the document when None)."""
    today = today or datetime.date.today()
    records = decision.typed(document.get("records", [])) if records is None else records
    findings = collect(records, document.get("causes"))
    kinds = decision.cause_kinds(document)
    answer = _answer(records, kinds, document.get("training"), document.get("bench"))
    findings_first = not answer  # no API the decision table lists (a check of a user's loss): what deviates first
    lines = [
        f"# {title(document)}",
        "",
        f"Generated {today.isoformat()} by xentcompat {__version__}; results hash `{results_hash(document)}`; "
        f"{len(records)} cells, {len(findings)} findings.",
        "",
        *(answer or _findings(findings)),
        *_stress(records, kinds),
        "## This run",
        "",
        *_environment_lines(document),
        "",
        f"Cite as: {citation(document)}.",
        "",
        *_targets(document),
        *_guidance(records, kinds),
        *_training(document.get("training"), findings),
        *_table("Invalid input: what each API does", INVALID_INTRO, invalid_input_table(records)),
        *_table("Options side by side", OPTIONS_INTRO, option_values_table(records)),
        *_table("Gradient accumulation", accumulation_intro(records), accumulation_table(records)),
        *_table("Empty denominators", EMPTY_INTRO, empty_denominators_table(records)),
        *_table("Label smoothing conventions", SMOOTHING_INTRO, smoothing_table(records)),
        *_table("bfloat16 logit scale", SWEEP_INTRO, scale_sweep_table(records)),
        *_table("Varies by CPU", hardware.INTRO, hardware.varies_by_cpu_table(records)),
        *_table("Varies by device", devices.INTRO, devices.varies_by_device_table(records)),
        *_table("Forward-mode gradients", forward_mode.INTRO, forward_mode.varies_by_direction_table(records)),
        *_relations(records),
        *_hidden_rows(records),
        *([] if findings_first else _findings(findings)),
        *_bench(document.get("bench")),
        *_not_run(document),
        *_conflicts(document),
    ]
    return "\n".join(lines).rstrip() + "\n"


def title(document: dict) -> str:
    """The report's title: a check names the callable it checked."""
    checked = document.get("check")
    if checked:
        return f"xentcompat check: {checked['api']} ({checked['framework']}) against a float64 reference"
    return "xentcompat report: softmax cross-entropy APIs against a float64 reference"


def relations_intro(records: list[Record]) -> str:
    checked, broken = relations.checked_count(records)
    return f"{relations.INTRO} {checked} relations checked, {broken or 'none'} broken."


def _relations(records: list[Record]) -> list[str]:
    return _checked_section("Metamorphic relations", relations.checked_count(records)[0], relations_intro(records),
                            relations.broken_relations_table(records))


def _checked_section(title: str, checked: int, intro: str, table) -> list[str]:
    """A section of what a run checked: nothing when it checked none, the intro alone when nothing deviated."""
    if not checked:
        return []
    if table is None:
        return [f"## {title}", "", intro, ""]
    return _table(title, intro, table)


def hidden_rows_intro(records: list[Record]) -> str:
    judged, hidden = rows.checked_count(records)
    return f"{rows.INTRO} {judged} cells judged row by row, {hidden or 'none'} with a row the mean hid."


def _hidden_rows(records: list[Record]) -> list[str]:
    return _checked_section("Rows a right mean hid", rows.checked_count(records)[0], hidden_rows_intro(records),
                            rows.hidden_rows_table(records))


def anchor(finding_id: str) -> str:
    return finding_id.lower()


def _environment_lines(document: dict) -> list[str]:
    lines = []
    for env in document.get("environments", []):
        frameworks = ", ".join(f"{name} {version}" for name, version in env.get("frameworks", {}).items())
        devices = ", ".join(f"{kind}: {name}" for kind, name in env.get("devices", {}).items())
        lines.append(f"- {env.get('target')}: {frameworks}; devices {devices}; Python {env.get('python')}; "
                     f"{env.get('platform')}; machine {env.get('machine')}")
    return (lines + [f"- {text[0].upper()}{text[1:]}" for text in hardware.machines(document.get("environments", []))]
            if lines else ["- no framework ran"])


def _targets(document: dict) -> list[str]:
    skipped = [t for t in document.get("targets", []) if t.get("skipped")]
    failed = [t for t in document.get("targets", []) if t.get("failed")]
    lines = ["## Skipped targets", "", *(f"- {t['name']}: {t['skipped']}" for t in skipped), ""] if skipped else []
    if failed:
        lines += ["## Incomplete targets", "", *(f"- {t['name']}: {_escape(t['failed'])}" for t in failed), ""]
    return lines


def _answer(records, kinds: dict[str, str], training: dict | None, bench: dict | None) -> list[str]:
    rows = decision.decision_rows(records, kinds)
    if not rows:
        return []
    cost = with_cost(rows, bench)
    columns = decision.COLUMNS + ((TRAINING_COLUMN,) if with_training(rows, training) else ()) + (
        (cost,) if cost else ())
    return ["## Which loss API?", "", *(f"- {_escape_sentence(text)}" for text in decision.verdict_sentences(rows)),
            "", f"{decision.DECISION_INTRO} {cost_legend(cost)}", "", *_decision_table(rows, columns), ""]


def _training(training: dict | None, findings: list[Finding]) -> list[str]:
    if not training:
        return []
    return [*markdown_section(training, findings={finding.id for finding in findings}), ""]


def _bench(bench: dict | None) -> list[str]:
    return bench_section(bench) if bench else []


def _stress(records, kinds: dict[str, str]) -> list[str]:
    rows = [row for row in decision.decision_rows(records, kinds, decision.STRESS_COLUMNS)
            if any(cell.mark != "—" for cell in row.cells.values())]
    if not rows:
        return []
    return ["## Stress: the dtype's limits", "", decision.STRESS_INTRO, "",
            *_decision_table(rows, decision.STRESS_COLUMNS), ""]


def _decision_table(rows, columns) -> list[str]:
    """One row per choice, named by its framework and label in the first column (which a table too wide for a line
    repeats in each of its parts: see `md_tables`)."""
    lines = ["| choice | " + " | ".join(c.title for c in columns) + " |", "|---|" + "---|" * len(columns)]
    for row in rows:  # a precision cause is a note beside the choice, not a column's failure
        cells = " | ".join(decision_cell_markdown(row.cells[c.key]) for c in columns)
        note = "".join(f" ℹ [{f}](#{anchor(f)})" for f in row.notes)
        lines.append(f"| {row.choice.framework} `{_escape(row.choice.label)}` ({row.form_words}){note} | {cells} |")
    return lines


def decision_cell_markdown(cell: decision.Cell) -> str:
    """The mark and the number, linked to the first finding; further findings as +links."""
    if not cell.findings:
        return _escape(f"{cell.mark} {cell.text}".strip())
    first, *more = cell.findings
    extra = "".join(f" [+](#{anchor(f)})" for f in more)
    return f"[{_escape(f'{cell.mark} {cell.text}')}](#{anchor(first)}){extra}"


def _escape_sentence(text: str) -> str:
    return str(text).replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def _guidance(records: list[Record], kinds: dict[str, str]) -> list[str]:
    answers = guidance(records, kinds)
    if not answers:
        return []
    lines = ["## Guidance from this run", "",
             "Each claim is computed from this run's records; the findings it rests on are linked.", ""]
    for answer in answers:
        lines += [f"### {answer.question}", ""]
        for claim in answer.claims:
            evidence = f"{claim.records} records"
            if claim.findings:
                evidence += "; " + ", ".join(f"[{f}](#{anchor(f)})" for f in claim.findings)
            lines.append(f"- {_escape(claim.text)} ({evidence})")
        lines.append("")
    return lines


def _table(title: str, intro: str, table: Table | None) -> list[str]:
    if table is None:
        return []
    lines = [f"## {title}", "", intro, "", "| " + " | ".join(_escape(c) for c in table.columns) + " |",
             "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(_escape(cell) for cell in row) + " |" for row in table.rows]
    return lines + [""]


def _findings(findings: list[Finding]) -> list[str]:
    if not findings:
        return ["## Findings", "", "None: every cell agrees with the reference.", ""]
    lines = ["## Findings", "", "A finding is a cause: one mechanism, with an id that does not change (cite it). "
             "Unexplained findings, deviations no cause predicts, come first.", ""]
    for finding in findings:
        lines += [f'<a id="{anchor(finding.id)}"></a>', f"### {finding.id}: {_escape(finding.title)} ({finding.kind})",
                  "", _escape(finding.explanation()), "", *finding_facts(finding, _escape), "",
                  *_finding_cells(finding)]
        if finding.repro:
            lines += ["", "```python", finding.repro, "```"]
        lines.append("")
    return lines


CELL_COLUMNS = ("api", "backend", "dtype", "mode", "case", "measured")


def _finding_cells(finding: Finding) -> list[str]:
    rows = finding.cells()
    lines = ["| " + " | ".join(CELL_COLUMNS) + " |", "|" + "---|" * len(CELL_COLUMNS)]
    lines += ["| " + " | ".join(_escape(cell) for cell in row) + " |" for row in rows]
    if len(finding.records) > len(rows):
        lines.append(f"\n{len(finding.records) - len(rows)} more cells in results.json (`finding` = `{finding.id}`).")
    return lines


def finding_facts(finding: Finding, escape) -> list[str]:
    """The bullet points of a finding: cells and outcomes, APIs and where, upstream."""
    status = finding.status()
    if not finding.predicted:
        status = status.replace("not predicted: new in this run", "**not predicted: new in this run**")
    lines = [f"- {status}", "- where: " + "; ".join(", ".join(f"`{escape(api)}`" for api in apis) + f" {escape(where)}"
                                                    for apis, where in finding.where_lines())]
    if finding.seed_apis:
        lines.append(f"- decision-table APIs affected: {', '.join(f'`{escape(api)}`' for api in finding.seed_apis)}")
    if finding.upstream:
        lines.append(f"- upstream: {', '.join(finding.upstream)}")
    elif finding.no_upstream():
        lines.append(f"- upstream: {escape(finding.no_upstream())}")
    return lines


def set_aside_entries(document: dict) -> list[dict]:
    """The stored records left out as no measurement, one entry per reason with every cell it covers."""
    by_reason: dict[str, list[str]] = {}
    for entry in document.get("set_aside", []):
        by_reason.setdefault(entry["reason"], []).append(entry["cell"])
    return [{"cell": f"{len(cells)} stored records left out ({'; '.join(cells)})", "reason": reason}
            for reason, cells in by_reason.items()]


def _not_run(document: dict) -> list[str]:
    entries = document.get("not_run", []) + set_aside_entries(document)
    if not entries:
        return []
    return ["## Not run", "", *(f"- {_escape(not_run_text(entry))}" for entry in entries), ""]


CONFLICTS_INTRO = ("The same cell, measured twice on one machine and framework version, gave two outcomes (a flaky "
                   "kernel, or shards from different builds): the report uses the first, both are listed.")


def conflict_text(conflict: dict) -> str:
    cell = conflict["cell"]
    where = " ".join(str(cell[k]) for k in ("api", "backend", "case", "dtype", "device", "mode") if cell[k] != "None")
    return f"{where} on {cell['machine']}: {conflict['kept']} (used) and {conflict['other']}"


def _conflicts(document: dict) -> list[str]:
    conflicts = document.get("conflicts", [])
    if not conflicts:
        return []
    return ["## Conflicting measurements", "", CONFLICTS_INTRO, "",
            *(f"- {_escape(conflict_text(c))}" for c in conflicts), ""]


def not_run_text(entry: dict) -> str:
    """One not-run entry in words: a case in a dtype, a whole device of a target, an API the installed release
    lacks, or a shard's cells left."""
    if "cell" in entry:
        return f"{entry['cell']}: {entry['reason']}"
    if "api" in entry:
        return f"every cell of {entry['api']} ({entry['target']}, {entry['release']}): {entry['reason']}"
    if "device" in entry:
        return f"every cell of {entry['target']} on {entry['device']}: {entry['reason']}"
    if "case" not in entry:
        return f"{entry['target']}: {entry['reason']}"
    return f"{entry['case']} in {entry['dtype']}: {entry['reason']}"


def _escape(text: str) -> str:
    """Markdown table/inline-safe text: pipes escaped, newlines flattened, HTML tags neutralised."""
    return str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")
