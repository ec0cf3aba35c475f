"""Sentences about a training run, each computed from training.json: the decision-table line of every API, and what
each stress regime showed. No number or verdict here is written by hand; a sentence whose numbers are missing is
left out.
"""

from __future__ import annotations

import math
from collections import defaultdict

from xentcompat.report.training_facts import (KIND_NAMES, RegimeRow, nonfinite, percent, regime_info, regime_rows,
                                              regimes, targets)

STANDARD = "standard"


def _acc(spread, digits: int = 0) -> str:
    return "—" if spread is None else percent(spread.mean, digits)


def _base_regime(training: dict) -> str | None:
    names = regimes(training)
    return STANDARD if STANDARD in names else (names[0] if names else None)


def _stress_regimes(training: dict) -> list[str]:
    return [g for g in regimes(training) if regime_info(training, g).get("stress", g != STANDARD)]


def regime_title(training: dict, regime: str) -> str:
    """'high-lr (lr 0.3, float32)'."""
    info = regime_info(training, regime)
    if "learning_rate" in info and "dtype" in info:
        return f"{regime} (lr {info['learning_rate']:g}, {info['dtype']})"
    return regime


def experiment_words(training: dict) -> str:
    config = training.get("config", {})
    seeds = len(config.get("seeds", [])) or "?"
    return f"digits MLP, {seeds} seed{'s' * (seeds != 1)} × {config.get('epochs', '?')} epochs, mean test accuracy"


def _decision_part(row: RegimeRow) -> str:
    if row.kind == "fused":
        return f"reaches {_acc(row.accuracy)}"
    text = f"trains to {_acc(row.accuracy)} where the fused loss reaches {_acc(row.fused_accuracy)}"
    if row.kind == "double-softmax" and math.isfinite(row.grad_ratio):
        text += f", with {row.grad_ratio:.2f}× the fused loss's gradient at the logits"
    return text


def decision_lines(training: dict) -> dict[str, str]:
    """API id -> one line for the decision table: what training with it reached in this run, against the fused
    loss of the same framework, and any non-finite step a stress regime met. An API shared by several Keras
    backends gets one line naming each."""
    base = _base_regime(training)
    if base is None:
        return {}
    by_api: dict[str, list[RegimeRow]] = defaultdict(list)
    for row in regime_rows(training, base):
        by_api[row.api].append(row)
    lines = {}
    for api, rows in by_api.items():
        several = len(rows) > 1
        parts = [("on " + row.label.removeprefix("keras[").removesuffix("]") + " " if several else "")
                 + _decision_part(row) for row in rows]
        parts += _stress_nonfinite(training, rows, several)
        where = "" if base == STANDARD else f", {regime_title(training, base)}"
        lines[api] = "; ".join(parts) + f" ({experiment_words(training)}{where})"
    return lines


def _stress_nonfinite(training: dict, rows: list[RegimeRow], several: bool) -> list[str]:
    parts = []
    for regime in _stress_regimes(training):
        for row in rows:
            found = nonfinite(training, row.target, regime, row.kind)
            if found and found.seeds_hit:
                who = f" on {row.label.removeprefix('keras[').removesuffix(']')}" if several else ""
                parts.append(f"under {regime_title(training, regime)}{who} a non-finite loss or gradient in "
                             f"{found.seeds_hit} of {found.seeds} seeds")
    return parts


def stress_claims(training: dict) -> list[tuple[str, list[str]]]:
    """(regime, its sentences) for every stress regime in the run."""
    return [(regime, _regime_claims(training, regime)) for regime in _stress_regimes(training)]


def _regime_claims(training: dict, regime: str) -> list[str]:
    rows = regime_rows(training, regime)
    claims = [_nonfinite_claim(rows), _accuracy_claim(rows), _saturation_claim(training, regime, rows),
              _clip_claim(rows)]
    return [claim for claim in claims if claim]


def _who(row: RegimeRow) -> str:
    return f"`{row.api}` ({row.label})"


