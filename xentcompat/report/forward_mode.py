"""The cells whose gradient depends on the direction of differentiation: every cell measured in eager mode (reverse
mode: `loss.backward()`, `jax.vjp`) and in forward mode (`torch.func.jacfwd`, `jax.jacfwd`) on the same device and
framework release that came out differently, with both outcomes and the cause of each."""

from __future__ import annotations

from collections import defaultdict

from xentcompat.adapters.base import FORWARD_MAX_ELEMENTS
from xentcompat.report.findings import api_label, dtype_order
from xentcompat.report.tables import Table
from xentcompat.results.record import Record

INTRO = ("Cells whose gradient was taken both in reverse mode (eager: `loss.backward()`, `jax.vjp`) and in forward "
         f"mode (`torch.func.jacfwd`, `jax.jacfwd`: one tangent per logit, batches of at most {FORWARD_MAX_ELEMENTS} "
         "logits) and came "
         "out differently (loss / gradient), with the finding behind each: forward mode spreads one row's NaN to "
         "every row, and it avoids the NaN that reverse mode's division by an underflowed probability makes.")


def reverse_mode(records: list[Record]) -> list[Record]:
    """The records of reverse-mode gradients (eager and compiled): what training runs, and what the decision table
    and the guidance read; forward mode has its own table."""
    return [record for record in records if record.mode != "forward"]


def mode_pairs(records: list[Record]) -> list[tuple[Record, Record]]:
    """(eager record, forward record) of every cell measured in both modes on one device and release."""
    by_cell: dict[tuple, dict[str, Record]] = defaultdict(dict)
    for record in records:
        key = (record.framework, record.framework_version, record.backend, record.api, record.case, record.dtype,
               record.device)
        by_cell[key].setdefault(record.mode, record)
    return [(modes["eager"], modes["forward"]) for key, modes in sorted(by_cell.items(), key=lambda kv: str(kv[0]))
            if "eager" in modes and "forward" in modes]


def varies_by_direction_table(records: list[Record]) -> Table | None:
    """One row per pair of outcomes that differ between reverse and forward mode, with the cases and dtypes it came
    out on and the APIs it came out for (APIs that differ alike share a row); None when no cell ran in both modes or
    none differs."""
    groups: dict[tuple, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for eager, forward in mode_pairs(records):
        if eager.observed != forward.observed:
            cases, dtypes = groups[(api_label(eager), _measured(eager), _measured(forward))]
            cases.append(eager.case)
            dtypes.append(eager.dtype)
    apis: dict[tuple, list[str]] = defaultdict(list)
    for (api, reverse, forward), (cases, dtypes) in sorted(groups.items()):
        apis[(", ".join(sorted(set(cases))), ", ".join(sorted(set(dtypes), key=dtype_order)), reverse, forward)
             ].append(api)
    rows = tuple((", ".join(names), *place) for place, names in apis.items())
    return Table(("api", "cases", "dtypes", "reverse mode", "forward mode"), rows) if rows else None


def _measured(record: Record) -> str:
    finding = f" ({record.finding})" if record.finding else ""
    return " / ".join(record.observed) + finding
