"""The API registry, the targets (one framework, or one Keras backend, per process), and how a call is captured.

An adapter function takes a `Call` (numpy logits already rounded to the dtype, targets, options, dtype, device,
mode), runs the framework's loss forward and backward, and returns (loss, d loss / d logits) as anything
`np.asarray` turns into float64. It converts, it never repairs: whatever the framework raises is captured here,
outside the framework call.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from xentcompat.reference.options import Problem

ALL_OPTIONS = frozenset({"reduction", "weight", "ignore_index", "label_smoothing"})


@dataclass(frozen=True)
class Call:
    problem: Problem
    dtype: str
    device: str = "cpu"
    mode: str = "eager"


@dataclass(frozen=True)
class LossApi:
    """One loss API as users write it. `expression` is the call in the framework's own words (x, y, q)."""

    id: str
    target: str
    targets: str
    expression: str
    run: Callable[[Call], tuple] = field(compare=False)
    supports: frozenset[str] = ALL_OPTIONS
    mean_over: str = "weight"

    def applies_to(self, problem_options) -> bool:
        """Whether every option the case sets (away from its default) is one this API offers."""
        used = {name for name, default in DEFAULT_OPTIONS.items() if getattr(problem_options, name) != default}
        return used <= self.supports


@dataclass(frozen=True)
class Target:
    """A process-wide framework setup: `tox -e <name>` and `--framework <name>` pick one."""

    name: str
    framework: str
    module: str
    requires: tuple[str, ...]
    backend: str | None = None
    environment: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Returned:
    loss: np.ndarray
    grad: np.ndarray
    seconds: float


@dataclass(frozen=True)
class Raised:
    type: str
    message: str
    seconds: float


class FrameworkMissing(RuntimeError):
    """The target's framework is not installed; the message says which package."""


TARGETS: dict[str, Target] = {
    "torch": Target("torch", "torch", "xentcompat.adapters.torch", ("torch",)),
}
DEFAULT_OPTIONS = {"reduction": "mean", "weight": None, "ignore_index": None, "label_smoothing": 0.0}
_REGISTRY: dict[str, list[LossApi]] = {}


def register(target: str, api_id: str, expression: str, targets: str = "labels",
             supports: frozenset[str] = ALL_OPTIONS, mean_over: str = "weight"):
    """Decorator: register an adapter function as the loss API `api_id` of `target`."""

    def decorate(run: Callable[[Call], tuple]) -> Callable[[Call], tuple]:
        api = LossApi(api_id, target, targets, expression, run, supports, mean_over)
        _REGISTRY.setdefault(target, []).append(api)
        return run

    return decorate


def missing_requirement(name: str) -> str | None:
    """Why target `name` cannot run here (its package is not installed), or None."""
    target = target_named(name)
    for package in target.requires:
        if importlib.util.find_spec(package) is None:
            return f"{package} is not installed (target {name})"
    return None


def target_named(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown target {name!r}; known: {', '.join(TARGETS)}") from None


def load(name: str):
    """Import target `name`'s adapter module (registering its APIs) and return it; FrameworkMissing if absent."""
    reason = missing_requirement(name)
    if reason:
        raise FrameworkMissing(reason)
    return importlib.import_module(target_named(name).module)


def apis(name: str) -> list[LossApi]:
    """The registered APIs of target `name` (its module loaded first)."""
    load(name)
    return list(_REGISTRY.get(name, []))


def capture(api: LossApi, call: Call) -> Returned | Raised:
    """Run the API; its result as float64 numpy, or the exception it raised (type and first line)."""
    start = time.perf_counter()
    try:
        loss, grad = api.run(call)
        loss, grad = np.asarray(loss, dtype=np.float64), np.asarray(grad, dtype=np.float64)
    except Exception as error:  # the API's own failure is the measurement
        first_line = (str(error).strip().splitlines() or [""])[0]
        return Raised(type(error).__name__, first_line[:300], time.perf_counter() - start)
    return Returned(loss, grad, time.perf_counter() - start)
