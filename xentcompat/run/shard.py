"""The pytest side of a shard: settings from the command line, cell parametrization, and the record collector.

xdist-safe: every process appends records to its own part files (`xentcompat.run.parts`); only the controlling process
merges them into the shard, once every worker is done. A cell that runs past `--cell-timeout` stops its process (the
cell is recorded as crashed, saying so); a process that dies mid-cell leaves that cell recorded as crashed too.
"""

from __future__ import annotations

import faulthandler
import os
import shutil
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest

from xentcompat import expectations
from xentcompat.adapters import base
from xentcompat.reference.case_file import load_cases
from xentcompat.reference.cases import CATALOGUE, Case, unrunnable_dtypes
from xentcompat.reference.compact import is_big
from xentcompat.reference.dtypes import DTYPE_NAMES
from xentcompat.results.documents import environment, results_document, write_json_atomic
from xentcompat.run import parts
from xentcompat.run.cell_memory import one_big_cell_at_a_time
from xentcompat.run.harness import cell_conditions, cells, check, claim_fields, failure_message, too_slow_cells
from xentcompat.run.isolation import Setup, close_children


@dataclass
class Settings:
    target: str | None
    devices: tuple[str, ...]
    dtypes: tuple[str, ...]
    modes: tuple[str, ...]
    user_cases: tuple[Case, ...]
    results: Path | None
    only_user_cases: bool = False
    cell_timeout: float = 0.0  # seconds; 0: none

    @property
    def cases(self) -> tuple[Case, ...]:
        return self.user_cases if self.only_user_cases else CATALOGUE + self.user_cases

    @cached_property
    def skip_reason(self) -> str | None:
        if self.target is None:
            return "no --framework given: the compatibility matrix needs a target"
        return base.missing_requirement(self.target)

    @cached_property
    def registered(self) -> list[base.LossApi]:
        return base.apis(self.target)

    @cached_property
    def missing(self) -> list[tuple[base.LossApi, str]]:
        """The registered APIs the installed release lacks, each with the reason."""
        versions = base.versions(self.target)
        found = ((api, api.missing_here(versions[api.framework])) for api in self.registered)
        return [(api, reason) for api, reason in found if reason]

    @cached_property
    def apis(self) -> list[base.LossApi]:
        """The APIs that run: those the installed release has."""
        lacking = {api.id for api, _ in self.missing}
        return [api for api in self.registered if api.id not in lacking]

    @cached_property
    def isolation(self) -> Setup:
        """How a child process sets up this target, for the cases that run isolated."""
        target = base.target_named(self.target)
        return Setup(target.environment, target.modules)

    @cached_property
    def deviations(self) -> list[expectations.Effect]:
        """The causes' entries on this target's frameworks: ValueError if one names an API no adapter registers."""
        frameworks = dict.fromkeys(api.framework for api in self.registered)
        found = [effect for framework in frameworks for effect in expectations.load(framework)]
        expectations.check_apis(found, {api.id for api in self.registered}, f"the causes of {', '.join(frameworks)}")
        return found

    def check_claims(self) -> None:
        """CauseConflict if two entries claim one of the shard's cells with different promises (once per shard, in
        the process that runs or controls it, before any cell runs)."""
        versions = base.versions(self.target)
        matrix = cells(self.apis, self.cases, self.dtypes, self.devices, self.modes)
        expectations.check_claims(self.deviations, ((claim_fields(cell), versions[cell.api.framework],
                                                     cell_conditions(cell)) for cell in matrix))


SETTINGS = pytest.StashKey[Settings]()
MODES = ("eager", "compiled", "forward")


def target_names() -> list[str]:
    return list(base.TARGETS)


def settings_from(config) -> Settings:
    """Settings from pytest options; ValueError (one line) for an unknown target/dtype or a bad case file."""
    target = config.getoption("framework")
    if target is not None:
        base.target_named(target)
        missing = base.missing_requirement(target)
        if missing:  # asked for by name: a framework that is not there is an error, not a skip
            raise ValueError(f"--framework {target}: {missing}; install it (pip install -e '.[{target}]')")
    dtypes = tuple(dict.fromkeys(config.getoption("dtype").split(","))) if config.getoption("dtype") else DTYPE_NAMES
    unknown = [dtype for dtype in dtypes if dtype not in DTYPE_NAMES]
    if unknown:
        raise ValueError(f"unknown dtype {unknown[0]!r}; known: {', '.join(DTYPE_NAMES)}")
    device = config.getoption("device")
    devices = ("cpu", "cuda") if device == "all" else (device,)
    user_cases = tuple(load_cases(config.getoption("cases"))) if config.getoption("cases") else ()
    results = config.getoption("results")
    mode = config.getoption("mode")
    modes = MODES if mode == "all" else (mode,)
    only = config.getoption("only_cases")
    if only and not user_cases:
        raise ValueError("--only-cases needs --cases FILE: there are no user cases to run alone")
    timeout = config.getoption("cell_timeout")
    if timeout < 0:
        raise ValueError(f"--cell-timeout must be 0 (none) or a positive number of seconds, got {timeout}")
    return Settings(target, devices, dtypes, modes, user_cases,
                    Path(results) if results else None, only, timeout)


