"""Hand-written SVG of the training runs, drawn as the other report plots are (xentcompat/report/plots.py): inline
without xmlns (a file of its own gets it), every text escaped, the same document giving the same bytes.

One figure per regime: a panel per framework, test accuracy against epochs (0 = before training), a line per loss
variant at the mean over seeds and a band from the lowest to the highest seed.
"""

from __future__ import annotations

import math
from html import escape

from xentcompat.report.plots import FONT
from xentcompat.report.training_facts import (KIND_NAMES, backend_label, curve, groups, kinds, targets,
                                              variant_run)

# Okabe-Ito colours (distinguishable with colour-blindness), and a dash pattern per variant besides
KIND_STYLES = {"fused": ("#009E73", ""), "double-softmax": ("#D55E00", "6 3"),
               "softmax-then-log": ("#0072B2", "2 2"), "forgotten-flag": ("#CC79A7", "8 2 2 2")}
OTHER_STYLE = ("#555555", "")
PANEL_WIDTH, PANEL_HEIGHT = 300, 210
LEFT, RIGHT, TOP, BOTTOM = 46, 288, 26, 176
COLUMNS = 3
LEGEND_HEIGHT = 28


def _x(epoch: int, epochs: int) -> float:
    return LEFT + (RIGHT - LEFT) * epoch / max(epochs, 1)


def _y(accuracy: float) -> float:
    return BOTTOM - (BOTTOM - TOP) * min(max(accuracy, 0.0), 1.0)


def accuracy_figure(training: dict, regime: str, standalone: bool = False) -> str:
    """The SVG of `regime`: one panel per framework that ran it. `standalone`: with the SVG namespace, for a file of
    its own (an image a Markdown file links); inline in HTML it goes without, as the other plots."""
    found = groups(training)
    panels = [t for t in targets(training) if any((t, regime, k) in found for k in kinds(training, t))]
    columns = min(COLUMNS, max(len(panels), 1))
    rows = math.ceil(len(panels) / columns) if panels else 1
    width, height = columns * PANEL_WIDTH, LEGEND_HEIGHT + rows * PANEL_HEIGHT
    namespace = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    parts = [f'<svg{namespace} class="training-accuracy" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" {FONT} role="img" '
             f'aria-label="test accuracy per epoch, regime {escape(regime)}">',
             f"<title>Test accuracy per epoch in the {escape(regime)} regime: mean over seeds, band from the lowest "
             "to the highest seed</title>", _legend(training, panels)]
    for index, target in enumerate(panels):
        x0, y0 = (index % columns) * PANEL_WIDTH, LEGEND_HEIGHT + (index // columns) * PANEL_HEIGHT
        parts.append(f'<g transform="translate({x0} {y0})">{_panel(training, found, target, regime)}</g>')
    return "\n".join(parts + ["</svg>"])


def _legend(training: dict, panels: list[str]) -> str:
    present = [k for k in KIND_NAMES if any(k in kinds(training, t) for t in panels)]
    parts, x = [], 8.0
    for kind in present:
        colour, dash = KIND_STYLES.get(kind, OTHER_STYLE)
        parts += [f'<line x1="{x:.1f}" x2="{x + 24:.1f}" y1="14" y2="14" stroke="{colour}" stroke-width="2.5"'
                  + (f' stroke-dasharray="{dash}"' if dash else "") + "/>",
                  f'<text x="{x + 30:.1f}" y="18" font-size="12">{escape(KIND_NAMES[kind])}</text>']
        x += 44 + 6.6 * len(KIND_NAMES[kind])
    return "".join(parts)


def _panel(training: dict, found: dict, target: str, regime: str) -> str:
    label = backend_label(target, variant_run(training, target, "fused") or variant_run(training, target,
                                                                                          kinds(training, target)[0]))
    epochs = max((len(curve(found[(target, regime, k)])) - 1 for k in kinds(training, target)
                  if (target, regime, k) in found), default=1)
    parts = [f'<text x="{LEFT}" y="{TOP - 8}" font-size="12" font-weight="bold">{escape(label)}</text>',
             f'<rect x="{LEFT}" y="{TOP}" width="{RIGHT - LEFT}" height="{BOTTOM - TOP}" fill="none" '
             'stroke="#9aa3ad"/>']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = _y(tick)
        parts += [f'<line x1="{LEFT}" x2="{RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eef0f2"/>',
                  f'<text x="{LEFT - 5}" y="{y + 3.5:.1f}" text-anchor="end" font-size="10">{100 * tick:.0f} %</text>']
    step = max(1, math.ceil(epochs / 10))
    for epoch in range(0, epochs + 1, step):
        x = _x(epoch, epochs)
        parts += [f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{BOTTOM}" y2="{BOTTOM + 4}" stroke="#6b7580"/>',
                  f'<text x="{x:.1f}" y="{BOTTOM + 15}" text-anchor="middle" font-size="10">{epoch}</text>']
    parts.append(f'<text x="{(LEFT + RIGHT) / 2:.1f}" y="{PANEL_HEIGHT - 8}" text-anchor="middle" font-size="10" '
                 'fill="#4a535c">epoch</text>')
    for kind in kinds(training, target):
        runs = found.get((target, regime, kind))
        if runs:
            parts.append(_series(kind, runs[0]["api"], curve(runs), epochs))
    return "".join(parts)


def _series(kind: str, api: str, points: list, epochs: int) -> str:
    colour, dash = KIND_STYLES.get(kind, OTHER_STYLE)
    finite = [(i, p) for i, p in enumerate(points) if p is not None and math.isfinite(p.mean)]
    if not finite:
        return ""
    upper = " ".join(f"{_x(i, epochs):.1f},{_y(p.high):.1f}" for i, p in finite)
    lower = " ".join(f"{_x(i, epochs):.1f},{_y(p.low):.1f}" for i, p in reversed(finite))
    mean = " ".join(f"{_x(i, epochs):.1f},{_y(p.mean):.1f}" for i, p in finite)
    last = finite[-1][1]
    title = (f"{api}: {100 * last.mean:.1f} % after epoch {finite[-1][0]} (seeds {100 * last.low:.1f}–"
             f"{100 * last.high:.1f} %)")
    return (f'<g class="series {escape(kind)}"><title>{escape(title)}</title>'
            f'<polygon points="{upper} {lower}" fill="{colour}" fill-opacity="0.14" stroke="none"/>'
            f'<polyline points="{mean}" fill="none" stroke="{colour}" stroke-width="2"'
            + (f' stroke-dasharray="{dash}"' if dash else "") + "/></g>")
