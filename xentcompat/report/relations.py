"""The metamorphic relations a run checked (see `xentcompat.run.metamorphic`), and the ones that broke."""

from __future__ import annotations

from xentcompat.report.findings import api_label
from xentcompat.report.tables import Table
from xentcompat.results.record import Record

INTRO = ("Relations that need no reference: the loss must not change when a constant is added to a row (`shift`), "
         "when the classes are reordered with their labels (`permute`), or when the batch is split and recombined "
         "the documented way (`split`). They are checked where the API's own verdict is ok / ok (elsewhere the verdict is "
         "the finding); two correct results differ by at most twice the tolerance, so each row here is an API that "
         "is right on the cell's input and wrong on the transformed one.")


def checked_count(records: list[Record]) -> tuple[int, int]:
    """(relations checked, relations broken) over the run."""
    relations = [relation for record in records for relation in record.relations or []
                 if not relation.skipped]
    return len(relations), sum(1 for relation in relations if not relation.holds)


def broken_relations_table(records: list[Record]) -> Table | None:
    """api × case × dtype × relation rows of the broken relations, with both losses; None when none broke."""
    rows = []
    for record in records:
        for relation in record.relations or []:
            if relation.holds or relation.skipped:
                continue
            rows.append((api_label(record), record.case, record.dtype, relation.relation,
                         _number(relation.loss), _number(relation.transformed),
                         "did not return" if relation.error_units is None else f"{relation.error_units:.3g}"))
    if not rows:
        return None
    return Table(("api", "case", "dtype", "relation", "loss", "loss from the transformed input",
                  "largest difference (units)"), tuple(sorted(rows)))


def _number(value) -> str:
    return "—" if value is None else f"{float(value):.6g}"
