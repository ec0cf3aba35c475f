"""report.md: one table of loss/gradient outcomes per api × case × dtype, then the deviations and what did not run."""

from __future__ import annotations

import datetime
import hashlib
import json
from collections import defaultdict

from xentcompat import __version__
from xentcompat.reference.dtypes import DTYPE_NAMES

OK = ("ok", "ok")


def results_hash(document: dict) -> str:
    """sha256 of the records, canonical JSON: the same measurements give the same hash."""
    text = json.dumps(document.get("records", []), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def render_markdown(document: dict, today: datetime.date | None = None) -> str:
    today = today or datetime.date.today()
    records = document.get("records", [])
    lines = [
        "# xentcompat report: softmax cross-entropy APIs against a float64 reference",
        "",
        f"Generated {today.isoformat()} by xentcompat {__version__}; results hash `{results_hash(document)}`; "
        f"{len(records)} cells.",
        "",
        *_environment_lines(document),
        "",
        "Each cell is `loss / gradient` outcome (ok, inaccurate, nan, inf, finite, raised, silent, crashed). "
        "Deviations are in bold; a `!` marks one no expectation entry predicts. `—` means not run.",
        "",
        *_targets(document),
        *_matrix(records),
        *_deviations(records),
        *_not_run(document),
    ]
    return "\n".join(lines).rstrip() + "\n"


def _environment_lines(document: dict) -> list[str]:
    lines = []
    for env in document.get("environments", []):
        frameworks = ", ".join(f"{name} {version}" for name, version in env.get("frameworks", {}).items())
        devices = ", ".join(f"{kind}: {name}" for kind, name in env.get("devices", {}).items())
        lines.append(f"- {env.get('target')}: {frameworks}; devices {devices}; Python {env.get('python')}; "
                     f"{env.get('platform')}")
    return lines or ["- no framework ran"]


def _targets(document: dict) -> list[str]:
    skipped = [t for t in document.get("targets", []) if t.get("skipped")]
    if not skipped:
        return []
    return ["## Skipped targets", "", *(f"- {t['name']}: {t['skipped']}" for t in skipped), ""]


def _api_label(record: dict) -> str:
    label = record["api"]
    if record.get("backend"):
        label += f" [{record['backend']}]"
    if (record["device"], record["mode"]) != ("cpu", "eager"):
        label += f" ({record['device']}, {record['mode']})"
    return label


def _cell_text(record: dict) -> str:
    observed = (record["loss"]["outcome"], record["grad"]["outcome"])
    expected = (record["expected"]["loss"], record["expected"]["grad"])
    text = f"{observed[0]} / {observed[1]}"
    if observed != OK:
        text = f"**{text}**"
    return text + (" !" if observed != expected else "")


def _matrix(records: list[dict]) -> list[str]:
    dtypes = [d for d in DTYPE_NAMES if any(r["dtype"] == d for r in records)]
    table: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for record in records:
        table[(_api_label(record), record["case"])][record["dtype"]] = _cell_text(record)
    lines = ["## Outcomes: loss / gradient", "", "| api | case | " + " | ".join(dtypes) + " |",
             "|---|---|" + "---|" * len(dtypes)]
    for (api, case), row in sorted(table.items()):
        cells = " | ".join(row.get(dtype, "—") for dtype in dtypes)
        lines.append(f"| `{_escape(api)}` | {_escape(case)} | {cells} |")
    return lines + [""]


def _deviations(records: list[dict]) -> list[str]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        if record.get("finding"):
            groups[record["finding"]].append(record)
    if not groups:
        return ["## Deviations", "", "None: every cell agrees with the reference.", ""]
    lines = ["## Deviations", "", "| finding | api | loss / gradient | cells | cases (dtypes) |", "|---|---|---|---|---|"]
    for finding, group in sorted(groups.items(), key=lambda item: (_api_label(item[1][0]), item[0])):
        first = group[0]
        by_case: dict[str, list[str]] = defaultdict(list)
        for record in group:
            by_case[record["case"]].append(record["dtype"])
        where = "; ".join(f"{_escape(case)} ({', '.join(sorted(dtypes))})" for case, dtypes in sorted(by_case.items()))
        lines.append(f"| {finding} | `{_escape(_api_label(first))}` | {first['loss']['outcome']} / "
                     f"{first['grad']['outcome']} | {len(group)} | {where} |")
    return lines + [""]


def _not_run(document: dict) -> list[str]:
    entries = document.get("not_run", [])
    if not entries:
        return []
    return ["## Not run", "", *(f"- {_escape(e['case'])} in {e['dtype']}: {e['reason']}" for e in entries), ""]


def _escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
