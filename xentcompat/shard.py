"""The pytest side of a shard: settings from the command line, cell parametrization, and the record collector.

xdist-safe: every process appends records to its own part file (`.<results>.parts/<worker>.jsonl`); only the
controlling process merges them into the shard, once every worker is done.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest

from xentcompat import expectations
from xentcompat.adapters import base
from xentcompat.harness import cells, check, failure_message
from xentcompat.isolation import Setup, close_children
from xentcompat.reference.case_file import load_cases
from xentcompat.reference.cases import CATALOGUE, Case, unrunnable_dtypes
from xentcompat.reference.dtypes import DTYPE_NAMES
from xentcompat.report.records import environment, results_document, write_json_atomic


@dataclass
class Settings:
    target: str | None
    devices: tuple[str, ...]
    dtypes: tuple[str, ...]
    modes: tuple[str, ...]
    user_cases: tuple[Case, ...]
    results: Path | None
    only_user_cases: bool = False

    @property
    def cases(self) -> tuple[Case, ...]:
        return self.user_cases if self.only_user_cases else CATALOGUE + self.user_cases

    @cached_property
    def skip_reason(self) -> str | None:
        if self.target is None:
            return "no --framework given: the compatibility matrix needs a target"
        return base.missing_requirement(self.target)

    @cached_property
    def apis(self) -> list[base.LossApi]:
        return base.apis(self.target)

    @cached_property
    def isolation(self) -> Setup:
        """How a child process sets up this target, for the cases that run isolated."""
        target = base.target_named(self.target)
        return Setup(target.environment, target.modules)

    @cached_property
    def deviations(self) -> list[expectations.Deviation]:
        """The expectations of this target's frameworks; ValueError if one names an API no adapter registers."""
        frameworks = dict.fromkeys(api.framework for api in self.apis)
        found = [deviation for framework in frameworks for deviation in expectations.load(framework)]
        expectations.check_apis(found, {api.id for api in self.apis}, f"expectations of {', '.join(frameworks)}")
        return found


SETTINGS = pytest.StashKey[Settings]()
MODES = ("eager", "compiled")


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
    dtypes = tuple(config.getoption("dtype").split(",")) if config.getoption("dtype") else DTYPE_NAMES
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
    return Settings(target, devices, dtypes, modes, user_cases,
                    Path(results) if results else None, only)


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
    """The matrix mark; a compiled cell's group (one worker compiles an API for a dtype once, under
    `--dist loadgroup`, instead of every worker compiling it); a skip for a device this process lacks."""
    marks = [pytest.mark.matrix]
    if cell.mode == "compiled":
        marks.append(pytest.mark.xdist_group(f"compiled|{cell.api.id}|{cell.api.backend}|{cell.dtype}"))
    if cell.device not in available:
        marks.append(pytest.mark.skip(reason=f"no {cell.device} device in this process"))
    return marks


def check_and_record(config, cell) -> None:
    """Check a cell, write its record, then assert the outcomes match the expectation."""
    settings = config.stash[SETTINGS]
    checked = check(cell, settings.deviations, settings.isolation)
    _append_record(config, checked.record)
    if checked.observed != checked.expected:
        pytest.fail(failure_message(checked), pytrace=False)


def _parts_dir(results: Path) -> Path:
    return results.parent / f".{results.name}.parts"


def _worker(config) -> str | None:
    workerinput = getattr(config, "workerinput", None)
    return None if workerinput is None else workerinput["workerid"]


def start_collector(config) -> None:
    settings = config.stash[SETTINGS]
    if settings.results is None or _worker(config) is not None:
        return
    shutil.rmtree(_parts_dir(settings.results), ignore_errors=True)
    _parts_dir(settings.results).mkdir(parents=True)


def _append_record(config, record: dict) -> None:
    results = config.stash[SETTINGS].results
    if results is None:
        return
    part = _parts_dir(results) / f"{_worker(config) or 'main'}.jsonl"
    with part.open("a", encoding="utf-8") as stream:
        stream.write(json.dumps(record) + "\n")


def count_check(report) -> None:
    """Count matrix checks that ran (on the controlling process, xdist reports included)."""
    if report.when == "call" and "matrix" in report.keywords:
        _COUNTER["checks"] += 1


_COUNTER = {"checks": 0}


def finish_collector(session) -> None:
    """Merge the part files into the shard; fail the session if records and checks differ in number."""
    close_children()
    config = session.config
    settings = config.stash[SETTINGS]
    if settings.results is None or _worker(config) is not None:
        return
    parts = _parts_dir(settings.results)
    records = [json.loads(line) for part in sorted(parts.glob("*.jsonl")) for line in part.read_text().splitlines()]
    shutil.rmtree(parts, ignore_errors=True)
    records.sort(key=lambda r: (r["api"], r["case"], r["dtype"], r["device"], r["mode"]))
    write_json_atomic(settings.results, shard_document(settings, records))
    if len(records) != _COUNTER["checks"]:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        config.get_terminal_writer().line(
            f"xentcompat: {len(records)} records written but {_COUNTER['checks']} checks ran", red=True)


def shard_document(settings: Settings, records: list[dict]) -> dict:
    """The shard: records, the environment, and what did not run (missing framework, unrunnable dtypes, a device
    this machine does not have)."""
    not_run = [{"case": case.id, "dtype": dtype, "reason": reason}
               for case in settings.cases for dtype, reason in unrunnable_dtypes(case).items()
               if dtype in settings.dtypes]
    target = {"name": settings.target, "skipped": settings.skip_reason}
    if settings.skip_reason:
        return results_document(records, [], targets=[target], not_run=not_run)
    devices = base.devices(settings.target)
    not_run += [{"target": settings.target, "device": device, "reason": f"no {device} device in this process"}
                for device in settings.devices if device not in devices]
    env = environment(base.versions(settings.target), devices)
    env["target"] = settings.target
    return results_document(records, [env], targets=[target], not_run=not_run)
