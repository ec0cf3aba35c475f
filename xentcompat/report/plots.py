"""Hand-written SVG for the HTML report: loss error against logit scale, and the outcome heat maps api × case.

Both are meant to be inlined in HTML: no xmlns, no external reference, every text from the records escaped. The same
records give the same bytes: inputs are sorted and every coordinate is printed with one decimal.

Error against scale: one panel per API it tells apart, x = the case's largest finite |logit| (`scale`), y = the error
in units of the dtype (`loss.error_units`), both on log axes with a floor (scale 0, errors below 10⁻²); the band
under `TOLERANCE_UNITS` is where a cell passes. A loss that is not a finite number where the reference is (nan, inf,
finite, raised, silent, crashed) has no error to plot: it is an × on the "non-finite" row above the plot.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from html import escape

from xentcompat.reference.errors import TOLERANCE_UNITS
from xentcompat.report.choices import CHOICES
from xentcompat.report.findings import api_label, dtype_order, unexpected
from xentcompat.results.record import Record

ERROR_AREAS = ("accuracy", "extreme", "large-vocab", "user")
NONFINITE_OUTCOMES = frozenset({"nan", "inf", "finite", "raised", "crashed", "silent"})
# Okabe-Ito colours (distinguishable with colour-blindness), and a shape per dtype besides
DTYPE_STYLES = {"float16": ("#E69F00", "circle"), "bfloat16": ("#0072B2", "square"),
                "float32": ("#009E73", "triangle"), "float64": ("#CC79A7", "diamond")}
OTHER_DTYPE_STYLE = ("#555555", "circle")
# worst last: an exception is loud, a wrong non-finite value is silent, a crash loses the process
SEVERITY = ("ok", "inaccurate", "raised", "inf", "nan", "finite", "silent", "crashed")
# raised (the good outcome for invalid input) is sky blue, silent (a value for invalid input) reddish purple
OUTCOME_COLOURS = {"ok": "#3a9d5d", "inaccurate": "#f2a900", "raised": "#56b4e9", "inf": "#f28b82",
                   "nan": "#d93025", "finite": "#8c1c13", "silent": "#cc3399", "crashed": "#6b6b6b",
                   "not-run": "#ffffff"}
ERROR_FLOOR_DECADE = -2
MONO_CHAR = 6.7  # advance of an 11 px monospace character
PANEL_WIDTH, PANEL_HEIGHT = 420, 250
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 62, 400, 34, 212
NONFINITE_ROW = 16
FONT = 'font-family="DejaVu Sans, Arial, Helvetica, sans-serif"'  # on each <svg>, inherited by its text


@dataclass(frozen=True)
class LogAxis:
    """Decades `low`..`high` mapped onto pixels `start`..`end`; values at or below 10**floor sit at the floor."""

    floor: int
    low: int
    high: int
    start: float
    end: float
    floor_label: str

    def position(self, value: float) -> float:
        decade = math.log10(value) if value > 0 else -math.inf
        decade = self.floor if decade < self.low else min(decade, self.high)
        return self.start + (decade - self.floor) / (self.high - self.floor) * (self.end - self.start)

    def ticks(self) -> list[tuple[float, str]]:
        """(pixel, label) of the floor and of every `step`-th decade above it, about six in all."""
        step = next(s for s in (1, 2, 3, 5, 10, 20, 50) if (self.high - self.floor) / s <= 6)
        decades = [d for d in range(self.low, self.high + 1)
                   if d % step == 0 and d - self.floor >= max(1, step / 3)]
        return [(self.position(0.0), self.floor_label)] + [(self.position(10.0 ** d), power_of_ten(d))
                                                           for d in decades]


def power_of_ten(decade: int) -> str:
    return "10" + str(decade).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))


def _number(value) -> float | None:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


# ---------------------------------------------------------------- error against scale


def error_records(records: list[Record]) -> dict[str, list[Record]]:
    """Panel label -> its eager records in the accuracy-like areas: the decision table's APIs whose loss leaves the
    band on a realistic float32 cell where their framework's first fused API (on the same backend) is ok; Keras
    backends with the same float32 outcomes share one panel (the first backend's points)."""
    panels: dict[tuple[str, str | None], list[Record]] = defaultdict(list)
    for record in records:
        if record.area in ERROR_AREAS and record.mode == "eager" and record.api in SEED_APIS:
            panels[(record.api, record.backend)].append(record)
    kept = {key for key in panels if _separates(key, panels)}
    merged: dict[tuple, list[tuple[str, str | None]]] = defaultdict(list)
    for key in sorted(kept, key=lambda k: (API_RANK[k[0]], str(k[1]))):
        merged[(key[0], _signature(panels[key]))].append(key)
    return {_panel_label(keys): sorted(panels[keys[0]], key=_record_order) for keys in merged.values()}


FRAMEWORK_OF = {choice.api: choice.framework for choice in CHOICES}
FUSED = {framework: next((c.api for c in CHOICES if c.framework == framework and c.form == "fused"), None)
         for framework in dict.fromkeys(c.framework for c in CHOICES)}  # None: no fused choice (a metric)
API_RANK = {choice.api: index for index, choice in enumerate(CHOICES)}


def _signature(group: list[Record]) -> tuple:
    """What a panel is told apart by: its realistic float32 outcomes."""
    return tuple(sorted((r.case, r.dtype, r.loss.outcome) for r in group if _compared(r)))


def _separates(key: tuple[str, str | None], panels: dict) -> bool:
    if FUSED[FRAMEWORK_OF[key[0]]] is None:  # nothing of its framework to compare with: shown where it leaves the band
        return any(r.loss.outcome != "ok" for r in panels[key] if _compared(r))
    fused = (FUSED[FRAMEWORK_OF[key[0]]], key[1])
    if key == fused or fused not in panels:
        return False
    outcomes = {(r.case, r.dtype): r.loss.outcome for r in panels[key] if _compared(r)}
    theirs = {(r.case, r.dtype): r.loss.outcome for r in panels[fused] if _compared(r)}
    return any(outcome != "ok" and theirs.get(place) == "ok" for place, outcome in outcomes.items())


def _compared(record: Record) -> bool:
    """Where APIs are told apart: realistic float32 cells (16-bit limits and float64 are in the heat maps)."""
    return record.tier == "realistic" and record.dtype == "float32"


def _panel_label(keys: list[tuple[str, str | None]]) -> str:
    backends = [backend for _, backend in keys if backend]
    return keys[0][0] + (f" [{', '.join(backends)}]" if backends else "")


def error_panels(records: list[Record]) -> list[tuple[str, str]]:
    """(API row label, SVG) per API: loss error in units against the logit scale, axes shared by every panel."""
    panels = error_records(records)
    every = [record for group in panels.values() for record in group]
    x_axis, y_axis = _scale_axis(every), _error_axis(every)
    return [(label, _panel(label, group, x_axis, y_axis)) for label, group in panels.items()]


def _record_order(record: Record) -> tuple:
    return record.case, dtype_order(record.dtype), record.device, record.mode


def _scale_axis(records: list[Record]) -> LogAxis:
    scales = [s for s in (_number(r.scale) for r in records) if s is not None]
    positive = [s for s in scales if s > 0] or [1.0, 10.0]
    low, high = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
    high = max(high, low + 1)
    floor = low - max(1, (high - low) // 12) if any(s <= 0 for s in scales) else low
    return LogAxis(floor, low, high, PLOT_LEFT + 6, PLOT_RIGHT - 6, "0" if floor < low else power_of_ten(low))


def _error_axis(records: list[Record]) -> LogAxis:
    errors = [e for e in (_number(r.loss.error_units) for r in records) if e is not None and e > 0]
    high = max([math.ceil(math.log10(e)) for e in errors] + [math.ceil(math.log10(TOLERANCE_UNITS)) + 1])
    floor = ERROR_FLOOR_DECADE
    return LogAxis(floor, floor, high, PLOT_BOTTOM, PLOT_TOP, "≤" + power_of_ten(floor))


def _panel(label: str, records: list[Record], x_axis: LogAxis, y_axis: LogAxis) -> str:
    parts = [f'<svg class="error-panel" width="{PANEL_WIDTH}" height="{PANEL_HEIGHT}" '
             f'viewBox="0 0 {PANEL_WIDTH} {PANEL_HEIGHT}" {FONT} role="img" aria-label="{escape(label)}: loss error '
             f'against logit scale">', f"<title>{escape(label)}: loss error in dtype units against logit scale"
             "</title>", *_tolerance_band(y_axis), *_axes(x_axis, y_axis)]
    measured = [r for r in records if r.loss.outcome not in NONFINITE_OUTCOMES]
    parts += [_point(r, x_axis, y_axis) for r in measured if _number(r.loss.error_units) is not None]
    parts += [_nonfinite_mark(r, x_axis) for r in records if r.loss.outcome in NONFINITE_OUTCOMES]
    return "\n".join(parts + ["</svg>"])


def _tolerance_band(y_axis: LogAxis) -> list[str]:
    top = y_axis.position(TOLERANCE_UNITS)
    return [f'<rect class="tolerance" x="{PLOT_LEFT}" y="{top:.1f}" width="{PLOT_RIGHT - PLOT_LEFT}" '
            f'height="{PLOT_BOTTOM - top:.1f}" fill="#e6f4ea"/>',
            f'<line x1="{PLOT_LEFT}" x2="{PLOT_RIGHT}" y1="{top:.1f}" y2="{top:.1f}" stroke="#3a9d5d" '
            'stroke-dasharray="4 3"/>',
            f'<text x="{PLOT_RIGHT + 2}" y="{top + 3:.1f}" font-size="9" fill="#2b7a47">{TOLERANCE_UNITS:g}</text>']


def _axes(x_axis: LogAxis, y_axis: LogAxis) -> list[str]:
    nonfinite_y = PLOT_TOP - NONFINITE_ROW
    parts = [f'<rect x="{PLOT_LEFT}" y="{PLOT_TOP}" width="{PLOT_RIGHT - PLOT_LEFT}" '
             f'height="{PLOT_BOTTOM - PLOT_TOP}" fill="none" stroke="#9aa3ad"/>',
             f'<line x1="{PLOT_LEFT}" x2="{PLOT_RIGHT}" y1="{nonfinite_y}" y2="{nonfinite_y}" stroke="#e3c4c4" '
             'stroke-dasharray="2 3"/>',
             f'<text x="{PLOT_LEFT - 4}" y="{nonfinite_y + 3}" text-anchor="end" font-size="9" fill="#8c1c13">'
             "non-finite</text>"]
    for x, text in x_axis.ticks():
        parts += [f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{PLOT_BOTTOM}" y2="{PLOT_BOTTOM + 4}" stroke="#6b7580"/>',
                  f'<text x="{x:.1f}" y="{PLOT_BOTTOM + 15}" text-anchor="middle" font-size="10">{text}</text>']
    for y, text in y_axis.ticks():
        parts += [f'<line x1="{PLOT_LEFT - 4}" x2="{PLOT_LEFT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#6b7580"/>',
                  f'<line x1="{PLOT_LEFT}" x2="{PLOT_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef0f2"/>',
                  f'<text x="{PLOT_LEFT - 6}" y="{y + 3.5:.1f}" text-anchor="end" font-size="10">{text}</text>']
    middle = (PLOT_TOP + PLOT_BOTTOM) / 2
    return parts + [
        f'<text x="{(PLOT_LEFT + PLOT_RIGHT) / 2:.1f}" y="{PANEL_HEIGHT - 6}" text-anchor="middle" font-size="10" '
        'fill="#4a535c">logit scale: largest finite |logit|</text>',
        f'<text x="12" y="{middle:.1f}" text-anchor="middle" font-size="10" fill="#4a535c" '
        f'transform="rotate(-90 12 {middle:.1f})">loss error (units)</text>']


def _dodge(dtype: str) -> float:
    """A few pixels left or right per dtype so that the dtypes of one case stay apart."""
    return (dtype_order(dtype) - 1.5) * 2.5


def _point(record: Record, x_axis: LogAxis, y_axis: LogAxis) -> str:
    error = record.loss.error_units
    x = x_axis.position(_number(record.scale) or 0.0) + _dodge(record.dtype)
    y = y_axis.position(error)
    title = (f"{record.case} in {record.dtype}: loss error {error:.3g} units ({record.loss.outcome})"
             if record.loss.outcome != "ok" else "")  # hover text where it is out of the band
    return _marker(record.dtype, x, y, title)


def _nonfinite_mark(record: Record, x_axis: LogAxis) -> str:
    x = x_axis.position(_number(record.scale) or 0.0) + _dodge(record.dtype)
    y = PLOT_TOP - NONFINITE_ROW
    colour = DTYPE_STYLES.get(record.dtype, OTHER_DTYPE_STYLE)[0]
    title = f"{record.case} in {record.dtype}: loss {record.loss.outcome}"
    return (f'<g class="nonfinite" stroke="{colour}" stroke-width="2"><title>{escape(title)}</title>'
            f'<path d="M{x - 4:.1f} {y - 4:.1f}L{x + 4:.1f} {y + 4:.1f}M{x - 4:.1f} {y + 4:.1f}L{x + 4:.1f} '
            f'{y - 4:.1f}"/></g>')


def _marker(dtype: str, x: float, y: float, title: str) -> str:
    colour, shape = DTYPE_STYLES.get(dtype, OTHER_DTYPE_STYLE)
    style = f'fill="{colour}" fill-opacity="0.8" stroke="#ffffff" stroke-width="0.6"'
    inner = f"<title>{escape(title)}</title>" if title else ""
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.6" {style}>{inner}</circle>'
    if shape == "square":
        return f'<rect x="{x - 3.2:.1f}" y="{y - 3.2:.1f}" width="6.4" height="6.4" {style}>{inner}</rect>'
    corners = ([(x, y - 4.4), (x + 4.2, y + 3.2), (x - 4.2, y + 3.2)] if shape == "triangle"
               else [(x, y - 4.6), (x + 4.2, y), (x, y + 4.6), (x - 4.2, y)])
    points = " ".join(f"{px:.1f},{py:.1f}" for px, py in corners)
    return f'<polygon points="{points}" {style}>{inner}</polygon>'


def error_legend(records: list[Record]) -> str:
    """The dtypes present (colour and shape), the non-finite mark and the tolerance band, in one row."""
    dtypes = sorted({r.dtype for group in error_records(records).values() for r in group}, key=dtype_order)
    parts, x = [], 6.0
    for dtype in dtypes:
        parts += [_marker(dtype, x + 4, 12, ""), f'<text x="{x + 12:.1f}" y="16" font-size="12">{escape(dtype)}'
                  "</text>"]
        x += 24 + MONO_CHAR * len(dtype)
    parts += [f'<path d="M{x:.1f} 8L{x + 8:.1f} 16M{x:.1f} 16L{x + 8:.1f} 8" stroke="#333333" stroke-width="2"/>',
              f'<text x="{x + 14:.1f}" y="16" font-size="12">loss not finite (nan, inf, finite, raised, silent, '
              "crashed)</text>"]
    x += 360
    parts += [f'<rect x="{x:.1f}" y="5" width="22" height="14" fill="#e6f4ea" stroke="#3a9d5d" '
              'stroke-dasharray="4 3"/>',
              f'<text x="{x + 28:.1f}" y="16" font-size="12">within the tolerance ({TOLERANCE_UNITS:g} units)</text>']
    width = x + 240
    return (f'<svg class="legend" width="{width:.0f}" height="24" viewBox="0 0 {width:.0f} 24" {FONT} role="img" '
            'aria-label="legend of the error plots">' + "".join(parts) + "</svg>")


# ---------------------------------------------------------------- outcome heat map

CELL, PITCH = 18, 21
AREA_ORDER = ("accuracy", "extreme", "large-vocab", "masking", "nonfinite", "labels", "options", "user")
SEED_APIS = frozenset(choice.api for choice in CHOICES)
HEATMAP_STYLE = ("<style>.heatmap rect.c { width: 18px; height: 18px; stroke: #c5cbd3; stroke-width: 0.6; }"
                 + "".join(f" .heatmap .o-{o} {{ fill: {c}; }}" for o, c in OUTCOME_COLOURS.items()) + "</style>")


def heatmap_records(records: list[Record]) -> dict[str, list[Record]]:
    """dtype -> the eager records of the decision table's APIs in it (what the heat maps show), dtype order."""
    by_dtype: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        if record.mode == "eager" and record.api in SEED_APIS:
            by_dtype[record.dtype].append(record)
    return {dtype: by_dtype[dtype] for dtype in sorted(by_dtype, key=lambda d: (dtype_order(d), d))}


def worst_outcome(records: list[Record]) -> str:
    """The most severe loss or gradient outcome among `records`; "not-run" when there are none."""
    outcomes = [o for r in records for o in (r.loss.outcome, r.grad.outcome)]
    if not outcomes:
        return "not-run"
    return max(outcomes, key=lambda o: SEVERITY.index(o) if o in SEVERITY else len(SEVERITY))


def heatmap_cases(records: list[Record]) -> list[tuple[str, str]]:
    """(area, case) columns: grouped by area in the summary's order, then by case id."""
    areas = {(r.area or "other", r.case) for r in records}
    rank = {area: index for index, area in enumerate(AREA_ORDER)}
    return sorted(areas, key=lambda ac: (rank.get(ac[0], len(rank)), ac[0], ac[1]))


def outcome_heatmap(records: list[Record], dtype: str = "") -> str:
    """Rows: API row labels; columns: cases; a cell's colour is its worst outcome (loss or gradient, and over dtypes
    when `records` hold several). A case that did not run is left blank."""
    cells: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for record in records:
        cells[(api_label(record), record.case)].append(record)
    rank = {choice.api: index for index, choice in enumerate(CHOICES)}
    api_of = {api_label(record): record.api for record in records}
    rows = sorted({label for label, _ in cells}, key=lambda label: (rank.get(api_of[label], len(rank)), label))
    columns = heatmap_cases(records)
    longest_case = max((len(case) for _, case in columns), default=0)
    left = MONO_CHAR * max((len(label) for label in rows), default=0) + 12
    top = 0.72 * MONO_CHAR * longest_case + 14
    grid_right = left + PITCH * len(columns)
    grid_bottom = top + PITCH * len(rows)
    legend, legend_right = _outcome_legend(12, grid_bottom + 66)
    width = max(grid_right + 0.72 * MONO_CHAR * longest_case + 10, legend_right + 10)
    height = grid_bottom + 66 + CELL + 8
    title = f"Outcome per API and case{f' in {dtype}' if dtype else ', worst over dtypes'}, loss or gradient"
    parts = [f'<svg class="heatmap" width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} '
             f'{height:.0f}" {FONT} role="img" aria-label="{escape(title)}">', f"<title>{escape(title)}</title>",
             HEATMAP_STYLE]
    for index, (_, case) in enumerate(columns):
        x, y = left + PITCH * index + PITCH / 2, top - 4
        parts.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="11" transform="rotate(-45 {x:.1f} {y:.1f})">'
                     f"{escape(case)}</text>")
    for row, label in enumerate(rows):
        y = top + PITCH * row
        parts.append(f'<text x="{left - 8:.1f}" y="{y + CELL - 3:.1f}" text-anchor="end" font-size="11" '
                     f'font-family="monospace">{escape(label)}</text>')
        parts += [_heat_cell(label, case, cells.get((label, case), []), left + PITCH * index, y)
                  for index, (_, case) in enumerate(columns)]
    parts += _area_brackets(columns, left, grid_bottom)
    parts += legend
    return "\n".join(parts + ["</svg>"])


def _heat_cell(label: str, case: str, records: list[Record], x: float, y: float) -> str:
    """A square in its outcome's colour (styled by class, so the file stays small); a hover text where it is not
    ok; nothing where the case did not run."""
    if not records:
        return ""
    worst = worst_outcome(records)
    cell = f'<rect class="c o-{worst}" x="{x:.0f}" y="{y:.0f}"/>'
    mark = ""
    if any(unexpected(r) for r in records):
        mark = f'<circle cx="{x + CELL - 3.5:.1f}" cy="{y + 3.5:.1f}" r="2.2" fill="#111111" stroke="#ffffff"/>'
    if worst == "ok" and not mark:
        return cell
    ordered = sorted(records, key=_record_order)
    detail = "; ".join(f"{r.dtype}{_place(r)} {r.loss.outcome}/{r.grad.outcome}"
                       + (" (not predicted)" if unexpected(r) else "") for r in ordered)
    return f"<g><title>{escape(f'{label} · {case}: {detail}')}</title>{cell}{mark}</g>"


def _place(record: Record) -> str:
    return "" if (record.device, record.mode) == ("cpu", "eager") else f" {record.device} {record.mode}"


def _area_brackets(columns: list[tuple[str, str]], left: float, bottom: float) -> list[str]:
    """A line under each area's columns and its name, on the first of three rows where it collides with nothing."""
    parts, start, row_ends = [], 0, [-math.inf] * 3
    groups = [(area, sum(1 for a, _ in columns if a == area)) for area in dict.fromkeys(a for a, _ in columns)]
    for area, count in groups:
        x1, x2 = left + PITCH * start + 1, left + PITCH * (start + count) - 4
        row = next((r for r, end in enumerate(row_ends) if end < x1), len(row_ends) - 1)
        row_ends[row] = max(x2, x1 + 6.5 * len(area)) + 6
        y = bottom + 6 + 16 * row
        parts += [f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#6b7580"/>',
                  f'<text x="{x1:.1f}" y="{y + 12:.1f}" font-size="11" fill="#4a535c">{escape(area)}</text>']
        start += count
    return parts


def _outcome_legend(x: float, y: float) -> tuple[list[str], float]:
    """A swatch per outcome (worst last), the "not predicted" dot; the parts and their right edge."""
    parts = []
    for outcome in (*SEVERITY, "not-run"):
        text = outcome.replace("-", " ")
        parts += [f'<rect class="o-{outcome}" x="{x:.1f}" y="{y:.1f}" width="{CELL}" height="{CELL}" '
                  f'fill="{OUTCOME_COLOURS[outcome]}" stroke="#c5cbd3" stroke-width="0.6"/>',
                  f'<text x="{x + CELL + 5:.1f}" y="{y + CELL - 3:.1f}" font-size="12">{text}</text>']
        x += CELL + 16 + 7 * len(text)
    parts += [f'<circle cx="{x + 6:.1f}" cy="{y + CELL / 2:.1f}" r="2.6" fill="#111111"/>',
              f'<text x="{x + 14:.1f}" y="{y + CELL - 3:.1f}" font-size="12">not predicted by the expectations</text>']
    return parts, x + 14 + 7 * len("not predicted by the expectations")
