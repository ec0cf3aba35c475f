"""Conventions side by side, from the option cases' records: what each API returns when the mean has nothing to
divide by, and which label-smoothing convention its loss follows."""

from __future__ import annotations

import math
from collections import defaultdict

from xentcompat.report.findings import api_label
from xentcompat.report.tables import Table
from xentcompat.results.record import Record

EMPTY_CASES = {"ignore-index-every-row": "every target ignored (mean)",
               "class-weights-zero-total": "zero total class weight (mean)",
               "empty-batch": "empty batch (mean)", "empty-batch-sum": "empty batch (sum)"}
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


def empty_denominators_table(records: list[Record]) -> Table | None:
    """API × empty-denominator case: the value it returned, with the reference's row first."""
    rows: dict[str, dict[str, str]] = defaultdict(dict)
    reference: dict[str, str] = {}
    for record in records:
        if record.case in EMPTY_CASES and record.dtype == "float32":
            rows[api_label(record)][record.case] = _returned(record)
            value = record.loss.reference
            if value is not None:
                reference[record.case] = "NaN" if value == "nan" or (isinstance(value, float) and math.isnan(value)) \
                    else f"{value:.6g}" if isinstance(value, float) else str(value)
    if not rows:
        return None
    return Table(("apis", *EMPTY_CASES.values()),
                 (("reference", *(reference.get(case, "—") for case in EMPTY_CASES)),
                  *_grouped({label: tuple(row.get(case, "—") for case in EMPTY_CASES) for label, row in rows.items()})))


def _grouped(results: dict[str, tuple[str, ...]]) -> list[tuple[str, ...]]:
    """One row per distinct result, the APIs that gave it first."""
    apis: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for label, result in sorted(results.items()):
        apis[result].append(label)
    return [(", ".join(labels), *result) for result, labels in sorted(apis.items(), key=lambda item: item[1][0])]


def smoothing_table(records: list[Record]) -> Table | None:
    """API × (its loss at α = 0.1, the α/K value, the α·K/(K − 1) value, which convention it follows)."""
    at = {(api_label(r), r.case): r for r in records if r.case in (SMOOTHING, OTHER_CLASSES) and r.dtype == "float32"}
    megatron = next((r.loss.reference for (_, case), r in at.items() if case == OTHER_CLASSES
                     and r.api.startswith("torch.nn.CrossEntropyLoss")), None)
    rows = {}
    for (label, case), record in sorted(at.items()):
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
    return Table(("apis", "loss at α = 0.1", "α/K", "α·K/(K − 1)", "follows"), tuple(_grouped(rows)))
