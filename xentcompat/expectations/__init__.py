"""Known deviations, as data: one TOML file per framework (`<framework>.toml` beside this module).

Each `[[deviation]]` names an `api`, glob patterns for `cases`, `dtypes`, `devices`, `modes` (and `backends` for
Keras), a `versions` specifier (PEP 440, e.g. ">=2.0"), the `loss` and `grad` outcomes it promises, a one-line
`reason` and, where one exists, an `upstream` link. The first entry that matches a cell gives its expectation;
a cell no entry matches is expected `ok`/`ok`. An entry may promise `ok`/`ok` itself: placed before a broader entry,
it marks the cells that come out right (a compiler that avoids what eager gets wrong) and says why.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from xentcompat.verdict import OUTCOMES

HERE = Path(__file__).parent
REQUIRED = ("api", "loss", "grad", "reason")
MATCH_FIELDS = ("cases", "dtypes", "devices", "modes", "backends")


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
    entries = tomllib.loads(path.read_text()).get("deviation", [])
    return [_deviation(path, index, entry) for index, entry in enumerate(entries)]


def _deviation(path: Path, index: int, entry: dict) -> Deviation:
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
    SpecifierSet(entry.get("versions", ""))
    return Deviation(**{key: tuple(value) if isinstance(value, list) else value for key, value in entry.items()})


def expectation(deviations: list[Deviation], cell: dict, version: str) -> Deviation | None:
    """The first deviation covering `cell`, or None (expected ok/ok)."""
    return next((deviation for deviation in deviations if deviation.matches(cell, version)), None)


def _version_in(version: str, specifiers: str) -> bool:
    if not specifiers:
        return True
    return Version(version.split("+")[0]) in SpecifierSet(specifiers)
