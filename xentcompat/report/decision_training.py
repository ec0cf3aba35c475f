"""The decision table's training column: what training with each choice reached in this run's training document
(`xentcompat train`), against the fused loss of the same framework, and any non-finite step a regime met.

A cell is ✓ where the choice is the fused loss, or its mean final test accuracy in the standard regime is within
`CLOSE` of the fused loss's and no regime met a non-finite step; ✗ otherwise. Keras choices name their backends where
they differ, as the other columns do.
"""

from __future__ import annotations

from collections import defaultdict

from xentcompat.report.decision import Cell, Column, Row, _combined
from xentcompat.report.training_facts import nonfinite, regime_rows, regimes

CLOSE = 0.02  # two points of accuracy
STANDARD = "standard"
TRAINING_COLUMN = Column("training", "training (digits MLP)", lambda record: False, "training")
REGIME_WORDS = {"float16": "fp16", "bfloat16": "bf16", "high-lr": "high lr"}


def with_training(rows: list[Row], training: dict | None) -> bool:
    """Add the training cell to each row (a `—` where the choice did not train); whether there is training."""
    if not training or STANDARD not in regimes(training):
        return False
    cells = training_cells(training)
    for row in rows:
        row.cells["training"] = cells.get(row.choice.api, Cell("—", "not trained", ()))
    return True


def training_cells(training: dict) -> dict[str, Cell]:
    """API id -> its training cell."""
    by_api: dict[str, list] = defaultdict(list)
    for row in regime_rows(training, STANDARD):
        by_api[row.api].append(row)
    return {api: _cell(training, rows) for api, rows in by_api.items()}


def _cell(training: dict, rows: list) -> Cell:
    """One row's cell; Keras rows of several backends share one, naming the backends that differ."""
    cells = {}
    for row in rows:
        mark, text = _describe(training, row)
        findings = tuple(sorted(f"XC-{cause}" for cause in row.causes)) if mark == "✗" else ()
        cells[row.label.removeprefix("keras[").removesuffix("]") if row.label.startswith("keras[") else None] = \
            Cell(mark, text, findings)
    if len(cells) == 1:
        return next(iter(cells.values()))
    groups: dict[Cell, list] = defaultdict(list)
    for backend, cell in sorted(cells.items(), key=lambda item: str(item[0])):
        groups[cell].append(backend)
    return next(iter(groups)) if len(groups) == 1 else _combined(groups)


def _describe(training: dict, row) -> tuple[str, str]:
    accuracy = row.accuracy.mean if row.accuracy else float("nan")
    fused = row.fused_accuracy.mean if row.fused_accuracy else float("nan")
    hits = [(regime, found) for regime in regimes(training)
            if (found := nonfinite(training, row.target, regime, row.kind)) and found.seeds_hit]
    text = f"reaches {accuracy:.0%}" if row.kind == "fused" else f"{accuracy:.0%} (fused {fused:.0%})"
    drops = _drops(training, row)
    if drops:
        text += "; " + ", ".join(drops)
    if hits:
        text += "; NaN/inf in " + ", ".join(f"{found.seeds_hit}/{found.seeds} seeds at "
                                            f"{REGIME_WORDS.get(regime, regime)}" for regime, found in hits)
    good = row.kind == "fused" or accuracy >= fused - CLOSE
    return ("✓" if good and not hits and not drops else "✗"), text.replace("%", " %")


def _drops(training: dict, row) -> list[str]:
    """The other regime where the choice ends furthest below the fused loss of that regime, when by more than
    `CLOSE`: `35% at bf16 (fused 95%)` (the training section has every regime)."""
    gaps = []
    for regime in regimes(training):
        if regime == STANDARD or row.kind == "fused":
            continue
        other = next((r for r in regime_rows(training, regime) if (r.api, r.label) == (row.api, row.label)), None)
        if other and other.accuracy and other.fused_accuracy \
                and other.accuracy.mean < other.fused_accuracy.mean - CLOSE:
            gaps.append((other.accuracy.mean - other.fused_accuracy.mean, regime, other))
    if not gaps:
        return []
    _, regime, worst = min(gaps, key=lambda gap: gap[0])
    return [f"{worst.accuracy.mean:.0%} at {REGIME_WORDS.get(regime, regime)} (fused {worst.fused_accuracy.mean:.0%})"]
