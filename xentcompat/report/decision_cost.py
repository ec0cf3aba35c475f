"""The decision table's cost column: what each choice costs in time and memory, from this document's bench
(`xentcompat bench`, merged in with `xentcompat merge`).

One shape for the whole column, so the rows compare: float32 on the CPU, eager, at the (rows, classes) where the
most of the table's choices were timed. A cell gives the median forward + backward time, the peak memory (`≥` where
the bench could only bound it from below) and, for a choice that is not its framework's first fused loss, the time
as a multiple of that loss's on the same backend; a call that failed there says so ("out of memory": the bench caps
each worker's memory). Keras rows name the backends. A choice the bench did not time reads "— not timed". A cost
is no verdict: its cell has no mark. With no bench in the document there is no column, and the legend says how to
get one.
"""

from __future__ import annotations

from collections import Counter

from xentcompat.report.bench import UNTIMED, peak_at_least
from xentcompat.report.decision import BACKEND_NAMES, Cell, Column, Row

COST_KEY = "cost"
UNTIMED_TYPE = UNTIMED.removesuffix(": ")
DTYPE, DEVICE, MODE = "float32", "cpu", "eager"
HOW = ("Time and memory were not measured in this run: `xentcompat bench --out DIR` times each API at "
       "language-model shapes, and `xentcompat merge` of its bench.json with this run's results.json adds a cost "
       "column to this table and the full tables under Speed and memory.")


def with_cost(rows: list[Row], bench: dict | None) -> Column | None:
    """Add the cost cell to each row; the column, or None when the bench timed none of the table's choices."""
    timed = [m for m in (bench or {}).get("measurements", []) if _usable(m)]
    apis = {row.choice.api for row in rows}
    shapes = Counter((m["rows"], m["classes"]) for m in timed if m["api"] in apis)
    if not shapes:
        return None
    shape = min(shapes, key=lambda s: (-shapes[s], s))
    at_shape = {(m["api"], m.get("backend")): m for m in (bench or {}).get("measurements", [])
                if (m.get("rows"), m.get("classes")) == shape and _in_column(m)}
    fused = _fused_apis(rows)
    for row in rows:
        row.cells[COST_KEY] = _cell(row.choice.api, fused.get(row.choice.framework), at_shape)
    return Column(COST_KEY, f"cost (fp32, {shape[0]} × {_classes(shape[1])})", lambda record: False, "cost")


def _classes(count: int) -> str:
    return f"{count // 1000}k" if count >= 1000 and count % 1000 == 0 else f"{count:,}"


def legend(column: Column | None) -> str:
    """What the column shows, or how to get it."""
    if column is None:
        return HOW
    return (f"{column.title}: median time (forward + backward, CPU, eager) and peak memory from `xentcompat bench`, "
            "× the fused loss's time.")


def _in_column(m: dict) -> bool:
    """Measured at the column's dtype, device and mode (timed, or failed: an API that ran out of memory costs
    that)."""
    return (m.get("dtype") == DTYPE and m.get("device") == DEVICE and m.get("mode") == MODE
            and (m.get("median_seconds") is not None or (m.get("error") or {}).get("type") != UNTIMED_TYPE))


def _usable(m: dict) -> bool:
    return _in_column(m) and not m.get("error") and m.get("median_seconds") is not None


def _fused_apis(rows: list[Row]) -> dict[str, str]:
    """Framework -> the API of its first fused choice (the one the others are compared with)."""
    fused: dict[str, str] = {}
    for row in rows:
        if row.choice.form == "fused":
            fused.setdefault(row.choice.framework, row.choice.api)
    return fused


def _cell(api: str, fused_api: str | None, at_shape: dict[tuple[str, str | None], dict]) -> Cell:
    found = sorted(((backend, m) for (name, backend), m in at_shape.items() if name == api),
                   key=lambda item: str(item[0]))
    if not found:
        return Cell("—", "not timed", ())
    parts = []
    for backend, m in found:
        reference = at_shape.get((fused_api, backend)) if fused_api and fused_api != api else None
        reference = reference if reference and not reference.get("error") else None
        text = _cost(m, reference)
        parts.append(f"{BACKEND_NAMES.get(backend, backend)}: {text}" if backend else text)
    return Cell("", "; ".join(parts), ())


def _cost(m: dict, reference: dict | None) -> str:
    if m.get("error"):
        error = m["error"]
        return ("out of memory" if "memory" in f"{error.get('type')} {error.get('message')}".lower()
                else f"raised {error.get('type')}")
    text = f"{_seconds(m['median_seconds'])}"
    if reference is not None:
        text += f" (×{m['median_seconds'] / reference['median_seconds']:.2g} fused)"
    if m.get("peak_bytes") is not None:
        text += f", {'≥' if peak_at_least(m) else ''}{m['peak_bytes'] / 2**30:.2g} GiB"
    return text


def _seconds(value: float) -> str:
    return f"{value:.2g} s" if value >= 1 else f"{value * 1e3:.3g} ms"

