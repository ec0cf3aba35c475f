"""Deviations the author of a loss declares expected (`xentcompat check --expect FILE`), each with its reason.

A TOML file of `[[expected]]` tables: a `reason` (required), and a known `cause` id, glob lists of `cases`,
`dtypes`, `modes`, `devices`, or both. A table explains a deviating cell when the cell matches its globs and, with a
cause, when the cell's deviation is that cause's. A table that covers cells which ran but explains none of them is
stale: what it declared is gone, and `check` says so (so a fix, or a change, is noticed).
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from pathlib import Path

from xentcompat import expectations

GLOBS = ("cases", "dtypes", "modes", "devices")
FIELDS = {"cause", "reason", *GLOBS}


class DeclarationError(ValueError):
    """A malformed declarations file: one line naming the file, the table and the field."""


@dataclass(frozen=True)
class Declared:
    reason: str
    cause: str | None = None
    cases: tuple[str, ...] = ("*",)
    dtypes: tuple[str, ...] = ("*",)
    modes: tuple[str, ...] = ("*",)
    devices: tuple[str, ...] = ("*",)

    def covers(self, record: dict) -> bool:
        values = {"cases": record["case"], "dtypes": record["dtype"], "modes": record["mode"],
                  "devices": record["device"]}
        return all(any(fnmatch.fnmatchcase(values[name], pattern) for pattern in getattr(self, name))
                   for name in GLOBS)

    def explains(self, record: dict) -> bool:
        """Whether this declaration covers a deviating record (with a cause: the record's deviation is that cause's)."""
        return self.covers(record) and (self.cause is None or record.get("finding") == f"XC-{self.cause}")

    def text(self) -> str:
        where = ", ".join(f"{name} {' '.join(getattr(self, name))}" for name in GLOBS if getattr(self, name) != ("*",))
        what = self.cause or "any deviation"
        return f"{what}{' on ' + where if where else ''}: {self.reason}"


def read(path: Path) -> tuple[Declared, ...]:
    try:
        document = tomllib.loads(Path(path).read_text())
    except OSError as error:
        raise DeclarationError(f"{path}: cannot read: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise DeclarationError(f"{path}: not TOML: {error}") from None
    unknown = set(document) - {"expected"}
    if unknown:
        raise DeclarationError(f"{path}: unknown table {sorted(unknown)[0]!r} (expected [[expected]] tables)")
    tables = document.get("expected", [])
    if not isinstance(tables, list):
        raise DeclarationError(f"{path}: 'expected' must be an array of tables ([[expected]])")
    return tuple(_declared(f"{path}: [[expected]] #{index + 1}", table) for index, table in enumerate(tables))


def _declared(where: str, table) -> Declared:
    if not isinstance(table, dict):
        raise DeclarationError(f"{where}: expected a table")
    unknown = set(table) - FIELDS
    if unknown:
        raise DeclarationError(f"{where}: unknown field {sorted(unknown)[0]!r} (known: {', '.join(sorted(FIELDS))})")
    reason = table.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise DeclarationError(f"{where}: field 'reason': say why this deviation is expected")
    cause = table.get("cause")
    if cause is not None and cause not in expectations.causes():
        raise DeclarationError(f"{where}: field 'cause': {cause!r} is not a known cause id")
    if cause is None and not any(name in table for name in GLOBS):
        raise DeclarationError(f"{where}: needs a 'cause' or a glob list among {', '.join(GLOBS)}")
    globs = {}
    for name in GLOBS:
        patterns = table.get(name, ["*"])
        if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) for p in patterns):
            raise DeclarationError(f"{where}: field {name!r}: expected a non-empty list of glob patterns")
        globs[name] = tuple(patterns)
    return Declared(reason.strip(), cause, **globs)