def _nonfinite_claim(rows: list[RegimeRow]) -> str:
    hit = [row for row in rows if row.nonfinite and row.nonfinite.seeds_hit]
    if not hit:
        return f"No variant met a non-finite loss or gradient ({len(rows)} variant × framework groups)."
    told = "; ".join(f"{_who(row)} in {row.nonfinite.seeds_hit} of {row.nonfinite.seeds} seeds, first at step "
                     f"{row.nonfinite.first_step:.0f} (median), ending at {_acc(row.accuracy, 1)}" for row in hit)
    clean = [row for row in rows if row not in hit]
    fused_clean = sum(1 for row in clean if row.kind == "fused")
    fused_all = sum(1 for row in rows if row.kind == "fused")
    return (f"A non-finite loss or gradient: {told}. The other {len(clean)} groups had none "
            f"(the fused loss: {fused_clean} of {fused_all} frameworks without one).")


def _accuracy_claim(rows: list[RegimeRow]) -> str:
    """The variants furthest below their framework's fused loss, by final mean accuracy."""
    gaps = [(row.fused_accuracy.mean - row.accuracy.mean, row) for row in rows
            if row.kind != "fused" and row.accuracy and row.fused_accuracy]
    if not gaps:
        return ""
    fused = [row for row in rows if row.kind == "fused" and row.accuracy]
    fused_text = ", ".join(f"{row.label} {_acc(row.accuracy, 1)}" for row in fused)
    below = sorted((g for g in gaps if g[0] > 0.02), key=lambda g: -g[0])
    if not below:
        return f"Every variant ends within 2 points of its framework's fused loss ({fused_text})."
    told = "; ".join(f"{KIND_NAMES[row.kind]} {_who(row)} {_acc(row.accuracy, 1)} ({100 * gap:.1f} points below)"
                     for gap, row in below)
    return f"The fused loss ends at {fused_text}. Further than 2 points below it: {told}."


def _saturation_claim(training: dict, regime: str, rows: list[RegimeRow]) -> str:
    """Per variant kind, the worst framework: how far apart the logits went, how many rows sat below Keras' clip,
    how many had a probability that rounds to 0 in the regime's dtype."""
    kinds = list(dict.fromkeys(row.kind for row in rows))
    if not kinds:
        return ""

    def worst(metric: str, digits: int | None) -> str:
        parts = []
        for kind in kinds:
            values = [getattr(r, metric) for r in rows if r.kind == kind and math.isfinite(getattr(r, metric))]
            if values:
                value = max(values)
                parts.append(f"{KIND_NAMES[kind]} {value:.0f}" if digits is None else
                             f"{KIND_NAMES[kind]} {percent(value, digits)}")
        return ", ".join(parts) or "none measured"

    dtype = regime_info(training, regime).get("dtype", "the regime's dtype")
    return (f"How confident the outputs became, the worst framework of each variant: the largest logit spread "
            f"(max z − min z of a training row at its step) {worst('logit_spread', None)}; the share of an epoch's "
            f"training rows whose target probability was below 1e-7 (where from_logits=False clips) "
            f"{worst('below_clip', 2)}; the share with a class probability that rounds to 0 in {dtype} (where "
            f"log(softmax) is -inf and its gradient 0 / 0) {worst('prob_underflow', 2)}.")


def _clip_claim(rows: list[RegimeRow]) -> str:
    """What from_logits=False (clipped at 1e-7) did against the fused loss, per Keras backend."""
    clipped = [row for row in rows if "from_logits=False" in row.api]
    if not clipped:
        return ""
    told = "; ".join(f"{_who(row)} ends at {_acc(row.accuracy, 1)} where the fused loss ends at "
                     f"{_acc(row.fused_accuracy, 1)}, at most {percent(row.below_clip, 2)} of an epoch's training rows "
                     f"below the clip, {_gradient_words(row)}" for row in clipped)
    return f"from_logits=False: {told}."


def _gradient_words(row: RegimeRow) -> str:
    if math.isfinite(row.grad_ratio):
        return f"its gradient at the logits is {row.grad_ratio:.2f}× the fused loss's"
    return "its gradient at the logits is not finite"


def standard_claims(training: dict) -> list[str]:
    """The seed experiment in a sentence per framework: the double softmax against the fused loss."""
    base = _base_regime(training)
    if base is None:
        return []
    claims = []
    for target in targets(training):
        rows = {row.kind: row for row in regime_rows(training, base) if row.target == target}
        double = rows.get("double-softmax")
        if double and double.accuracy and double.fused_accuracy:
            claims.append(f"{double.label}: `{double.api}` trains to {_acc(double.accuracy, 1)} where the fused loss "
                          f"reaches {_acc(double.fused_accuracy, 1)}; {_gradient_words(double)}.")
    return claims