def parametrize_cells(metafunc, areas: set[str]) -> None:
    """Parametrize `cell` with every applicable cell whose case is in one of `areas`."""
    settings = metafunc.config.stash[SETTINGS]
    if settings.skip_reason:
        metafunc.parametrize("cell", [pytest.param(None, marks=pytest.mark.skip(reason=settings.skip_reason))],
                             ids=["no-target"])
        return
    available = base.devices(settings.target)
    cases = [case for case in settings.cases if case.area in areas]
    matrix = cells(settings.apis, cases, settings.dtypes, settings.devices, settings.modes)
    params = [pytest.param(cell, id=cell.id, marks=_marks(cell, available)) for cell in matrix]
    metafunc.parametrize("cell", params)


def _marks(cell, available: dict[str, str]) -> list:
    """The matrix mark; a big batch's group; a compiled cell's group (one worker compiles an API for a dtype once, under
    `--dist loadgroup`, instead of every worker compiling it); a skip for a device this process lacks."""
    marks = [pytest.mark.matrix]
    if is_big(cell.case.logits):  # one worker runs a big batch's cells, one at a time (`cell_memory`)
        marks.append(pytest.mark.xdist_group(f"big|{cell.case.id}"))
    elif cell.mode == "compiled":
        marks.append(pytest.mark.xdist_group(f"compiled|{cell.api.id}|{cell.api.backend}|{cell.dtype}"))
    if cell.device not in available:
        marks.append(pytest.mark.skip(reason=f"no {cell.device} device in this process"))
    return marks


def check_and_record(config, cell) -> None:
    """Check a cell, write its record, then assert the outcomes match the expectation."""
    settings = config.stash[SETTINGS]
    standing: dict = {}

    def stand(record: dict) -> None:
        standing["record"] = record
        _append(config, parts.STANDING, record)

    lock_dir = None if settings.results is None else settings.results.parent  # the run's shards directory
    with one_big_cell_at_a_time(cell.case, lock_dir), _timeout(config, settings.cell_timeout, standing):
        try:
            checked = check(cell, settings.deviations, settings.isolation, stand)
        except Exception:  # raised here, not a dead process: the standing record does not stand
            if "record" in standing:
                _append(config, parts.WITHDRAWN, standing["record"])
            raise
    _append(config, parts.RECORDS, checked.record)
    if not checked.as_promised:
        pytest.fail(failure_message(checked), pytrace=False)


class _timeout:
    """Stop this process when a cell runs past `seconds`, recording the cell as crashed by the timeout first (a
    native backstop stops it too if Python itself is stuck)."""

    def __init__(self, config, seconds: float, standing: dict):
        self.config, self.seconds, self.standing = config, seconds, standing
        self.timer = threading.Timer(seconds, self._expire) if seconds else None

    def __enter__(self):
        if self.timer:
            self.timer.daemon = True
            self.timer.start()
            faulthandler.dump_traceback_later(self.seconds + 60, exit=True)

    def __exit__(self, *_):
        if self.timer:
            self.timer.cancel()
            faulthandler.cancel_dump_traceback_later()

    def _expire(self) -> None:
        record = self.standing.get("record")
        message = f"no answer within the cell timeout of {self.seconds:g} s (--cell-timeout); its process was stopped"
        if record is not None:
            _append(self.config, parts.STANDING, {**record, "error": {"type": "crashed", "message": message}})
        print(f"xentcompat: {message}" + (f": {parts.cell_key(record)}" if record else ""), file=sys.stderr,
              flush=True)
        os._exit(70)


def _append(config, suffix: str, record: dict) -> None:
    results = config.stash[SETTINGS].results
    if results is not None:
        parts.append(parts.parts_dir(results) / f"{_worker(config) or 'main'}{suffix}", record)


def _worker(config) -> str | None:
    workerinput = getattr(config, "workerinput", None)
    return None if workerinput is None else workerinput["workerid"]


