"""One cell of the matrix (api × case × dtype × device × mode): run it, judge it, make its record.

Backend-neutral: everything framework-specific sits behind the adapter module of the target.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from xentcompat.adapters.base import (DEFAULT_OPTIONS, FORWARD_MAX_ELEMENTS, AdapterError, AdapterFailed, Call, Faulted,
                                     LossApi, Raised, Returned)
from xentcompat.expectations import Effect, Expected, expectation, good
from xentcompat.expectations.conditions import holding
from xentcompat.machine import current as current_machine
from xentcompat.reference.cases import Case
from xentcompat.reference.compact import is_big, largest_finite_magnitude
from xentcompat.reference.dtypes import float_type
from xentcompat.reference.judging import grad_units, has_relations, loss_unit, solve
from xentcompat.results.record import Expectation, Failure, Record, stored_good_outcomes
from xentcompat.run import accumulation, predicted
from xentcompat.run.cell_memory import refusal
from xentcompat.run.isolation import Crashed, Setup, capture_isolated
from xentcompat.run.metamorphic import check_relations
from xentcompat.run.rows import check_rows, row_truth
from xentcompat.run.verdict import GradVerdict, LossVerdict, judge_grad, judge_loss, shape_mismatch



@dataclass(frozen=True)
class Cell:
    api: LossApi
    case: Case
    dtype: str
    device: str = "cpu"
    mode: str = "eager"

    @property
    def id(self) -> str:
        return f"{self.api.id}|{self.case.id}|{self.dtype}|{self.device}|{self.mode}"

    def call(self) -> Call:
        return Call(_kept(self, "problem", self._problem), self.dtype, self.device, self.mode)

    def _problem(self):
        return self.case.problem(self.dtype, self.api.targets, self.api.mean_over)


@dataclass(frozen=True)
class Checked:
    record: dict
    expected: tuple[str, str]
    deviation: Effect | None
    repro: str
    also: tuple[tuple[str, str], ...] = ()  # other outcome pairs the cause allows

    @property
    def observed(self) -> tuple[str, str]:
        return self.record["loss"]["outcome"], self.record["grad"]["outcome"]

    @property
    def as_promised(self) -> bool:
        return self.observed == self.expected or self.observed in self.also


def cells(apis: list[LossApi], cases, dtypes, devices=("cpu",), modes=("eager",)) -> list[Cell]:
    """Every applicable cell: the case runs in the dtype, feeds the API's targets, uses only options it offers, is of
    an area the API runs, in a mode the API implements, and is not too slow for the API on its device (see
    `too_slow_cells`). Accumulation cases run where the API can apply the recipe
    (summing needs a reduction, or the mean's count taken from the caller), eager
    (the recipe is how the API is used; compiling each micro-batch shape would add only compile time)."""
    return [cell for cell in _applicable(apis, cases, dtypes, devices, modes) if not _too_slow(cell)]


def too_slow_cells(apis: list[LossApi], cases, dtypes, devices=("cpu",), modes=("eager",)) -> list[Cell]:
    """The applicable cells `cells` leaves out: rows of more classes than the API takes in seconds on the device
    (`LossApi.slow_above`); the run lists them as not run."""
    return [cell for cell in _applicable(apis, cases, dtypes, devices, modes) if _too_slow(cell)]


def _too_slow(cell: Cell) -> bool:
    return cell.api.slow_above is not None and cell.api.too_slow(cell.case.logits.shape[-1], cell.device)


def _applicable(apis: list[LossApi], cases, dtypes, devices, modes):
    return (
        Cell(api, case, dtype, device, mode)
        for api in apis for case in cases for dtype in dtypes for device in devices for mode in modes
        if case.has_targets(api.targets) and api.applies_to(case.options)
        and (api.areas is None or case.area in api.areas) and mode in api.modes
        and (case.accumulation is None or (accumulation.can_run(api, case.accumulation) and mode == "eager"))
        and (mode != "forward" or runs_forward(case)) and case.runs_in(dtype)  # last: it looks at every value
    )


def runs_forward(case) -> bool:
    """Forward mode (one tangent per logit) runs the valid cases of at most `FORWARD_MAX_ELEMENTS` logits."""
    return case.invalid is None and case.accumulation is None and case.logits.size <= FORWARD_MAX_ELEMENTS


def check(cell: Cell, deviations: list[Effect], isolation: Setup | None = None,
          standing: Callable[[dict], None] | None = None, explain: Explain | None = None,
          isolate_valid: bool = False) -> Checked:
    """Run `cell` through its API and the reference; the record, what was expected, and a reproducer.

    A case of invalid input runs in a child process when `isolation` says how to set one up. Before the API runs,
    `standing` (when given) receives the record that stands if this process dies during the call: the cell as
    `crashed`, so a killed worker loses no cell it was running. `explain`, when given, is asked for the entry that
    explains a deviation no entry promised (a user's callable, which no cause names: see `own.resemblance`).
    `isolate_valid`: valid input runs in the child too (a user's kernel may crash on any input; an accumulation
    recipe, several calls, runs here).
    """
    api = cell.api
    call = cell.call()
    later = is_big(call.problem.logits)  # a big batch's reference comes after the call, the framework's memory freed
    reference = None if cell.case.invalid or later else _truth(cell, call)
    promise = _promise(cell, call, deviations, lambda: reference if reference is not None or cell.case.invalid
                       else Truth(call.problem, solve(call.problem), cell.dtype))
    refused = refusal(api, cell.case, cell.dtype)
    if refused:
        return _not_run(cell, call, promise, refused)
    if standing is not None:
        standing(_record(cell, call, reference, promise, Crashed(DIED, 0.0)).record)
    isolated = isolation is not None and (cell.case.invalid is not None
                                          or (isolate_valid and cell.case.accumulation is None))
    captured = (capture_isolated(api, call, isolation) if isolated
                else accumulation.run(api, call, cell.case.accumulation))
    if isinstance(captured, AdapterFailed):
        raise AdapterError(f"the adapter of {api.id}, not the framework, raised {captured.type} on case "
                           f"{cell.case.id} ({cell.dtype}, {cell.mode}):\n{captured.traceback}")
    if later and not cell.case.invalid:
        reference = Truth(call.problem, solve(call.problem), cell.dtype)
    if explain is not None:
        promise = _explained(cell, call, reference, promise, captured, explain)
    return _record(cell, call, reference, promise, captured)


# (cell, call, observed loss/grad outcomes, the input conditions, the reference, what the API returned or raised)
# -> the entry explaining it, or None
Explain = Callable[["Cell", Call, tuple[str, str], Callable[[], frozenset[str]], Callable[[], object], object],
                   Effect | None]


def _explained(cell: Cell, call: Call, reference, promise: _Promise, captured, explain: Explain) -> _Promise:
    """`promise`, or where the cell deviates from it and `explain` names an entry giving what it gave, that entry's."""
    loss, grad, _ = _verdicts(captured, reference, call.problem, cell.dtype, cell.api.no_gradient is None)
    observed = (str(loss.outcome), str(grad.outcome))
    if observed == _good(cell) or promise.expected.allows(observed):
        return promise
    entry = explain(cell, call, observed, cell_conditions(cell, call), lambda: reference, captured)
    if entry is None:
        return promise
    return replace(promise, deviation=entry, expected=entry.on(current_machine(), cell.mode))


KEPT_BYTES = 2**30  # bytes (estimated: `KEPT_COPIES` float64 arrays of the logits' size each) of the problems and references kept
KEPT_COPIES = 4  # the rounded logits, the targets, the reference gradient and its element units


@dataclass
class Truth:
    """The reference side of a cell: the float64 result and the dtype's units of error, each computed once."""

    problem: object
    result: object
    dtype: str

    @cached_property
    def loss_unit(self):
        return loss_unit(self.problem, self.result, self.dtype)

    @cached_property
    def grad_units(self):
        return grad_units(self.problem, self.result, self.dtype)


def _truth(cell: Cell, call: Call) -> Truth:
    """The cell's reference: the same for every API that reads the case in the same dtype, targets and mean, so it is
    computed once and kept (with the problem it was computed on: see `Cell.call`)."""
    return _kept(cell, "truth", lambda: Truth(call.problem, solve(call.problem), cell.dtype))


_KEPT: OrderedDict = OrderedDict()


def _kept(cell: Cell, what: str, compute):
    """`compute()` for what depends only on the cell's case, dtype, targets and mean (not on the API), kept for the
    next API that reads the same; the least recently used go once `KEPT_BYTES` is reached. A big batch is never kept."""
    case = cell.case
    if not isinstance(case, Case) or is_big(case.logits):
        return compute()
    key = (id(case), case.id, what, cell.dtype, cell.api.targets, cell.api.mean_over)
    if key in _KEPT:
        _KEPT.move_to_end(key)
        return _KEPT[key][0]
    value = compute()
    _KEPT[key] = (value, case.logits.size * 8 * KEPT_COPIES, case)  # the case kept alive: its id stays its own
    while len(_KEPT) > 1 and sum(size for _, size, _ in _KEPT.values()) > KEPT_BYTES:
        _KEPT.popitem(last=False)
    return value


def _not_run(cell: Cell, call: Call, promise: _Promise, reason: str) -> Checked:
    """The record of a cell that does not fit the memory budget: `crashed` as promised (no finding: the API was not
    called), error `MemoryBudget` with the numbers."""
    checked = _record(cell, call, None, promise, Crashed(reason, 0.0))
    record = {**checked.record, "error": {"type": "MemoryBudget", "message": reason}, "finding": None, "repro": None,
              "expected": {**checked.record["expected"], "loss": "crashed", "grad": "crashed", "reason": reason}}
    return Checked(record, ("crashed", "crashed"), None, checked.repro)


DIED = "the process running this cell died before the call returned (killed, crashed, or stopped by a timeout)"


@dataclass(frozen=True)
class _Promise:
    """What a cell is expected to give, and how to reproduce it: all known before the API runs."""

    version: str
    deviation: Effect | None
    expected: Expected
    machine: str
    repro: str


def _promise(cell: Cell, call: Call, deviations: list[Effect], truth: Callable[[], Truth | None]) -> _Promise:
    """What `cell` is expected to give; `truth()` its reference (None for invalid input), read only when the entry
    covering it predicts its outcomes from a mechanism."""
    api = cell.api
    version = api.adapter.versions()[api.framework]
    claimed = expectation(deviations, claim_fields(cell), version, cell_conditions(cell, call))
    deviation = predicted_claim(cell, call, claimed, truth)
    machine = current_machine()
    good_outcome = _good(cell)
    expected = deviation.on(machine, cell.mode) if deviation else Expected(*good_outcome, None, None, None)
    return _Promise(version, deviation, expected, machine["machine"], cell_repro(cell, call))


def predicted_claim(cell: Cell, call: Call, claimed: Effect | None, truth: Callable[[], Truth | None]) -> Effect | None:
    """The entry covering `cell`, its outcomes computed when it names a mechanism (once per case, dtype, targets and
    mean, whichever API asks); no promise where they are good (ok/ok) or not computed, or on a cell of an accumulation
    recipe (its mechanism is not the call's)."""
    if claimed is None or claimed.mechanism is None:
        return claimed
    if cell.case.accumulation is not None:
        return None
    found = _kept(cell, ("predicted", claimed.mechanism),
                  lambda: predicted.outcomes(claimed.mechanism, call.problem, truth))
    if found is not None and cell.api.no_gradient is not None:
        found = (found[0], "absent")  # the mechanism's gradient is one this API does not offer
    return None if found is None or found == _good(cell) else claimed.predicted(*found)


def _good(cell: Cell) -> tuple[str, str]:
    """The cell's outcomes when nothing deviates (see `expectations.good`)."""
    return good(cell.case.invalid is not None, cell.api.no_gradient is None)


def cell_repro(cell: Cell, call: Call) -> str:
    """A copy-paste script making the cell's call in the framework's own words."""
    api, steps = cell.api, cell.case.accumulation
    if steps is None:
        return api.adapter.repro(api, call, cell.case.logits_code)
    return accumulation.repro(api, call, steps)


def _record(cell: Cell, call: Call, reference, promise: _Promise, captured) -> Checked:
    api, invalid, promised = cell.api, cell.case.invalid, promise.expected
    loss, grad, error = _verdicts(captured, reference, call.problem, cell.dtype, api.no_gradient is None)
    loss = _with_rows(cell, call, captured, reference, loss)
    relations = _relations(cell, call, captured, reference) if (loss.outcome, grad.outcome) == _good(cell) else None
    expected = (promised.loss, promised.grad)
    observed = (loss.outcome, grad.outcome)
    finding = finding_id(observed, _good(cell), promised, api.framework, api.backend, api.id)
    record = Record(**{
        "framework": api.framework, "framework_version": promise.version, **claim_fields(cell),
        "machine": promise.machine, "options": case_options(cell.case),
        "scale": _scale(cell, call), "invalid": invalid,
        "loss": loss, "grad": grad, "error": error,
        "expected": Expectation(*expected, promised.cause, promised.reason, promised.upstream, promised.kernel_path,
                                list(promised.varies) or None, [list(pair) for pair in promised.also] or None),
        "relations": None if relations is None else tuple(relations),
        "finding": finding, "repro": promise.repro if finding else None,
        "seconds": round(captured.seconds, 6),
    }).to_json()
    return Checked(record, expected, promise.deviation, promise.repro, promised.also)


def _with_rows(cell: Cell, call: Call, captured, truth: Truth | None, loss: LossVerdict) -> LossVerdict:
    """`loss` with its rows' judgement (`run/rows.py`) on an eager cell of valid input whose reduced loss is ok."""
    if (loss.outcome != "ok" or cell.mode != "eager" or truth is None or not isinstance(captured, Returned)
            or cell.case.accumulation):
        return loss
    found = check_rows(cell.api, call, lambda problem, dtype: _kept(cell, "rows", lambda: row_truth(problem, dtype)))
    return loss if found is None else replace(loss, rows=found)


def _relations(cell: Cell, call: Call, captured, truth: Truth | None) -> list[dict] | None:
    """The metamorphic relations of an eager cell of valid input that returned a right value (None otherwise)."""
    if cell.mode != "eager" or truth is None or not isinstance(captured, Returned) or cell.case.accumulation:
        return None
    if not has_relations(call.problem):
        return None
    if np.shape(captured.loss) != np.shape(truth.result.loss):
        return None
    return check_relations(cell.api, call, captured, truth.loss_unit, truth.grad_units.row)


def _verdicts(captured, truth: Truth | None, problem, dtype: str,
              gradient: bool = True) -> tuple[LossVerdict, GradVerdict, Failure | None]:
    """Loss and gradient verdicts of what the API did; `truth` None means the input is invalid; the gradient
    `absent` where the API offers none (`gradient` False) and the call did not crash."""
    reference = None if truth is None else truth.result
    reference_loss = None if reference is None else _scalar(reference.loss)
    if isinstance(captured, (Raised, Crashed, Faulted)):
        outcome = "raised" if isinstance(captured, Raised) else "crashed"
        grad_outcome = "absent" if outcome == "raised" and not gradient else outcome
        return LossVerdict(outcome, None, reference_loss, None), GradVerdict(grad_outcome, None, 0, 0), \
            _error(captured)
    if not gradient:
        loss = (LossVerdict("silent", _scalar(captured.loss), None, None) if reference is None
                else judge_loss(captured.loss, reference.loss, truth.loss_unit, float_type(dtype).largest))
        return loss, GradVerdict("absent"), None if reference is None else shape_mismatch(captured.loss,
                                                                                          reference.loss)
    if reference is None:
        grad = np.asarray(captured.grad, dtype=np.float64)
        loss = LossVerdict("silent", _scalar(captured.loss), None, None)
        return loss, GradVerdict("silent", None, int(np.isnan(grad).sum()), int(np.isinf(grad).sum())), None
    largest = float_type(dtype).largest
    loss = judge_loss(captured.loss, reference.loss, truth.loss_unit, largest)
    units = truth.grad_units
    detail = None if is_big(problem.logits) else units.element  # a big batch: no third N × C float64 array
    grad = judge_grad(captured.grad, reference.grad, units.row, largest, detail)
    return loss, grad, shape_mismatch(captured.loss, reference.loss)


def _error(captured: Raised | Crashed | Faulted) -> Failure:
    """The record's `error`: the exception's type and first line; for a device fault also that it was reported
    asynchronously and whether the process's device context still worked afterwards."""
    if isinstance(captured, Crashed):
        return Failure("crashed", captured.message)
    if isinstance(captured, Faulted):
        return Failure(captured.type, captured.message, device_fault=True, context_usable=captured.context_usable)
    return Failure(captured.type, captured.message)


def claim_fields(cell: Cell) -> dict:
    """What a cause's entry selects a cell by."""
    return {"api": cell.api.id, "case": cell.case.id, "area": cell.case.area, "tier": cell.case.tier,
            "tags": sorted(cell.case.facts), "dtype": cell.dtype, "device": cell.device, "mode": cell.mode,
            "backend": cell.api.backend}


def cell_conditions(cell: Cell, call: Call | None = None):
    """The input conditions of a cell: computed when an entry asks, once per case, dtype and targets, whichever API
    asks (they depend on the rounded logits and the labels only)."""
    problem = (lambda: call.problem) if call is not None else (lambda: cell.call().problem)
    if not isinstance(cell.case, Case):
        return conditions_of(problem, cell.dtype)
    if cell.api.targets == "probs" and cell.case.probs is None:  # one-hot targets hold what their labels hold: the
        # conditions come from the labels (no one-hot N × C built for them)
        problem = (lambda: cell.case.problem(cell.dtype, "labels"))
    key = ("conditions", cell.dtype, cell.api.targets)
    return lambda: cell.case.remembered(key, lambda: holding(problem(), cell.dtype))


def conditions_of(problem: Callable[[], object], dtype: str) -> Callable[[], frozenset[str]]:
    """The input conditions of `problem()` in `dtype`, computed on the first ask and kept."""
    found: list[frozenset[str]] = []

    def conditions() -> frozenset[str]:
        if not found:
            found.append(holding(problem(), dtype))
        return found[0]

    return conditions


def finding_id(observed: tuple[str, str], good_outcome: tuple[str, str], promised: Expected, framework: str,
               backend: str | None, api: str) -> str | None:
    """The finding a cell belongs to: none when its outcome is good; `XC-<cause>` when a cause promised exactly what
    it did (the same id across runs, machines, versions and rewordings); else an unexplained finding of its own,
    `XC-unexplained-<hash>` of the API and the outcome (a user's case, a new release: a deviation no cause knows)."""
    if observed == good_outcome:
        return None
    if promised.cause is not None and promised.allows(observed):
        return f"XC-{promised.cause}"
    text = f"{framework}|{backend}|{api}|{observed[0]}|{observed[1]}"
    return f"XC-unexplained-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def failure_message(checked: Checked) -> str:
    """Why a cell disagrees with its expectation, with the numbers and a copy-paste reproducer."""
    record = checked.record
    observed, expected = checked.observed, checked.expected
    if checked.deviation is not None and observed == stored_good_outcomes(record):
        headline = f"expected deviation is gone ({checked.deviation.reason}); remove or narrow its entry"
    else:
        headline = f"loss/grad outcome {observed[0]}/{observed[1]}, expected {expected[0]}/{expected[1]}"
    return "\n".join([
        f"{record['api']}{' [' + record['backend'] + ']' if record['backend'] else ''} on case {record['case']} ({record['dtype']}, {record['device']}, {record['mode']}): "
        + headline,
        f"  loss: {record['loss']}",
        f"  grad: {record['grad']}",
        f"  error: {record['error']}",
        "  reproduce with:",
        *("    " + line for line in checked.repro.splitlines()),
    ])


def case_options(case: Case) -> dict:
    """The options the case sets away from their defaults (weights as a list), as the record keeps them."""
    options = {name: getattr(case.options, name) for name, default in DEFAULT_OPTIONS.items()
               if getattr(case.options, name) != default}
    return {name: list(value) if isinstance(value, tuple) else value for name, value in options.items()}


def _scale(cell: Cell, call: Call) -> float:
    """The cell's logit scale, once per case and dtype for a big batch (its standing record and its record)."""
    if not (isinstance(cell.case, Case) and is_big(call.problem.logits)):
        return logit_scale(call.problem.logits)
    return cell.case.remembered(("scale", cell.dtype), lambda: logit_scale(call.problem.logits))


def logit_scale(logits: np.ndarray) -> float:
    """The case's logit scale: the largest finite |logit| (0 when none is finite)."""
    return largest_finite_magnitude(logits)


def _scalar(value) -> float | None:
    return float(value) if np.ndim(value) == 0 else None
