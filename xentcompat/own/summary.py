"""The one-screen summary of a check, and a repro script per finding.

Deviations are grouped by finding (`XC-<cause>` when a known cause's entry gives the same outcome, else
`XC-unexplained-<hash>`), most cells first; each group says whether it was declared expected, the cause's title, one
cell with both numbers, and the repro file.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from xentcompat import expectations
from xentcompat.own.check import Outcome
from xentcompat.report.numbers import loss_words
from xentcompat.results.record import Record

SHOWN_FINDINGS = 8


def summary(outcome: Outcome, spec_text: str, out: Path, repros: dict[str, Path]) -> str:
    records = outcome.document["records"]
    not_run = outcome.document.get("not_run", [])
    lines = [f"xentcompat check {spec_text} ({_versions(outcome.document)})",
             f"  {len(records)} cells run, {len(outcome.deviating)} deviate "
             f"({len(outcome.deviating) - len(outcome.undeclared)} declared expected); "
             f"{len(not_run)} cases or dtypes not run (see report.md, 'Not run')"]
    groups = _by_finding(outcome.deviating)
    known = expectations.causes()
    for finding, group in list(groups.items())[:SHOWN_FINDINGS]:
        undeclared = sum(1 for r in group if r in outcome.undeclared)
        cause = known.get(finding.removeprefix("XC-"))
        title = f"{cause.kind}: {cause.title}" if cause else "no known cause gives this outcome here"
        state = "declared expected" if not undeclared else f"{undeclared} not declared"
        lines += ["", f"  {finding}  ({len(group)} cells, {state})", f"    {title}", f"    e.g. {cell_words(group[0])}"]
        if cause:
            lines.append(f"    {_shared(group[0])}")
        if finding in repros:
            lines.append(f"    repro: {repros[finding]}")
    if len(groups) > SHOWN_FINDINGS:
        lines.append(f"\n  ... and {len(groups) - SHOWN_FINDINGS} more findings in {out / 'report.md'}")
    for item in outcome.stale:
        lines.append(f"\n  declared but not seen: {item.text()} (remove or narrow the declaration)")
    for record in outcome.gone:
        expected = record["expected"]
        lines.append(f"\n  promised by cause {expected['cause']} but not seen: {cell_words(record)} (expected "
                     f"{expected['loss']}/{expected['grad']}; narrow its entry)")
    lines += ["", f"  wrote {out / 'results.json'}, {out / 'report.md'}, {out / 'report.html'}", _verdict(outcome)]
    return "\n".join(lines)


def write_repros(outcome: Outcome, directory: Path) -> dict[str, Path]:
    """One script per finding (its first cell's), named after the finding."""
    written = {}
    for finding, group in _by_finding(outcome.deviating).items():
        repro = next((r["repro"] for r in group if r.get("repro")), None)
        if repro is None:
            continue
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{finding}.py"
        path.write_text(f"# {cell_words(group[0])}\n{repro}\n")
        written[finding] = path
    return written


def _by_finding(records: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        groups[record.get("finding") or "XC-unexplained"].append(record)
    return dict(sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])))


def cell_words(record: dict) -> str:
    """A deviating cell in a practitioner's words: where, and what came out for what."""
    where = f"{record['case']} ({record['dtype']}, {record['device']}, {record['mode']})"
    error = record.get("error") or {}
    detail = f" ({error['type']}: {error['message']})" if error.get("type") else ""
    return f"{where}: {loss_words(Record.from_json(record))}{detail}"[:300]


def _shared(record: dict) -> str:
    """Whose outcome the callable shares there (the first clause of the reason `resemblance` wrote)."""
    reason = (record.get("expected") or {}).get("reason") or ""
    return reason.split(", cause ")[0].replace("the outcome", "the same outcome as", 1)


def _versions(document: dict) -> str:
    environments = document.get("environments") or [{}]
    frameworks = environments[0].get("frameworks", {})
    return ", ".join(f"{name} {version}" for name, version in frameworks.items()) or "no framework"


def _verdict(outcome: Outcome) -> str:
    if outcome.passed:
        return "  exit 0: every deviation is declared expected" if outcome.deviating else "  exit 0: no deviation"
    parts = []
    if outcome.undeclared:
        parts.append(f"{len(outcome.undeclared)} deviating cells not declared expected")
    if outcome.stale:
        parts.append(f"{len(outcome.stale)} declarations no longer seen")
    if outcome.gone:
        parts.append(f"{len(outcome.gone)} cells a cause entry promised a deviation on came out right")
    return f"  exit 1: {'; '.join(parts)} (declare them in an --expect file: README, 'Test your own cross-entropy')"
