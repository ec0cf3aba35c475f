"""Causes and the cells they cover: the types of the expectation data (see `xentcompat.expectations`)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from xentcompat.machine import Condition

KINDS = ("precision", "rounding", "underflow", "overflow", "clipping", "masking", "validation", "semantics",
         "compiler")
PREDICTED = "predicted"  # the outcomes of an entry with a mechanism, until a cell's input gives them
SELECTOR_FIELDS = ("cases", "areas", "tiers", "tags", "dtypes", "devices", "modes", "backends")


@dataclass(frozen=True)
class Cause:
    """One mechanism: its id never changes (a finding is `XC-<id>`, cited by that id)."""

    id: str
    kind: str
    title: str
    explanation: str
    upstream: tuple[str, ...] = ()
    no_upstream: str | None = None  # what was searched, when no upstream report was found
    merged_into: str | None = None  # the cause that covers its cells now, for a finding cited under this id

    @property
    def finding(self) -> str:
        return f"XC-{self.id}"

    def summary(self) -> dict:
        merged = {"merged_into": self.merged_into} if self.merged_into else {}
        return {"kind": self.kind, "title": self.title, "explanation": self.explanation,
                "upstream": list(self.upstream), "no_upstream": self.no_upstream, **merged}


@dataclass(frozen=True)
class Selector:
    """Glob patterns over a cell's case, its area and tier, the facts of its input (`tags`: some fact matches some
    pattern; "*" also selects an input of no fact), dtype, device, mode and backend ("none" for a framework without
    one)."""

    cases: tuple[str, ...] = ("*",)
    areas: tuple[str, ...] = ("*",)
    tiers: tuple[str, ...] = ("*",)
    tags: tuple[str, ...] = ("*",)
    dtypes: tuple[str, ...] = ("*",)
    devices: tuple[str, ...] = ("*",)
    modes: tuple[str, ...] = ("*",)
    backends: tuple[str, ...] = ("*",)

    def matches(self, cell: dict) -> bool:
        values = {"cases": (cell["case"],), "areas": (cell.get("area", ""),), "tiers": (cell.get("tier", ""),),
                  "tags": tuple(cell.get("tags", ())), "dtypes": (cell["dtype"],), "devices": (cell["device"],),
                  "modes": (cell["mode"],), "backends": (cell.get("backend") or "none",)}
        return all(_any_matches(values[name], getattr(self, name)) for name in SELECTOR_FIELDS)


def _any_matches(values: tuple[str, ...], patterns: tuple[str, ...]) -> bool:
    if patterns == ("*",):
        return True
    return any(fnmatch.fnmatchcase(value, pattern) for value in values for pattern in patterns)


@dataclass(frozen=True)
class KernelPath:
    """Kernels a framework picks on some machines: `when` holds a list of conditions, any of which selects it."""

    id: str
    title: str
    when: tuple[Condition, ...]
    upstream: str | None = None
    modes: tuple[str, ...] = ("eager", "compiled")

    def taken_on(self, machine: dict, mode: str) -> bool:
        return mode in self.modes and any(condition.holds(machine) for condition in self.when)

    def text(self) -> str:
        modes = "" if len(self.modes) > 1 else f", {self.modes[0]} mode"
        return f"{self.title} ({'; or '.join(condition.text() for condition in self.when)}{modes})"


@dataclass(frozen=True)
class KernelOutcome:
    """What an effect's cells give on one kernel path, and the cause of that (by default the effect's)."""

    path: KernelPath
    cause: Cause
    loss: str
    grad: str
    note: str


@dataclass(frozen=True)
class Expected:
    """The outcomes a cell is expected to give on one machine, the cause, why, and other kernel paths' outcomes."""

    loss: str
    grad: str
    cause: str | None
    reason: str | None
    upstream: str | None
    kernel_path: str | None = None
    varies: tuple[dict, ...] = ()
    also: tuple[tuple[str, str], ...] = ()  # other outcome pairs of the same defect, from run to run

    def allows(self, observed: tuple[str, str]) -> bool:
        """Whether `observed` is what this expectation promised (its outcomes, or one of `also`)."""
        return observed == (self.loss, self.grad) or tuple(observed) in self.also


