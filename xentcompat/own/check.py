"""`xentcompat check MODULE:CALLABLE`: a user's loss through every catalogue case its claims cover.

Each cell is run in a child process (a crash of the callable is a `crashed` cell, and the check goes on), judged
against the float64 reference with the calibrated error model and recorded as a
framework API's is; a deviation is named by the known cause whose outcome it shares (`resemblance`) and is either
declared expected by the user (`declared`) or not. The outcome: the results and report in `out`, one repro script
per finding in `out/repro/`, and a one-screen summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xentcompat import expectations
from xentcompat.adapters.base import DEFAULT_OPTIONS, AdapterFailed, Call, LossApi, capture
from xentcompat.own import adapter
from xentcompat.own.declared import Declared
from xentcompat.own.resemblance import resembling
from xentcompat.own.spec import OwnLoss, SpecError
from xentcompat.reference.cases import CATALOGUE, Case, by_id, unrunnable_dtypes
from xentcompat.results.documents import environment, results_document
from xentcompat.results.record import stored_good_outcomes
from xentcompat.run import accumulation
from xentcompat.run.harness import cells, check
from xentcompat.run.isolation import close_children

OPTION_WORDS = {"reduction": "a reduction", "weight": "class weights", "ignore_index": "an ignore_index",
                "label_smoothing": "label smoothing"}


@dataclass(frozen=True)
class Plan:
    spec: OwnLoss
    dtypes: tuple[str, ...]
    devices: tuple[str, ...] = ("cpu",)
    modes: tuple[str, ...] = ("eager",)
    declared: tuple[Declared, ...] = ()
    user_cases: tuple[Case, ...] = ()
    only_user_cases: bool = False

    @property
    def cases(self) -> tuple:
        return self.user_cases if self.only_user_cases else CATALOGUE + self.user_cases


@dataclass
class Outcome:
    """What a check found: the records, what was not run, and the deviations declared or not."""

    document: dict
    deviating: list[dict] = field(default_factory=list)
    undeclared: list[dict] = field(default_factory=list)
    stale: list[Declared] = field(default_factory=list)
    gone: list[dict] = field(default_factory=list)  # cells a cause entry naming the API promised a deviation on, good

    @property
    def passed(self) -> bool:
        return not self.undeclared and not self.stale and not self.gone


def run(plan: Plan, progress=None) -> Outcome:
    """Check the callable (SpecError when it cannot be called as claimed); the records and their reading."""
    api = adapter.declare(plan.spec)
    first_call(api, plan.spec)
    available = adapter.available_devices()
    devices = tuple(device for device in plan.devices if device in available)
    modes = tuple(mode for mode in plan.modes if mode in api.modes)
    matrix = [cell for cell in cells([api], plan.cases, plan.dtypes, devices, modes)
              if not outside_claims(api, cell.case)]
    isolation = adapter.setup(plan.spec)
    naming = entries_naming(api)
    records = []
    try:
        for index, cell in enumerate(matrix):
            records.append(check(cell, naming, isolation, explain=resembling, isolate_valid=True).record)
            if progress is not None:
                progress(index + 1, len(matrix))
    finally:
        close_children()
    not_run = not_run_entries(api, plan, devices, modes, available)
    env = {**environment(adapter.versions(), available), "target": plan.spec.where}
    checked = {"api": api.id, "callable": plan.spec.where, "framework": plan.spec.framework,
               "targets": plan.spec.targets, "options": list(plan.spec.options)}
    document = results_document(records, [env], check=checked,
                                targets=[{"name": plan.spec.where, "skipped": None}], not_run=not_run,
                                causes=expectations.summaries(records))
    return reading(document, plan.declared)


def entries_naming(api: LossApi) -> list:
    """The cause entries that name the callable's API id (`--name`): they promise its cells' outcomes as a framework
    API's entries do; ValueError (CauseConflict) when two claim one cell differently."""
    return [entry for entry in expectations.every_entry() if api.id in entry.apis]


def first_call(api: LossApi, spec: OwnLoss) -> None:
    """Call the callable once on a moderate float32 batch; SpecError when it cannot be called as claimed (its own
    exception on valid input is a measurement, not this)."""
    problem = by_id("random-moderate").problem("float32", spec.targets)
    result = capture(api, Call(problem, "float32"))
    if isinstance(result, AdapterFailed):
        raise SpecError(f"{spec.where} could not be called as fn(logits, targets"
                        f"{', ' + ', '.join(spec.options) if spec.options else ''}): {result.type}: {result.message}")


def reading(document: dict, declared: tuple[Declared, ...]) -> Outcome:
    """The deviating records, those no declaration explains, and the declarations that explain nothing they cover."""
    records = document["records"]
    deviating = [r for r in records if (r["loss"]["outcome"], r["grad"]["outcome"]) != stored_good_outcomes(r)]
    undeclared = [r for r in deviating if not any(item.explains(r) for item in declared)]
    stale = [item for item in declared if any(item.covers(r) for r in records)
             and not any(item.explains(r) for r in deviating)]
    gone = [r for r in records if r not in deviating and (r["expected"]["loss"], r["expected"]["grad"]) != stored_good_outcomes(r)]
    return Outcome(document, deviating, undeclared, stale, gone)


def not_run_entries(api: LossApi, plan: Plan, devices, modes, available) -> list[dict]:
    """Why each catalogue case the claims do not cover was not run, and each dtype a case cannot hold."""
    entries = []
    for case in plan.cases:
        reason = outside_claims(api, case)
        if reason:
            entries.append({"cell": f"{api.id} on {case.id}", "reason": reason})
            continue
        entries += [{"case": case.id, "dtype": dtype, "reason": why}
                    for dtype, why in unrunnable_dtypes(case).items() if dtype in plan.dtypes]
    entries += [{"target": plan.spec.where, "device": device, "reason": f"{plan.spec.framework} sees no {device} device"}
                for device in plan.devices if device not in available]
    entries += [{"target": plan.spec.where, "reason": f"no {mode} mode: {plan.spec.framework} callables run eager "
                 f"(compiled: torch.compile, jax.jit)"} for mode in plan.modes if mode not in modes]
    return entries


def outside_claims(api: LossApi, case) -> str | None:
    """Why `case` is outside what the callable claims (None: it runs)."""
    if case.area == "linear":
        return "linear cross-entropy (hidden states and a weight): the callable takes logits"
    if not case.has_targets(api.targets):
        return ("probability targets: the callable claims class-index labels (--targets probs for those)"
                if api.targets == "labels" else "class-index labels with rows ignored or invalid, which probability "
                "targets cannot state")
    unclaimed = [name for name, default in DEFAULT_OPTIONS.items()
                 if getattr(case.options, name) != default and name not in api.supports]
    if unclaimed == ["extra_dims"]:
        return "extra dimensions (n, C, d1, ...): the callable is given (N, C) rows"
    if unclaimed:
        name = next(name for name in unclaimed if name != "extra_dims")
        return f"sets {OPTION_WORDS[name]}, which the callable does not claim (--options {name})"
    if case.accumulation is not None and case.accumulation.recipe == "mean-of-means":
        return "the naive accumulation recipe (the mean of micro-batch means): it tests the recipe, not the callable"
    if case.accumulation is not None and not accumulation.can_run(api, case.accumulation):
        return "gradient accumulation by sums needs a reduction (--options reduction)"
    return None

