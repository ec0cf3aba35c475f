"""Run a loss API in a child process, so a call that kills its process (a native abort, a segfault, a device-side
assert) becomes a `Crashed` result and every other record of the run survives.

One child per test process, started with "spawn" (no forked framework threads), loads the target's adapter modules
once and serves calls; after a crash the next call starts a fresh child, and so does every call on an accelerator.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from dataclasses import dataclass

from xentcompat.adapters import base

START_SECONDS = 300.0


@dataclass(frozen=True)
class Crashed:
    message: str
    seconds: float


@dataclass(frozen=True)
class Setup:
    """What the child needs to find the API again: the environment to set and the adapter modules to import."""

    environment: tuple[tuple[str, str], ...]
    modules: tuple[str, ...]


class Child:
    def __init__(self, setup: Setup):
        context = multiprocessing.get_context("spawn")
        self.connection, child_end = context.Pipe()
        self.process = context.Process(target=_serve, args=(setup, child_end), daemon=True)
        self.process.start()
        child_end.close()

    def run(self, api: base.LossApi, call: base.Call):
        start = time.perf_counter()
        try:
            self.connection.send((api.run.__module__, api.id, call))
            if not self.connection.poll(START_SECONDS):
                self.close()
                return Crashed(f"no answer within {START_SECONDS:.0f} s (hung); the child was killed",
                               time.perf_counter() - start)
            return self.connection.recv()
        except (EOFError, OSError, BrokenPipeError):
            self.process.join(10)
            return Crashed(describe_exit(self.process.exitcode), time.perf_counter() - start)

    def alive(self) -> bool:
        return self.process.is_alive()

    def close(self) -> None:
        self.connection.close()
        self.process.kill()
        self.process.join(10)


_CHILDREN: dict[Setup, Child] = {}


def capture_isolated(api: base.LossApi, call: base.Call, setup: Setup):
    """`base.capture(api, call)` in the child for `setup`: Returned, Raised, Faulted, or Crashed if the child died.

    A call on an accelerator gets a child of its own, thrown away afterwards: a device fault (a CUDA device-side
    assert) leaves the process's device context unusable, and no later cell may inherit it."""
    child = _CHILDREN.get(setup)
    if child is None or not child.alive():
        child = _CHILDREN[setup] = Child(setup)
    result = child.run(api, call)
    if call.device != "cpu":
        child.close()
        del _CHILDREN[setup]
    return result


def close_children() -> None:
    for child in _CHILDREN.values():
        child.close()
    _CHILDREN.clear()


def describe_exit(code: int | None) -> str:
    """A child's exit status in words: 'killed by signal SIGABRT (-6)', 'exited with status 3'."""
    if code is None:
        return "the child process did not exit"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name} ({code})"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _serve(setup: Setup, connection) -> None:
    """Child: set the environment, import the adapters, then answer (module, api id, call) with a capture."""
    import importlib
    import os

    os.environ.update(dict(setup.environment))
    for module in setup.modules:
        importlib.import_module(module)
    apis = {(api.run.__module__, api.id): api for module in setup.modules for api in base.registered(module)}
    while True:
        try:
            module, api_id, call = connection.recv()
        except EOFError:
            return
        connection.send(base.capture(apis[(module, api_id)], call))
