"""A shard's part files: what each test process measured, and what it was measuring when it died.

Each process appends one line per finished cell to `<process>.records.jsonl` and, before each call, the record that
stands if the process dies during it (the cell as `crashed`) to `<process>.standing.jsonl`. A cell with a standing
record and no finished one was lost with its process: its standing record is kept in its place, unless the process
withdrew it (`<process>.withdrawn.jsonl`: the check raised in the process, an adapter's own error, so there is no
record of the framework to keep). Read by the shard's controlling process at the end of a run, and by the command
line when a shard did not finish.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

RECORDS = ".records.jsonl"
STANDING = ".standing.jsonl"
WITHDRAWN = ".withdrawn.jsonl"
PLANNED = "planned.json"


@dataclass(frozen=True)
class Parts:
    measured: list[dict]  # cells whose call returned (or raised)
    lost: list[dict]  # cells whose process died during the call, recorded as crashed
    planned: int | None  # cells collected, when the shard got that far

    @property
    def records(self) -> list[dict]:
        return sorted(self.measured + self.lost, key=cell_key)


def parts_dir(results: Path) -> Path:
    return results.parent / f".{results.name}.parts"


def cell_key(record: dict) -> tuple:
    return record["api"], record["case"], record["dtype"], record["device"], record["mode"]


def append(path: Path, record: dict) -> None:
    """One JSON line, handed to the operating system before returning: a process killed right after loses
    nothing."""
    with path.open("a", encoding="utf-8") as stream:
        stream.write(json.dumps(record) + "\n")


def write_planned(directory: Path, cells: int) -> None:
    (directory / PLANNED).write_text(json.dumps({"cells": cells}))


def read(directory: Path) -> Parts:
    """The records in `directory`'s part files (a missing directory has none)."""
    if not directory.is_dir():
        return Parts([], [], None)
    measured = _lines(directory, RECORDS)
    done = {cell_key(record) for record in measured + _lines(directory, WITHDRAWN)}
    lost = {cell_key(record): record for record in _lines(directory, STANDING) if cell_key(record) not in done}
    planned = directory / PLANNED
    cells = json.loads(planned.read_text())["cells"] if planned.is_file() else None
    return Parts(measured, list(lost.values()), cells)


def _lines(directory: Path, suffix: str) -> list[dict]:
    """Every complete line of the files ending in `suffix` (a line cut short by a kill is not a record)."""
    found = []
    for part in sorted(directory.glob(f"*{suffix}")):
        for line in part.read_text(encoding="utf-8").splitlines():
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return found


def unfinished(found: Parts, target: str | None = None) -> list[dict]:
    """A not-run entry for the collected cells that never ran (the shard stopped before them), if any."""
    missing = (found.planned or 0) - len(found.records)
    if missing <= 0:
        return []
    return [{"target": target, "reason": f"{missing} of {found.planned} collected cells did not run: the shard "
                                          "stopped before them"}]


class RecordCounter:
    """Cells a running shard has finished (the lines of its record part files, read on from where the last count
    stopped) and the cells it planned (None until it has collected them): `counter()` -> (done, planned). Once the
    shard has merged its parts into `shard` (removing them), the count is that document's records."""

    def __init__(self, directory: Path, shard: Path | None = None):
        self.directory, self.shard, self.offsets, self.done, self.planned = directory, shard, {}, 0, None

    def __call__(self) -> tuple[int, int | None]:
        if self.shard is not None and self.shard.is_file() and not self.directory.is_dir():
            return self._merged()
        for part in sorted(self.directory.glob(f"*{RECORDS}")):
            with part.open("rb") as stream:
                stream.seek(self.offsets.get(part, 0))
                appended = stream.read()
            complete = appended.rfind(b"\n") + 1  # a line still being written is counted once it ends
            self.done += appended[:complete].count(b"\n")
            self.offsets[part] = self.offsets.get(part, 0) + complete
        try:
            self.planned = json.loads((self.directory / PLANNED).read_text())["cells"]
        except (OSError, ValueError, KeyError):
            pass
        return self.done, self.planned

    def _merged(self) -> tuple[int, int | None]:
        try:
            records = len(json.loads(self.shard.read_text(encoding="utf-8"))["records"])
        except (OSError, ValueError, KeyError, TypeError):
            return self.done, self.planned
        self.done = max(self.done, records)
        return self.done, self.planned if self.planned is not None else self.done
