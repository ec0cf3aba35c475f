"""The rows a right mean hid (see `xentcompat.run.rows`): cells whose reduced loss agrees with the reference while a
row of the API's own per-row losses does not."""

from __future__ import annotations

from collections import defaultdict

from xentcompat.report.findings import api_label
from xentcompat.report.numbers import number
from xentcompat.report.tables import Table
from xentcompat.results.record import Record

INTRO = ("A mean shrinks one row's error by the batch's count, and a NaN row makes the mean NaN, as the reference's "
         "is, whatever the other rows hold. So on every eager cell of valid input whose mean or sum is right, the "
         "API's own per-row losses (`reduction=\"none\"`, or the per-position losses before the user's `.mean()`) "
         "are judged row by row as well; each row here is a cell whose reduced loss is right and whose worst row is "
         "not, with the cause that explains the cell where one does.")


def checked_count(records: list[Record]) -> tuple[int, int]:
    """(cells judged row by row, of them with a row that deviates)."""
    judged = [record for record in records if record.loss.rows]
    return len(judged), sum(1 for record in judged if record.loss.rows["outcome"] != "ok")


def hidden_rows_table(records: list[Record]) -> Table | None:
    """One row per API × dtype × cause of the cells with a deviating row: the cases, and the worst row of the first
    case with both values; None when there is none."""
    groups: dict[tuple, list[Record]] = defaultdict(list)
    for record in records:
        found = record.loss.rows
        if found and found["outcome"] != "ok":
            groups[(api_label(record), record.dtype, record.expected.cause or "—")].append(record)
    if not groups:
        return None
    rows = []
    for (api, dtype, cause), found in groups.items():
        found.sort(key=lambda record: record.case)
        first = found[0]
        rows.append((api, ", ".join(record.case for record in found), dtype,
                     " for ".join(_pair(first.loss.value, first.loss.reference)), _row_words(first.loss.rows), cause))
    return Table(("api", "cases", "dtype", "reduced loss (first case)", "worst row (first case)", "cause of the cell"),
                 tuple(sorted(rows)))


def _row_words(found: dict) -> str:
    units = found.get("error_units")
    said = f"[{found['row']}] of {found['rows']}: " + " for ".join(_pair(found["value"], found["reference"]))
    return said + (f" ({units:.3g} units)" if units is not None else f" ({found['outcome']})")


def _pair(value, reference) -> tuple[str, str]:
    """Both numbers with 6 significant digits, or as many more as it takes to tell them apart (up to 17)."""
    for digits in (6, 9, 12, 17):
        shown = _value(value, digits), _value(reference, digits)
        if shown[0] != shown[1]:
            break
    return shown


def _value(value, digits: int) -> str:
    found = number(value)
    return "—" if found is None else f"{found:.{digits}g}".replace("nan", "NaN")
