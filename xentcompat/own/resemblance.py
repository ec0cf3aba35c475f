"""The known cause a deviation of a user's callable shares with a framework's API.

No cause names a user's callable. But a cause's entries select cells by facts of the input, input conditions, cases,
dtypes and modes, and say what a framework's API gives there; a mechanism entry computes it from the input. A user's
deviating cell *resembles* an entry when the entry, read for the user's callable (its APIs, releases and backends set
aside), covers the cell and promises exactly the outcome the callable gave: the callable fails the way that API does,
for that cause (log of an underflowed softmax gives an infinite loss and a NaN gradient wherever the target's
probability underflows, whoever wrote the log).

An entry with a mechanism matches only where the mechanism, computed on the cell's input, gives the callable's
values: its deviation, not only its outcome. Several entries may match one cell; the cause named is the one the entries of more frameworks agree on, then the most
telling: a mechanism computed from the cell's input first, then an entry selecting by input conditions or facts, then
one naming the case, then a broad one (a dtype, an area); then the id. An entry on the callable's own framework comes
before any other (its APIs share the callable's kernels), and is the only kind that names a cell by its case alone or
by a dtype, or names an error raised (or a crash) on valid input: across frameworks, an outcome on a named case, or
an error, says too little about how it came.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import cache

import numpy as np

from xentcompat import expectations
from xentcompat.expectations import Effect
from xentcompat.expectations.model import Selector
from xentcompat.machine import current as current_machine
from xentcompat.adapters.base import Returned
from xentcompat.expectations.mechanisms import MECHANISMS
from xentcompat.reference.compact import is_big

MECHANISM, INPUT, CASE, BROAD = range(4)


@cache
def _entries() -> tuple[Effect, ...]:
    return expectations.every_entry()


def resembling(cell, call, observed: tuple[str, str], conditions: Callable[[], frozenset[str]],
               truth: Callable[[], object], captured) -> Effect | None:
    """The entry, restated for `cell`'s API with `observed` as its outcomes, of the known cause whose outcome the cell
    shares (None: no entry gives that outcome there). `captured` is what the callable returned (or raised)."""
    own_framework_only = cell.case.invalid is None and observed[0] in ("raised", "crashed")
    fields = _fields(cell)
    machine = current_machine()
    found: dict[str, list[Effect]] = {}
    predictions: dict[str, bool] = {}
    for entry in _entries():
        if entry.framework != cell.api.framework and (own_framework_only or _rank(entry) > INPUT):
            continue
        general = _for_any_api(entry, fields["api"])
        if not general.covers(fields, None, conditions):
            continue
        if entry.mechanism is not None:
            if entry.mechanism not in predictions:
                predictions[entry.mechanism] = _computes(entry.mechanism, call.problem, truth, captured)
            if not predictions[entry.mechanism]:
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


def _computes(mechanism: str, problem, truth: Callable[[], object], captured) -> bool:
    """Whether `mechanism`, computed on the cell's input, gives what the callable returned: its NaN and infinities
    where they are and, where the values are finite, its deviation from the reference (the mechanism's value within a
    quarter of that deviation of the callable's, or a deviation of the same size: within a factor 8, which two
    computations in one lower precision that round differently give), in the loss and in the gradient. False where the mechanism cannot compute the input: it states one API's
    arithmetic on the inputs that API takes (MLX's losses take no ignore_index, so its mechanisms index every label;
    another callable's cell may hold an ignored row's label -100, or probability targets); on a big batch (not
    computed whole), invalid input, or a call that did not return."""
    known = truth()
    if known is None or not isinstance(captured, Returned) or is_big(problem.logits):
        return False
    try:
        loss, grad = MECHANISMS[mechanism](problem, known.dtype)
    except (IndexError, AttributeError, TypeError, ValueError):
        return False
    return (_explains(captured.loss, loss, known.result.loss)
            and _explains(captured.grad, grad, known.result.grad))


EXPLAINED = 0.25  # the mechanism's value lies within this fraction of the deviation from the callable's
SAME_SIZE = 8.0  # or the two deviations from the reference are within this factor of each other


def _explains(value, mechanism, reference) -> bool:
    value, mechanism, reference = (np.asarray(a, np.float64) for a in (value, mechanism, reference))
    if value.shape != mechanism.shape or value.shape != reference.shape:
        return False
    finite = np.isfinite(value)
    if not np.array_equal(finite, np.isfinite(mechanism)) or not np.array_equal(value[~finite], mechanism[~finite],
                                                                                equal_nan=True):
        return False
    both = finite & np.isfinite(reference)
    deviation = np.max(np.abs(value[both] - reference[both]), initial=0.0)
    if np.max(np.abs(value[finite] - mechanism[finite]), initial=0.0) <= EXPLAINED * deviation:
        return True
    theirs = np.max(np.abs(mechanism[both] - reference[both]), initial=0.0)
    return deviation > 0 and theirs > 0 and 1 / SAME_SIZE <= theirs / deviation <= SAME_SIZE


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
