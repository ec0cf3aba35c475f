"""The matrix as a pytest plugin: options, the `cell` parametrization, and the record collector.

The matrix tests ship in the package (`xentcompat/matrix/`), so an installed xentcompat runs them without a checkout:
`python -m pytest <xentcompat>/matrix -p xentcompat.run.plugin --framework torch`.

Each test process (xdist worker or the single process) appends one JSON line per checked cell to its own part file;
the controlling process merges the parts into the shard (`--results`) at the end and fails the run if the number of
records differs from the number of checks that ran.
"""

from __future__ import annotations

import os

import pytest

from xentcompat.run import compile_cache, shard, stopping, threads


def pytest_addoption(parser):
    group = parser.getgroup("xentcompat")
    group.addoption("--framework", default=None, help="target to check: " + ", ".join(shard.target_names()))
    group.addoption("--device", default="cpu", choices=("cpu", "cuda", "all"), help="device(s) to run on")
    group.addoption("--dtype", default=None, help="comma-separated dtypes (default: all four)")
    group.addoption("--mode", default="eager", choices=("eager", "compiled", "forward", "all"),
                    help="execution mode: eager, compiled (torch.compile, jax.jit, XLA), forward (forward-mode "
                         "gradients: jax.jacfwd, torch.func.jacfwd) or all")
    group.addoption("--cases", default=None, help="user case file (JSON or NPZ) to run besides the catalogue")
    group.addoption("--only-cases", action="store_true", help="run the --cases file's cases only, not the catalogue")
    group.addoption("--results", default=None, help="write this shard's records to this results.json")
    group.addoption("--cell-timeout", type=float, default=0.0,
                    help="seconds a cell may run before its process is stopped and the cell recorded as crashed "
                         "(default 0: no limit)")


def pytest_configure(config):
    config.addinivalue_line("markers", "matrix: one api x case x dtype x device x mode cell")
    try:
        settings = config.stash[shard.SETTINGS] = shard.settings_from(config)
        if settings.target is not None and compile_cache.runs_jax(settings.target) and not hasattr(config, "workerinput"):
            config.stash[JAX_CACHE] = compile_cache.start()  # the session's (its xdist workers inherit it)
        if settings.target is not None:
            settings.deviations  # loaded and checked against the target's APIs before anything runs
            if not hasattr(config, "workerinput"):  # the workers' cells are the controller's: checked there once
                settings.check_claims()
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None
    shard.start_collector(config)
    if not hasattr(config, "workerinput"):
        stopping.stop_group_with_parent()  # a shard of `run` (only there) goes when `run` goes
        os.environ.update(threads.per_process(_workers(config)))  # the xdist workers, started after this, share the cores


def _workers(config) -> int:
    """The number of pytest-xdist workers this session starts (0 without xdist)."""
    number = getattr(config.option, "numprocesses", None)
    return number if isinstance(number, int) else 0


def pytest_unconfigure(config):
    compile_cache.stop(config.stash.get(JAX_CACHE, None))


JAX_CACHE = pytest.StashKey[object]()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadgroup` without running a crashed cell again (see `scheduling`); other modes as xdist has them."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xentcompat.run.scheduling import LoadGroupOnce

    return LoadGroupOnce(config, log)


def pytest_generate_tests(metafunc):
    if "cell" in metafunc.fixturenames:
        shard.parametrize_cells(metafunc, areas=getattr(metafunc.module, "AREAS"))


def pytest_collection_finish(session):
    shard.note_planned(session)


def pytest_runtest_logreport(report):
    shard.count_check(report)


def pytest_sessionfinish(session, exitstatus):
    shard.finish_collector(session)


@pytest.fixture
def check_cell(request):
    """Run a cell, record it, and assert it matches its expectation."""
    return lambda cell: shard.check_and_record(request.config, cell)
