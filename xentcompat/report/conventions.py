"""Conventions side by side, from the option cases' records: what each API returns when the mean has nothing to
divide by, and which label-smoothing convention its loss follows."""

from __future__ import annotations

import math
from collections import defaultdict

from xentcompat.report.findings import api_label, folded_apis
from xentcompat.report.tables import Table
from xentcompat.results.record import Record

EMPTY_FACTS = {"mean-over-nothing": "every target ignored", "zero-total-weight": "zero total class weight",
               "empty-batch": "empty batch"}  # the facts (reference/facts.py) of a denominator of nothing
QUALIFYING_FACTS = {"label-smoothing": "smoothed"}
EMPTY_INTRO = ("A mean over no targets is 0 / 0. What each API returns (the reference: NaN for a mean over nothing, "
               "0 for a sum; — where the API lacks the option).")
SMOOTHING, OTHER_CLASSES = "label-smoothing", "label-smoothing-other-classes"
SMOOTHING_INTRO = ("Label smoothing α = 0.1 over K = 5 classes. The α/K convention (PyTorch's documented one) puts "
                   "α/K on every class; Megatron-LM's puts α/(K − 1) on each other class, i.e. α/K-smoothing of "
                   "α·K/(K − 1) = 0.125 (megatron/core/tensor_parallel/cross_entropy.py: `smoothing = label_smoothing "
                   "* vocab_size / (vocab_size - 1)`). Which one each API's loss at α = 0.1 is.")


def _returned(record: Record) -> str:
    loss = record.loss
    if loss.outcome in ("raised", "crashed"):
        return f"{loss.outcome} {record.error.type if record.error else ''}".strip()
    value = loss.value
    if value is None:
        return "an array, not a scalar"
    if isinstance(value, str):
        return value.replace("nan", "NaN")
    return "NaN" if math.isnan(value) else f"{value:.6g}"


def _empty_column(record: Record) -> tuple[int, str] | None:
    """The column a record of an empty denominator falls in (its place, its heading), named by the facts of its
    input, or None."""
    found = [(place, words) for place, (fact, words) in enumerate(EMPTY_FACTS.items()) if fact in record.tags]
    if not found:
        return None
    place, what = found[0]
    qualifiers = "".join(f", {words}" for fact, words in QUALIFYING_FACTS.items() if fact in record.tags)
    return place, f"{what} ({record.options.get('reduction', 'mean')}{qualifiers})"


def _reference_value(value) -> str:
    if value == "nan" or (isinstance(value, float) and math.isnan(value)):
        return "NaN"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def empty_denominators_table(records: list[Record]) -> Table | None:
    """API × empty denominator (every target ignored, zero total weight, no rows): the value it returned, with the
    reference's row first. Columns come from the records' facts, in the order of EMPTY_FACTS."""
    rows: dict[str, dict[tuple[int, str], str]] = defaultdict(dict)
    named: dict[str, Record] = {}  # label -> one of its records (for `folded_apis`)
    reference: dict[tuple[int, str], str] = {}
    for record in records:
        column = _empty_column(record) if record.dtype == "float32" else None
        if column is None:
            continue
        rows[api_label(record)][column] = _returned(record)
        named[api_label(record)] = record
        if record.loss.reference is not None:
            reference[column] = _reference_value(record.loss.reference)
    if not rows:
        return None
    columns = sorted({column for row in rows.values() for column in row})
    return Table(("apis", *(heading for _, heading in columns)),
                 (("reference", *(reference.get(column, "—") for column in columns)),
                  *_grouped({label: tuple(row.get(column, "—") for column in columns) for label, row in rows.items()},
                            named)))


def _grouped(results: dict[str, tuple[str, ...]], named: dict[str, Record]) -> list[tuple[str, ...]]:
    """One row per distinct result, the APIs that gave it first."""
    apis: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for label, result in sorted(results.items()):
        apis[result].append(label)
    return [(folded_apis(named[label] for label in labels), *result)
            for result, labels in sorted(apis.items(), key=lambda item: item[1][0])]


def smoothing_table(records: list[Record]) -> Table | None:
    """API × (its loss at α = 0.1, the α/K value, the α·K/(K − 1) value, which convention it follows)."""
    at = {(api_label(r), r.case): r for r in records if r.case in (SMOOTHING, OTHER_CLASSES) and r.dtype == "float32"}
    megatron = next((r.loss.reference for (_, case), r in at.items() if case == OTHER_CLASSES
                     and r.api.startswith("torch.nn.CrossEntropyLoss")), None)
    rows, named = {}, {}
    for (label, case), record in sorted(at.items()):
        named[label] = record
        if case != SMOOTHING:
            continue
        value, alpha_k = record.loss.value, record.loss.reference
        if not isinstance(value, float) or not isinstance(alpha_k, float):
            continue
        follows = "α/K" if record.loss.outcome == "ok" else (
            "α·K/(K − 1)" if isinstance(megatron, float) and abs(value - megatron) <= 1e-6 * abs(megatron) else "neither")
        rows[label] = (f"{value:.6g}", f"{alpha_k:.6g}", f"{megatron:.6g}" if isinstance(megatron, float) else "—",
                       follows)
    if not rows:
        return None
    return Table(("apis", "loss at α = 0.1", "α/K", "α·K/(K − 1)", "follows"), tuple(_grouped(rows, named)))
