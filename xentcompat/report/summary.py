"""The summary matrix: one row per API (backend, device, mode), one column per area, each cell a mark + findings.

Columns: accuracy per dtype, extreme logits, large vocabulary, -inf masking, NaN/inf propagation, the gradient
(every case, gradient outcome only), invalid labels, options and the user's own cases. A cell is `ok` when every
record in it agrees with the reference, `deviates` with the finding ids otherwise, and `not run` when the run holds
no record for it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from xentcompat.reference.dtypes import DTYPE_NAMES
from xentcompat.report.findings import api_label


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    areas: frozenset[str]
    dtype: str | None = None
    gradient_only: bool = False

    def holds(self, record: dict) -> bool:
        in_area = self.gradient_only or record.get("area") in self.areas
        return in_area and (self.dtype is None or record["dtype"] == self.dtype)


COLUMNS = (
    *(Column(f"accuracy-{dtype}", f"accuracy {dtype}", frozenset({"accuracy"}), dtype) for dtype in DTYPE_NAMES),
    Column("extreme", "extreme logits", frozenset({"extreme"})),
    Column("large-vocab", "large vocabulary", frozenset({"large-vocab"})),
    Column("masking", "-inf masking", frozenset({"masking"})),
    Column("nonfinite", "NaN/inf propagation", frozenset({"nonfinite"})),
    Column("gradient", "gradient", frozenset(), gradient_only=True),
    Column("labels", "invalid labels", frozenset({"labels"})),
    Column("options", "options", frozenset({"options"})),
    Column("user", "your cases", frozenset({"user"})),
)


@dataclass(frozen=True)
class Mark:
    """One summary cell: how many records, and the findings among them (empty: every record agrees)."""

    records: int
    findings: tuple[str, ...]

    @property
    def state(self) -> str:
        if not self.records:
            return "not run"
        return "deviates" if self.findings else "ok"


def summary(records: list[dict]) -> dict[str, dict[str, Mark]]:
    """row label -> column key -> Mark, rows sorted, every column present."""
    rows: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        rows[api_label(record)].append(record)
    return {label: {column.key: _mark(column, group) for column in COLUMNS} for label, group in sorted(rows.items())}


def _mark(column: Column, records: list[dict]) -> Mark:
    held = [record for record in records if column.holds(record)]
    deviating = [record for record in held if _deviates(column, record)]
    return Mark(len(held), tuple(sorted({record["finding"] for record in deviating if record.get("finding")})))


def _deviates(column: Column, record: dict) -> bool:
    """A finding in this column: any deviation, or for the gradient column one of the gradient.

    On invalid input a raised error is the good outcome, so it is no deviation.
    """
    if column.gradient_only:
        return record["grad"]["outcome"] not in ("ok", "raised" if record.get("invalid") else "ok")
    return bool(record.get("finding"))
