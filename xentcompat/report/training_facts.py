"""The numbers of a training document, arranged for the report: every table cell and sentence is computed here from
training.json, and the Markdown and HTML renderers only format them.

A group is the seeds of one target × regime × variant. Its spread is over the seeds' final values: the mean, the
sample standard deviation (0 with one seed) and the range. The gradient-norm ratio of a target is
mean(‖∂L/∂z‖ of the double softmax) / mean(‖∂L/∂z‖ of the fused loss), each mean over seeds and epochs of the
per-epoch means (the first epoch alone besides).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass

from xentcompat.adapters.base import TARGETS
from xentcompat.results.documents import decode_number

TARGET_ORDER = tuple(name for name, target in TARGETS.items() if target.training)  # the registry's order
KIND_ORDER = ("fused", "double-softmax", "softmax-then-log", "forgotten-flag")
KIND_NAMES = {"fused": "fused loss on logits", "double-softmax": "double softmax",
              "softmax-then-log": "softmax, then log", "forgotten-flag": "logits to from_logits=False"}


@dataclass(frozen=True)
class Spread:
    mean: float
    sd: float
    low: float
    high: float
    n: int


def spread(values) -> Spread | None:
    values = [float(v) for v in values]
    if not values:
        return None
    sd = statistics.stdev(values) if len(values) > 1 and all(map(math.isfinite, values)) else (
        0.0 if len(values) == 1 else math.nan)
    return Spread(statistics.fmean(values), sd, min(values), max(values), len(values))


def number(value) -> float:
    value = decode_number(value)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def percent(value: float, digits: int = 1) -> str:
    return "—" if not math.isfinite(value) else f"{100 * value:.{digits}f} %"


def spread_text(s: Spread | None, scale: float = 100.0, unit: str = " %") -> str:
    """'95.3 % ± 0.4 (94.9–95.8)': mean ± standard deviation over seeds (range)."""
    if s is None:
        return "—"
    if not math.isfinite(s.mean):
        return "not finite"
    text = f"{scale * s.mean:.1f}{unit}"
    if s.n > 1:
        text += f" ± {scale * s.sd:.1f} ({scale * s.low:.1f}–{scale * s.high:.1f})"
    return text


def ordered(names, order) -> list:
    names = set(names)
    return [n for n in order if n in names] + sorted(names - set(order))


def runs_of(training: dict) -> list[dict]:
    return [r for r in training.get("runs", []) if not r.get("error")]


def groups(training: dict) -> dict[tuple[str, str, str], list[dict]]:
    """(target, regime, variant kind) -> the runs of its seeds, by seed."""
    found: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for run in runs_of(training):
        found[(run["target"], run["regime"], run["variant"])].append(run)
    return {key: sorted(runs, key=lambda r: r["seed"]) for key, runs in found.items()}


def targets(training: dict) -> list[str]:
    return ordered({r["target"] for r in training.get("runs", [])}, TARGET_ORDER)


def regimes(training: dict) -> list[str]:
    declared = list(training.get("config", {}).get("regimes", {}))
    return ordered({r["regime"] for r in training.get("runs", [])}, declared)


def kinds(training: dict, target: str) -> list[str]:
    return ordered({r["variant"] for r in training.get("runs", []) if r["target"] == target}, KIND_ORDER)


def regime_info(training: dict, regime: str) -> dict:
    return training.get("config", {}).get("regimes", {}).get(regime, {})


def final(runs: list[dict], metric: str) -> list[float]:
    return [number(r["metrics"][metric][-1]) for r in runs if r["metrics"].get(metric)]


def every_epoch(runs: list[dict], metric: str) -> list[float]:
    return [number(v) for r in runs for v in r["metrics"].get(metric, [])]


def curve(runs: list[dict], metric: str = "test_accuracy") -> list[Spread]:
    """Per epoch (0: before training, for the accuracy) the spread over seeds."""
    series = [([number(r.get("initial_test_accuracy"))] if metric == "test_accuracy" else [])
              + [number(v) for v in r["metrics"].get(metric, [])] for r in runs]
    length = min((len(s) for s in series), default=0)
    return [spread([s[i] for s in series]) for i in range(length)]


def variant_run(training: dict, target: str, kind: str) -> dict | None:
    """A run of the variant (its api, expression, causes), whichever regime."""
    return next((r for r in training.get("runs", []) if r["target"] == target and r["variant"] == kind), None)


def backend_label(target: str, run: dict | None) -> str:
    return f"keras[{run['backend']}]" if run and run.get("backend") else target


# ---------------------------------------------------------------- the gradient reaching the output layer


def _mean_norm(runs: list[dict], first_epoch_only: bool) -> float:
    values = [number(r["metrics"]["grad_norm"][0]) for r in runs] if first_epoch_only else every_epoch(
        runs, "grad_norm")
    return statistics.fmean(values) if values else math.nan


def gradient_ratio(training: dict, target: str, regime: str = "standard") -> dict | None:
    """The double softmax's mean ‖∂L/∂z‖ against the fused loss's, in `regime` (None when one is missing)."""
    found = groups(training)
    fused, double = found.get((target, regime, "fused")), found.get((target, regime, "double-softmax"))
    if not fused or not double:
        return None
    result = {"target": target, "fused": _mean_norm(fused, False), "double": _mean_norm(double, False),
              "fused_first": _mean_norm(fused, True), "double_first": _mean_norm(double, True)}
    result["ratio"] = _ratio(result["double"], result["fused"])
    result["ratio_first"] = _ratio(result["double_first"], result["fused_first"])
    return result


def _ratio(a: float, b: float) -> float:
    return a / b if math.isfinite(a) and math.isfinite(b) and b > 0 else math.nan


# ---------------------------------------------------------------- non-finite steps


@dataclass(frozen=True)
class NonFinite:
    target: str
    regime: str
    kind: str
    api: str
    seeds_hit: int
    seeds: int
    steps: int
    first_step: float | None  # median over the seeds that had one


def nonfinite(training: dict, target: str, regime: str, kind: str) -> NonFinite | None:
    runs = groups(training).get((target, regime, kind))
    if not runs:
        return None
    firsts = [r["first_nonfinite_step"] for r in runs if r.get("first_nonfinite_step") is not None]
    return NonFinite(target, regime, kind, runs[0]["api"], len(firsts), len(runs),
                     int(sum(every_epoch(runs, "nonfinite_steps"))), statistics.median(firsts) if firsts else None)


def nonfinite_rows(training: dict) -> list[NonFinite]:
    """Every group with at least one non-finite step."""
    rows = [nonfinite(training, t, g, k) for t in targets(training) for g in regimes(training)
            for k in kinds(training, t)]
    return [row for row in rows if row and row.seeds_hit]


def nonfinite_text(row: NonFinite | None) -> str:
    if row is None:
        return "not run"
    if not row.seeds_hit:
        return f"no non-finite step in {row.seeds} seed{'s' * (row.seeds != 1)}"
    return (f"a non-finite loss or gradient in {row.seeds_hit} of {row.seeds} seeds (first at step "
            f"{row.first_step:.0f}, median)")


def errors(training: dict) -> list[dict]:
    return [r for r in training.get("runs", []) if r.get("error")]


def peak(runs: list[dict], metric: str) -> float:
    """The largest value of `metric` over epochs and seeds (NaN when none is finite)."""
    values = [v for v in every_epoch(runs, metric) if math.isfinite(v)]
    return max(values) if values else math.nan


# ---------------------------------------------------------------- one regime, every target and variant


@dataclass(frozen=True)
class RegimeRow:
    target: str
    label: str  # the target as the report names it: torch, jax, keras[tensorflow], ...
    kind: str
    api: str
    expression: str
    causes: tuple[str, ...]
    accuracy: Spread | None
    fused_accuracy: Spread | None
    nonfinite: NonFinite | None
    logit_spread: float
    below_clip: float
    prob_underflow: float  # the share of rows with a probability that rounds to 0 (worst epoch)
    grad_ratio: float  # mean ‖∂L/∂z‖ over seeds and epochs, against the fused loss's


def regime_rows(training: dict, regime: str) -> list[RegimeRow]:
    found = groups(training)
    rows = []
    for target in targets(training):
        fused = found.get((target, regime, "fused"), [])
        for kind in kinds(training, target):
            runs = found.get((target, regime, kind))
            if not runs:
                continue
            first = runs[0]
            rows.append(RegimeRow(
                target, backend_label(target, first), kind, first["api"], first["expression"],
                tuple(first.get("causes", ())), spread(final(runs, "test_accuracy")),
                spread(final(fused, "test_accuracy")), nonfinite(training, target, regime, kind),
                peak(runs, "logit_spread"), peak(runs, "below_clip"), peak(runs, "prob_underflow"),
                _ratio(_mean_norm(runs, False), _mean_norm(fused, False)) if fused else math.nan))
    return rows

