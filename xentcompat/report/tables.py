"""Side-by-side tables: what each API does with each invalid label, and what each option case gives per API.

Both are data (rows of strings) so report.md and report.html show the same numbers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from xentcompat.report.findings import api_label, folded_apis
from xentcompat.results.record import Record

DIFFERENT = 1e-4  # relative: two losses of one case further apart than this are "different numbers"


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def invalid_input_table(records: list[Record]) -> Table | None:
    """API × invalid case: `raised <Type>`, `silent <value>` or `crashed <how>`; None when none ran."""
    invalid = [r for r in records if r.invalid]
    if not invalid:
        return None
    cases = sorted({r.case for r in invalid})
    cells: dict[str, dict[str, str]] = defaultdict(dict)
    for record in invalid:
        cells[api_label(record)][record.case] = _what_it_did(record)
    rows = tuple((label, *(row.get(case, "—") for case in cases)) for label, row in sorted(cells.items()))
    return Table(("api", *cases), rows)


def _what_it_did(record: Record) -> str:
    outcome = record.loss.outcome
    if outcome == "raised":
        return f"raised {record.error.type}"
    if outcome == "crashed":  # the message's last clause: "device-side assert triggered", "killed by signal SIGSEGV"
        return f"crashed ({record.error.message.rsplit(': ', 1)[-1]})"
    if outcome == "silent":
        return f"silent: {_number(record.loss.value)}"
    return outcome


def option_values_table(records: list[Record]) -> Table | None:
    """Option case × what came out: the loss, its reference (that API's documented semantics) and the outcome, with
    the APIs (Keras backends and modes folded in) that gave it; one row per case and result."""
    options = [r for r in records if r.area == "options" and r.dtype == "float32"]
    if not options:
        return None
    groups: dict[tuple[str, ...], list[Record]] = defaultdict(list)
    for record in options:
        result = (record.case, _number(record.loss.value), _number(record.loss.reference),
                  f"{record.loss.outcome} / {record.grad.outcome}")
        groups[result].append(record)
    rows = tuple((*result, folded_apis(found)) for result, found in sorted(groups.items()))
    return Table(("case", "loss", "reference", "loss / gradient", "apis"), rows)


def same_name_different_numbers(records: list[Record]) -> dict[str, dict[str, float]]:
    """Float32 option cases whose references differ between APIs that each agree with their own reference:
    case -> api -> loss.

    These are the options whose name is shared but whose meaning is not (e.g. a weighted mean over the targets'
    weights in PyTorch, over N in Keras): the APIs' documented semantics give different numbers, not their rounding
    (two values of one reference differ by rounding only, whatever the dtype).
    """
    by_case: dict[str, dict[str, float]] = defaultdict(dict)
    references: dict[str, list[float]] = defaultdict(list)
    for record in records:
        value, reference = record.loss.value, record.loss.reference
        if (record.area == "options" and record.dtype == "float32" and record.loss.outcome == "ok" and _finite(value)
                and _finite(reference)):
            by_case[record.case][api_label(record)] = value
            references[record.case].append(reference)
    return {case: values for case, values in sorted(by_case.items()) if _differ(references[case])}


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _differ(values: list[float]) -> bool:
    if len(values) < 2:
        return False
    low, high = min(values), max(values)
    return high - low > DIFFERENT * max(abs(low), abs(high), 1e-300)


def _number(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return f"{value:.6g}"
