"""Re-judge stored records with today's causes and API declarations, running nothing: what a user needs when causes
change, and how records measured on another machine (a GPU, another release) are checked where that machine is not.

Each record's cell is rebuilt from the catalogue (its case by id, its API from the target's adapter, which is imported
but not called): the facts of its input (its tags), its input conditions, the cause that covers it at the record's framework version and machine, and so
its `expected` and `finding`. The measured numbers are kept as they are; an outcome that is a judgement of them (`ok`
or `inaccurate`, from the error in units the record holds) is judged again under today's tolerance, so a record
measured under another tolerance reads as a run today would judge it (a relation keeps its `holds`: its allowance
per element is not in the record). Each target is re-judged in a
process of its own (the Keras backend is fixed at import). Two kinds of record are not measurements and leave the
records:

- a cell of an API that the record's release does not have (`since`): listed under not run, with the release;
- a cell of invalid input on an accelerator recorded as a process that died: this harness runs such a cell in a
  child of its own and records what the child says (a device fault, an exit status), so the record can only come
  from a harness that reused a process after a device fault; it is listed under `set_aside` with the reason.

A `raised` record whose error is a device's asynchronous fault (a compiler's wrapper naming "CUDA error: device-side
assert triggered") is re-judged as the fault it is, `crashed`, as this harness records it.

A record whose target is not installed here, or whose case or API is unknown, is kept as recorded and counted.
"""

from __future__ import annotations

import multiprocessing
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from xentcompat import expectations
from xentcompat.adapters import base
from xentcompat.reference.errors import TOLERANCE_UNITS
from xentcompat.reference.judging import solve
from xentcompat.results.record import cell_key_text

DIED_PREFIX = "the process running this cell died before the call returned"
SET_ASIDE_REASON = ("invalid input on an accelerator recorded as a process that died: not a measurement (a harness "
                    "that reused its process after a device fault)")
UNKNOWN_MACHINE = {"cpu": {"flags": []}, "kernel_switches": {}}


@dataclass
class Rejudged:
    records: list[dict] = field(default_factory=list)
    not_run: list[dict] = field(default_factory=list)
    set_aside: list[dict] = field(default_factory=list)
    kept_as_recorded: list[str] = field(default_factory=list)  # why some records were not re-judged


def target_of(record: dict) -> str:
    """The target whose shard writes `record` (its framework and Keras backend)."""
    if record["framework"] == "keras":
        return "tensorflow" if record["backend"] == "tensorflow" else f"keras-{record['backend']}"
    return {"transformers": "huggingface", "optax": "jax"}.get(record["framework"], record["framework"])


def rejudge_document(document: dict, workers: int = 2) -> dict:
    """`document` (results or shard) with every record re-judged; not-run and set-aside entries added, and
    `rejudged` saying how many records each target had and which it kept as recorded."""
    by_target: dict[str, list[dict]] = defaultdict(list)
    for record in document["records"]:
        by_target[target_of(record)].append(record)
    environments = document.get("environments", [])
    jobs = {target: records for target, records in sorted(by_target.items())}
    results = _run_each(jobs, environments, workers)
    records, notes = [], {}
    not_run, set_aside = list(document.get("not_run", [])), list(document.get("set_aside", []))  # kept: said before
    for target, found in results.items():
        records += found.records
        not_run += [entry for entry in found.not_run if entry not in not_run]
        set_aside += [entry for entry in found.set_aside if entry not in set_aside]
        notes[target] = {"records": len(jobs[target]), "kept_as_recorded": found.kept_as_recorded}
    causes = expectations.summaries(records)
    return {**document, "records": records, "not_run": not_run, "set_aside": set_aside, "causes": causes,
            "rejudged": notes}


def _run_each(jobs: dict[str, list[dict]], environments: list[dict], workers: int) -> dict[str, Rejudged]:
    """Each target's records re-judged in a fresh process; a target not installed keeps its records as recorded."""
    results, runnable = {}, {}
    for target, records in jobs.items():
        reason = _unavailable(target)
        if reason:
            results[target] = Rejudged(records=records, kept_as_recorded=[f"{len(records)} records: {reason}"])
        else:
            runnable[target] = records
    if not runnable:
        return results
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max(1, min(workers, len(runnable))), mp_context=context, max_tasks_per_child=1) as pool:
        futures = {target: pool.submit(rejudge_target, target, records, environments)
                   for target, records in runnable.items()}
        results.update({target: future.result() for target, future in futures.items()})
    return results


def _unavailable(target: str) -> str | None:
    if target not in base.TARGETS:
        return f"no target {target!r} in this suite"
    return base.missing_requirement(target)


