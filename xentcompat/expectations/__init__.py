"""Known deviations, as data: one TOML file per framework (`<framework>.toml` beside this module).

Each `[[deviation]]` names an `api`, glob patterns for `cases`, `dtypes`, `devices`, `modes` (and `backends` for
Keras), a `versions` specifier (PEP 440, e.g. ">=2.0"), the `loss` and `grad` outcomes it promises, a one-line
`reason` and, where one exists, an `upstream` link. The first entry that matches a cell gives its expectation;
a cell no entry matches is expected `ok`/`ok`. An entry may promise `ok`/`ok` itself: placed before a broader entry,
it marks the cells that come out right (a compiler that avoids what eager gets wrong) and says why.

Outcomes that depend on the hardware: a file names its kernel paths once, `[kernel_path.<id>]` with a `title`,
`when` (a list of conditions on the machine, any of which selects the path: see `xentcompat.machine.Condition`), the
`modes` it applies in (default all: XLA compiles its own kernels, so oneDNN's are eager-only) and an `upstream` link
saying why; an entry lists, in `[[deviation.kernel]]`, the `path`, `loss`, `grad` and `reason` that
path gives. The entry's own `loss`/`grad` are those of every other machine.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from xentcompat.machine import Condition, condition
from xentcompat.reference.dtypes import DTYPE_NAMES
from xentcompat.verdict import OUTCOMES

HERE = Path(__file__).parent
REQUIRED = ("api", "loss", "grad", "reason")
MATCH_FIELDS = ("cases", "dtypes", "devices", "modes", "backends")
KNOWN = {"dtypes": DTYPE_NAMES, "devices": ("cpu", "cuda"), "modes": ("eager", "compiled"),
         "backends": ("tensorflow", "jax", "torch", "none")}


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
    """What a deviation's cells give on one kernel path."""

    path: KernelPath
    loss: str
    grad: str
    reason: str


@dataclass(frozen=True)
class Expected:
    """The outcomes a cell is expected to give on one machine, why, and the alternatives on other kernel paths."""

    loss: str
    grad: str
    reason: str | None
    upstream: str | None
    kernel_path: str | None = None
    varies: tuple[dict, ...] = ()


@dataclass(frozen=True)
class Deviation:
    api: str
    loss: str
    grad: str
    reason: str
    upstream: str | None = None
    cases: tuple[str, ...] = ("*",)
    dtypes: tuple[str, ...] = ("*",)
    devices: tuple[str, ...] = ("*",)
    modes: tuple[str, ...] = ("*",)
    backends: tuple[str, ...] = ("*",)
    versions: str = ""
    kernel: tuple[KernelOutcome, ...] = ()

    def on(self, machine: dict, mode: str) -> Expected:
        """The outcomes expected on `machine` in `mode`: the first kernel path taken, else the entry's own."""
        kernel = [variant for variant in self.kernel if mode in variant.path.modes]
        taken = next((variant for variant in kernel if variant.path.taken_on(machine, mode)), None)
        varies = tuple({"path": v.path.id, "when": v.path.text(), "loss": v.loss, "grad": v.grad,
                        "reason": v.reason, "upstream": v.path.upstream} for v in kernel)
        if varies:
            varies += ({"path": None, "when": "any other machine", "loss": self.loss, "grad": self.grad,
                        "reason": self.reason, "upstream": self.upstream},)
        if taken is None:
            return Expected(self.loss, self.grad, self.reason, self.upstream, None, varies)
        return Expected(taken.loss, taken.grad, taken.reason, taken.path.upstream or self.upstream, taken.path.id,
                        varies)

    def matches(self, cell: dict, version: str) -> bool:
        """Whether this entry covers `cell` (keys api, case, dtype, device, mode, backend) at `version`."""
        if cell["api"] != self.api or not _version_in(version, self.versions):
            return False
        values = {"cases": cell["case"], "dtypes": cell["dtype"], "devices": cell["device"],
                  "modes": cell["mode"], "backends": cell.get("backend") or "none"}
        return all(any(fnmatch.fnmatchcase(values[name], pattern) for pattern in getattr(self, name))
                   for name in MATCH_FIELDS)


def load(framework: str, path: Path | None = None) -> list[Deviation]:
    """The deviations of `framework`, in file order; ValueError naming the entry and field if malformed."""
    path = path or HERE / f"{framework}.toml"
    if not path.exists():
        return []
    document = tomllib.loads(path.read_text())
    unknown = set(document) - {"deviation", "kernel_path"}
    if unknown:
        raise ValueError(f"{path.name}: unknown table {sorted(unknown)[0]!r}")
    paths = {name: _kernel_path(path, name, entry) for name, entry in document.get("kernel_path", {}).items()}
    entries = document.get("deviation", [])
    return [_deviation(path, index, entry, paths) for index, entry in enumerate(entries)]


