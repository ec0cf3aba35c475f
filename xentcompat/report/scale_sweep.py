"""The bfloat16 logit-scale sweep (cases `bf16-scale-<s>`: logits normal(0, s) over V = 128256), per API: the
loss's relative error at each scale, whether the loss came back as a bfloat16 number (quantised) or upcast, and the
largest scale up to which loss and gradient are both within the error model's bound."""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

from xentcompat.reference.dtypes import round_to
from xentcompat.report.findings import api_label
from xentcompat.report.tables import Table
from xentcompat.results.record import Record

CASE = re.compile(r"bf16-scale-(\d+)$")
INTRO = ("bfloat16 logits normal(0, s) over V = 128256 (4 rows), s = 5 … 640. Each cell: the loss's relative error "
         "against the float64 reference on the same bfloat16 logits; `q` when the loss returned is itself a "
         "bfloat16 number (quantised: spacing 2⁻⁷ of its value, as google-deepmind/optax#1020 reports for optax) "
         "rather than upcast; ✗ where loss or gradient leaves the error model's bound. \"ok up to\": the largest s "
         "up to which every cell is ✓.")


def _scale(record: Record) -> tuple[float, str] | None:
    """A bfloat16 record of the sweep's area: (its largest |logit|, which orders the columns; its column's name, the
    sweep's s, or the case id for a case of the area named otherwise)."""
    if record.area != "scale-sweep" or record.dtype != "bfloat16":
        return None
    match = CASE.match(record.case)
    largest = record.scale if isinstance(record.scale, float) else 0.0
    return largest, f"s = {match.group(1)}" if match else record.case


def quantised(value: float) -> bool:
    """Whether a returned loss is a bfloat16 number (a float32 loss is one by chance with odds about 2⁻¹⁶)."""
    return value != 0.0 and float(round_to(np.array([value]), "bfloat16")[0]) == value


def _cell(record: Record) -> str:
    value, reference = record.loss.value, record.loss.reference
    good = (record.loss.outcome, record.grad.outcome) == ("ok", "ok")
    if not isinstance(value, float) or not isinstance(reference, float) or not reference:
        return f"✗ {record.loss.outcome}"
    text = f"{abs(value - reference) / abs(reference):.1e}" + (" q" if quantised(value) else "")
    return text if good else f"✗ {text}"


def scale_sweep_table(records: list[Record]) -> Table | None:
    by_api: dict[str, dict[tuple[float, str], Record]] = defaultdict(dict)
    for record in records:
        scale = _scale(record)
        if scale is not None:
            by_api[api_label(record)][scale] = record
    if not by_api:
        return None
    scales = sorted({scale for found in by_api.values() for scale in found})
    rows = []
    for label, found in sorted(by_api.items()):
        cells = [_cell(found[s]) if s in found else "—" for s in scales]
        rows.append((label, *cells, _ok_up_to(found, scales)))
    return Table(("api", *(name for _, name in scales), "ok up to"), tuple(rows))


def _ok_up_to(found: dict[tuple[float, str], Record], scales: list[tuple[float, str]]) -> str:
    last = None
    for scale in scales:
        record = found.get(scale)
        if record is None or (record.loss.outcome, record.grad.outcome) != ("ok", "ok"):
            break
        last = scale
    return "none" if last is None else ("all" if last == scales[-1] else last[1])