def rejudge_target(target: str, records: list[dict], environments: list[dict]) -> Rejudged:
    """Re-judge `records` of `target` in this process (which imports the target's adapters)."""
    from xentcompat.reference.cases import CATALOGUE

    apis = {api.id: api for api in base.apis(target)}
    cases = {case.id: case for case in CATALOGUE}
    frameworks = {api.framework for api in apis.values()}
    effects = [effect for framework in sorted(frameworks) for effect in expectations.load(framework)]
    machines = {env["machine"]: env for env in environments if "machine" in env}
    found = Rejudged()
    unknown: defaultdict[str, int] = defaultdict(int)
    for record in records:
        api, case = apis.get(record["api"]), cases.get(record["case"])
        if api is None or case is None:
            unknown["API" if api is None else "case"] += 1
            found.records.append(record)
            continue
        _rejudge_one(record, api, case, effects, machines.get(record["machine"], UNKNOWN_MACHINE), found)
    found.kept_as_recorded += [f"{count} records of an unknown {what}" for what, count in sorted(unknown.items())]
    return found


def _rejudge_one(record: dict, api, case, effects, machine: dict, found: Rejudged) -> None:
    missing = api.missing_in(record["framework_version"])
    if missing and record["loss"]["outcome"] == "crashed":
        entry = {"target": target_of(record), "api": api.id,
                 "release": f"{api.framework} {record['framework_version']}", "reason": missing}
        if entry not in found.not_run:
            found.not_run.append(entry)
        return
    if _is_stale_death(record):
        found.set_aside.append({"cell": cell_key_text(record), "reason": SET_ASIDE_REASON})
        return
    found.records.append(judged(under_todays_tolerance(as_device_fault(record)), api, case, effects, machine))


def under_todays_tolerance(record: dict) -> dict:
    """`record` with its loss and gradient outcomes judged again from their errors in units where the outcome is a
    judgement of a finite error (`ok` or `inaccurate`): the error the record holds is the largest of its elements
    (its worst row for per-row losses), so it is `inaccurate` exactly when that error is over `TOLERANCE_UNITS`. A
    reduced loss's rows (`loss.rows`) are judged again the same way."""
    loss = _judged_again(record["loss"], "error_units")
    if loss.get("rows"):
        loss = {**loss, "rows": _judged_again(loss["rows"], "error_units")}
    grad = _judged_again(record["grad"], "max_error_units") if record.get("grad") else record.get("grad")
    return record if (loss, grad) == (record["loss"], record.get("grad")) else {**record, "loss": loss, "grad": grad}


def _judged_again(verdict: dict, field: str) -> dict:
    units = verdict.get(field)
    if verdict.get("outcome") not in ("ok", "inaccurate") or units is None:
        return verdict
    outcome = "inaccurate" if units > TOLERANCE_UNITS else "ok"
    return verdict if outcome == verdict["outcome"] else {**verdict, "outcome": outcome}


def as_device_fault(record: dict) -> dict:
    """A `raised` record whose error is a device's asynchronous fault, recorded as the fault it is (`crashed`, the
    error marked `device_fault`; whether the context survived was not checked then: `context_usable` null)."""
    error = record.get("error") or {}
    if record["loss"]["outcome"] != "raised" or error.get("device_fault") is not None:
        return record
    if not base.reads_as_device_fault(str(error.get("type")), str(error.get("message"))):
        return record
    return {**record, "loss": {**record["loss"], "outcome": "crashed"}, "grad": {**record["grad"], "outcome": "crashed"},
            "error": {**error, "device_fault": True, "context_usable": None}}


def _is_stale_death(record: dict) -> bool:
    error = record.get("error") or {}
    return (record["invalid"] is not None and record["device"] != "cpu" and record["loss"]["outcome"] == "crashed"
            and str(error.get("message", "")).startswith(DIED_PREFIX))


def judged(record: dict, api, case, effects, machine: dict) -> dict:
    """`record` with the facts of its input (tags), and the expectation and finding, that today's catalogue and causes
    give its cell."""
    from xentcompat.run.harness import (Cell, Truth, cell_conditions, cell_repro, claim_fields, finding_id,
                                        predicted_claim)

    cell = Cell(api, case, record["dtype"], record["device"], record["mode"])
    claimed = expectations.expectation(effects, claim_fields(cell), record["framework_version"],
                                       cell_conditions(cell))
    invalid = record["invalid"] is not None
    good_outcome = expectations.good(invalid, api.no_gradient is None)
    deviation = claimed
    if claimed is not None and claimed.mechanism is not None:
        call = cell.call()
        deviation = predicted_claim(cell, call, claimed,
                                    lambda: None if invalid else Truth(call.problem, solve(call.problem), cell.dtype))
    promised = (deviation.on(machine, cell.mode) if deviation
                else expectations.Expected(*good_outcome, None, None, None))
    observed = (record["loss"]["outcome"], record["grad"]["outcome"])
    finding = finding_id(observed, good_outcome, promised, api.framework, api.backend, api.id)
    expected = {"loss": promised.loss, "grad": promised.grad, "cause": promised.cause, "reason": promised.reason,
                "upstream": promised.upstream, "kernel_path": promised.kernel_path,
                "varies": list(promised.varies) or None, **({"also": [list(p) for p in promised.also]} if promised.also else {})}
    repro = record.get("repro") if finding else None
    if finding and repro is None:
        repro = cell_repro(cell, cell.call())
    return {**record, "tags": sorted(case.facts), "expected": expected, "finding": finding, "repro": repro}