def _kernel_path(path: Path, name: str, entry: dict) -> KernelPath:
    where = f"{path.name}: kernel_path {name!r}"
    unknown = set(entry) - {"title", "when", "upstream", "modes"}
    if unknown:
        raise ValueError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    if not isinstance(entry.get("title"), str) or not isinstance(entry.get("when"), list) or not entry["when"]:
        raise ValueError(f"{where}: needs a 'title' and a non-empty list 'when' of conditions")
    modes = tuple(entry.get("modes", KernelPath.modes))
    if not modes or not set(modes) <= set(KernelPath.modes):
        raise ValueError(f"{where}: field 'modes' must list modes among {', '.join(KernelPath.modes)}")
    when = tuple(condition(item, f"{where}: when #{index}") for index, item in enumerate(entry["when"]))
    return KernelPath(name, entry["title"], when, entry.get("upstream"), modes)


def _kernel_outcomes(where: str, items, paths: dict[str, KernelPath]) -> tuple[KernelOutcome, ...]:
    variants = []
    for index, item in enumerate(items):
        at = f"{where}: kernel #{index}"
        if not isinstance(item, dict) or set(item) != {"path", "loss", "grad", "reason"}:
            raise ValueError(f"{at}: needs exactly 'path', 'loss', 'grad' and 'reason'")
        if item["path"] not in paths:
            raise ValueError(f"{at}: no kernel_path {item['path']!r} in this file")
        for name in ("loss", "grad"):
            if item[name] not in OUTCOMES:
                raise ValueError(f"{at}: field {name!r}: {item[name]!r} is not an outcome")
        variants.append(KernelOutcome(paths[item["path"]], item["loss"], item["grad"], item["reason"]))
    return tuple(variants)


def _deviation(path: Path, index: int, entry: dict, paths: dict[str, KernelPath]) -> Deviation:
    where = f"{path.name}: deviation #{index}"
    missing = [name for name in REQUIRED if name not in entry]
    if missing:
        raise ValueError(f"{where}: missing field {missing[0]!r}")
    for name in ("loss", "grad"):
        if entry[name] not in OUTCOMES:
            raise ValueError(f"{where}: field {name!r}: {entry[name]!r} is not an outcome")
    unknown = set(entry) - set(Deviation.__dataclass_fields__)
    if unknown:
        raise ValueError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    try:
        SpecifierSet(entry.get("versions", ""))
    except InvalidSpecifier:
        raise ValueError(f"{where}: field 'versions': {entry['versions']!r} is not a version specifier") from None
    _check_patterns(where, entry)
    fields = {key: tuple(value) if isinstance(value, list) else value for key, value in entry.items()}
    fields["kernel"] = _kernel_outcomes(where, entry.get("kernel", []), paths)
    return Deviation(**fields)


@cache
def _known() -> dict[str, tuple[str, ...]]:
    """What a pattern may match: the catalogue's case ids (read once), dtypes, devices, modes, backends."""
    from xentcompat.reference.cases import CATALOGUE

    return {**KNOWN, "cases": tuple(case.id for case in CATALOGUE)}


def _check_patterns(where: str, entry: dict) -> None:
    """Every pattern must match something that exists: a catalogue case, a dtype, a device, a mode, a backend."""
    known = _known()
    for name in MATCH_FIELDS:
        patterns = entry.get(name, ["*"])
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise ValueError(f"{where}: field {name!r} must be a list of patterns")
        for pattern in patterns:
            if not fnmatch.filter(known[name], pattern):
                raise ValueError(f"{where}: field {name!r}: {pattern!r} matches no {name[:-1]} "
                                 f"(known: {', '.join(known[name][:8])}{', ...' if len(known[name]) > 8 else ''})")


def check_apis(deviations: list[Deviation], api_ids: set[str], where: str) -> None:
    """ValueError naming the first deviation whose API is not one of `api_ids` (the target's registered APIs)."""
    for deviation in deviations:
        if deviation.api not in api_ids:
            raise ValueError(f"{where}: a deviation names API {deviation.api!r}, which no adapter registers "
                             f"(reason: {deviation.reason[:60]}...)")


def expectation(deviations: list[Deviation], cell: dict, version: str) -> Deviation | None:
    """The first deviation covering `cell`, or None (expected ok/ok)."""
    return next((deviation for deviation in deviations if deviation.matches(cell, version)), None)


def _version_in(version: str, specifiers: str) -> bool:
    if not specifiers:
        return True
    return Version(version.split("+")[0]) in SpecifierSet(specifiers)
