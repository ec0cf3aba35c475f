"""The known cause a deviation of a user's callable shares with a framework's API.

No cause names a user's callable. But a cause's entries select cells by facts of the input, input conditions, cases,
dtypes and modes, and say what a framework's API gives there; a mechanism entry computes it from the input. A user's
deviating cell *resembles* an entry when the entry, read for the user's callable (its APIs, releases and backends set
aside), covers the cell and promises exactly the outcome the callable gave: the callable fails the way that API does,
for that cause (log of an underflowed softmax gives an infinite loss and a NaN gradient wherever the target's
probability underflows, whoever wrote the log).

Several entries may match one cell; the cause named is the one the entries of more frameworks agree on, then the most
telling: a mechanism computed from the cell's input first, then an entry selecting by input conditions or facts, then
one naming the case, then a broad one (a dtype, an area); then the id. An entry on the callable's own framework comes
before any other (its APIs share the callable's kernels), and is the only kind that names an error raised (or a crash)
on valid input: across frameworks there are too many ways to raise for the outcome alone to say which.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import cache

from xentcompat import expectations
from xentcompat.expectations import Effect
from xentcompat.expectations.model import Selector
from xentcompat.machine import current as current_machine
from xentcompat.run import predicted

MECHANISM, INPUT, CASE, BROAD = range(4)


@cache
def _entries() -> tuple[Effect, ...]:
    return expectations.every_entry()


def resembling(cell, call, observed: tuple[str, str], conditions: Callable[[], frozenset[str]],
               truth: Callable[[], object]) -> Effect | None:
    """The entry, restated for `cell`'s API with `observed` as its outcomes, of the known cause whose outcome the cell
    shares (None: no entry gives that outcome there)."""
    own_framework_only = cell.case.invalid is None and observed[0] in ("raised", "crashed")
    fields = _fields(cell)
    machine = current_machine()
    found: dict[str, list[Effect]] = {}
    predictions: dict[str, tuple[str, str] | None] = {}
    for entry in _entries():
        if own_framework_only and entry.framework != cell.api.framework:
            continue
        general = _for_any_api(entry, fields["api"])
        if not general.covers(fields, None, conditions):
            continue
        if entry.mechanism is not None:
            if entry.mechanism not in predictions:
                predictions[entry.mechanism] = predicted.outcomes(entry.mechanism, call.problem, truth)
            if predictions[entry.mechanism] != tuple(observed):
                continue
        elif not entry.on(machine, cell.mode).allows(tuple(observed)) and not _any_kernel_gives(entry, observed):
            continue
        found.setdefault(entry.cause.id, []).append(entry)
    if not found:
        return None
    own = cell.api.framework
    cause_id = min(found, key=lambda cause: (all(entry.framework != own for entry in found[cause]),
                                             -len({entry.framework for entry in found[cause]}),
                                             min(_rank(entry) for entry in found[cause]), cause))
    shown = min(found[cause_id], key=lambda entry: (entry.framework != own, _rank(entry)))
    return _restated(shown, observed)


def _fields(cell) -> dict:
    from xentcompat.run.harness import claim_fields

    return claim_fields(cell)


def _for_any_api(entry: Effect, api_id: str) -> Effect:
    """The entry read for `api_id`: its API list, releases and backends set aside."""
    return replace(entry, apis=(api_id,), versions="", selector=replace(entry.selector, backends=("*",)))


def _any_kernel_gives(entry: Effect, observed: tuple[str, str]) -> bool:
    return any((variant.loss, variant.grad) == tuple(observed) for variant in entry.kernel)


def _rank(entry: Effect) -> int:
    if entry.mechanism is not None:
        return MECHANISM
    if entry.when or entry.selector.tags != Selector.tags:
        return INPUT
    if entry.selector.cases != Selector.cases:
        return CASE
    return BROAD


def _restated(entry: Effect, observed: tuple[str, str]) -> Effect:
    """The entry as a promise about the user's cell: the observed outcomes, and whose outcome it shares."""
    api = entry.apis[0]
    note = f"the outcome {api} ({entry.framework}) gives on this input, cause {entry.cause.id}: {entry.cause.title}"
    return replace(entry, loss=observed[0], grad=observed[1], also=(), kernel=(), mechanism=None, note=note)