def start_collector(config) -> None:
    settings = config.stash[SETTINGS]
    if settings.results is None or _worker(config) is not None:
        return
    shutil.rmtree(parts.parts_dir(settings.results), ignore_errors=True)
    parts.parts_dir(settings.results).mkdir(parents=True)


def note_planned(session) -> None:
    """How many cells this shard collected (each process collects all of them), for a shard that stops early."""
    results = session.config.stash[SETTINGS].results
    if results is None:
        return
    planned = [item for item in session.items
               if item.get_closest_marker("matrix") and not item.get_closest_marker("skip")]
    parts.write_planned(parts.parts_dir(results), len(planned))


def count_check(report) -> None:
    """Count matrix checks that ran (on the controlling process, xdist reports included), and keep the last line of
    each failed one's error (a deviation's message, or what raised before the cell's record was written)."""
    if report.when == "call" and "matrix" in report.keywords:
        _COUNTER["checks"] += 1
        if report.failed:
            _FAILED.append((report.nodeid, _last_error_line(report.longreprtext)))


_COUNTER = {"checks": 0}
_FAILED: list[tuple[str, str]] = []  # (test id, its error's last line) of the failed checks


def _last_error_line(text: str) -> str:
    errors = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    return (errors[-1] if errors else (text.strip().splitlines() or [""])[-1])[:300]


def first_unrecorded_error(measured: list[dict]) -> str | None:
    """The error of the first failed check whose cell has no record: what raised before the record was written."""
    recorded = {"|".join(str(part) for part in parts.cell_key(record)) for record in measured}
    return next((line for nodeid, line in _FAILED
                 if not any(f"[{cell}" in nodeid for cell in recorded)), None)


def finish_collector(session) -> None:
    """Merge the part files into the shard; fail the session if a cell was lost with its process or records and
    checks differ in number."""
    close_children()
    config = session.config
    settings = config.stash[SETTINGS]
    if settings.results is None or _worker(config) is not None:
        return
    found = parts.read(parts.parts_dir(settings.results))
    shutil.rmtree(parts.parts_dir(settings.results), ignore_errors=True)
    unrecorded = len(found.measured) != _COUNTER["checks"]
    first_error = first_unrecorded_error(found.measured) if unrecorded else None
    write_json_atomic(settings.results, shard_document(settings, found.records, parts.unfinished(found, settings.target),
                                                      first_error))
    problems = [f"{len(found.lost)} cells lost with their process, recorded as crashed"] if found.lost else []
    if unrecorded:  # a check raised before its record (an adapter's own error): the shard did not do its job
        problems.append(f"{len(found.measured)} records written but {_COUNTER['checks']} checks ran"
                        + (f"; the first error: {first_error}" if first_error else ""))
    if problems:
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR if unrecorded else pytest.ExitCode.TESTS_FAILED
        config.get_terminal_writer().line(f"xentcompat: {'; '.join(problems)}", red=True)


def shard_document(settings: Settings, records: list[dict], not_run: list[dict] = (),
                   first_error: str | None = None) -> dict:
    """The shard: records, the environment, and what did not run (missing framework, unrunnable dtypes, a device
    this machine does not have); `first_error`, what raised before a cell's record was written, if anything did."""
    not_run = [*not_run] + [{"case": case.id, "dtype": dtype, "reason": reason}
               for case in settings.cases for dtype, reason in unrunnable_dtypes(case).items()
               if dtype in settings.dtypes]
    target = {"name": settings.target, "skipped": settings.skip_reason,
              **({"first_error": first_error} if first_error else {})}
    if settings.skip_reason:
        return results_document(records, [], targets=[target], not_run=not_run)
    causes = expectations.summaries(records)
    devices = base.devices(settings.target)
    not_run += [{"target": settings.target, "device": device, "reason": f"no {device} device in this process"}
                for device in settings.devices if device not in devices]
    versions = base.versions(settings.target)
    not_run += [{"target": settings.target, "api": api.id, "release": f"{api.framework} {versions[api.framework]}",
                 "reason": reason} for api, reason in settings.missing]
    slow = Counter(cell.api for cell in too_slow_cells(settings.apis, settings.cases, settings.dtypes,
                                                      settings.devices, settings.modes))
    not_run += [{"target": settings.target, "reason": api.too_slow_reason(count)} for api, count in slow.items()]
    env = environment(versions, devices)
    env["target"] = settings.target
    return results_document(records, [env], targets=[target], not_run=not_run, causes=causes)