@dataclass(frozen=True)
class Effect:
    """The cells one cause covers with one loss/grad outcome pair: APIs of one framework, a selector, conditions on
    the input (`when`, any of which must hold, none of `unless`; neither: every input), cells taken out
    (`excepts`), versions. With a `mechanism` (see `mechanisms`) the outcomes are `PREDICTED`: each cell's come from
    computing the mechanism on its input (`predicted`)."""

    cause: Cause
    framework: str
    apis: tuple[str, ...]
    loss: str
    grad: str
    where: str  # "file: cause id, cells #i", for messages
    selector: Selector = Selector()
    when: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    excepts: tuple[Selector, ...] = ()
    versions: str = ""
    note: str | None = None
    upstream: str | None = None
    kernel: tuple[KernelOutcome, ...] = ()
    mechanism: str | None = None
    also: tuple[tuple[str, str], ...] = ()  # other outcome pairs the same defect gives from run to run

    @property
    def reason(self) -> str:
        return self.note or self.cause.explanation

    def predicted(self, loss: str, grad: str) -> Effect:
        """This entry with the outcomes its mechanism gives on one cell's input (its reason says so)."""
        computed = f"outcomes computed by the mechanism {self.mechanism!r} on this input"
        note = f"{self.note}; {computed}" if self.note else f"{self.cause.explanation} ({computed})"
        return replace(self, loss=loss, grad=grad, note=note)

    def covers(self, cell: dict, version: str | None, conditions: Callable[[], frozenset[str]]) -> bool:
        """Whether this effect covers `cell` (keys api, case, dtype, device, mode, backend) at `version` (None: any),
        `conditions` giving the input conditions that hold (called only when needed)."""
        if cell["api"] not in self.apis or not _version_in(version, self.versions):
            return False
        if not self.selector.matches(cell) or any(excluded.matches(cell) for excluded in self.excepts):
            return False
        if not self.when and not self.unless:
            return True
        holding = conditions()
        return (not self.when or bool(set(self.when) & holding)) and not set(self.unless) & holding

    def promise(self) -> tuple:
        """What the effect promises, for telling two claims on one cell apart."""
        return (self.cause.id, self.loss, self.grad, self.mechanism, self.also,
                tuple((k.path.id, k.cause.id, k.loss, k.grad) for k in self.kernel))

    def on(self, machine: dict, mode: str) -> Expected:
        """The outcomes expected on `machine` in `mode`: the first kernel path taken, else the effect's own."""
        kernel = [variant for variant in self.kernel if mode in variant.path.modes]
        taken = next((variant for variant in kernel if variant.path.taken_on(machine, mode)), None)
        upstream = self.upstream or next(iter(self.cause.upstream), None)
        varies = tuple({"path": v.path.id, "when": v.path.text(), "cause": v.cause.id, "loss": v.loss,
                        "grad": v.grad, "reason": v.note, "upstream": v.path.upstream} for v in kernel)
        if varies:
            varies += ({"path": None, "when": "any other machine", "cause": self.cause.id, "loss": self.loss,
                        "grad": self.grad, "reason": self.reason, "upstream": upstream},)
        if taken is None:
            return Expected(self.loss, self.grad, self.cause.id, self.reason, upstream, None, varies, self.also)
        return Expected(taken.loss, taken.grad, taken.cause.id, taken.note, taken.path.upstream or upstream,
                        taken.path.id, varies)


@lru_cache(maxsize=4096)  # a run asks for the same few (release, range) pairs on every cell
def _version_in(version: str | None, specifiers: str) -> bool:
    if not specifiers or version is None:
        return True
    return Version(version.split("+")[0]) in SpecifierSet(specifiers)
