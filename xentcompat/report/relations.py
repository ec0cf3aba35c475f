"""The metamorphic relations a run checked (see `xentcompat.run.metamorphic`), and the ones that broke."""

from __future__ import annotations

from xentcompat.report.findings import api_label
from xentcompat.report.tables import Table
from xentcompat.reference.errors import TOLERANCE_UNITS
from xentcompat.results.record import Record, Relation

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
    """api × case × dtype × relation rows of the broken relations: both losses, and what broke with its two values;
    None when none broke."""
    rows = []
    for record in records:
        for relation in record.relations or []:
            if relation.holds or relation.skipped:
                continue
            rows.append((api_label(record), record.case, record.dtype, relation.relation,
                         _number(relation.loss), _number(relation.transformed), what_broke(relation)))
    if not rows:
        return None
    return Table(("api", "case", "dtype", "relation", "loss", "loss from the transformed input", "what broke"),
                 tuple(sorted(rows)))


def what_broke(relation: Relation) -> str:
    """The quantity that broke and its worst element, from the record; a record that does not name it (written
    before relations did) is described by what its numbers allow."""
    if relation.detail:
        return relation.detail
    if relation.error_units is None:
        return "no comparable result (the call raised, or a result of another shape)"
    if relation.error_units <= 2 * TOLERANCE_UNITS:
        return (f"a value non-finite in one result only (loss or gradient: not named in this record); finite values "
                f"within {relation.error_units:.3g} units")
    return f"loss or gradient, by {relation.error_units:.3g} units (not named in this record)"


def _number(value) -> str:
    return "—" if value is None else f"{float(value):.6g}"
