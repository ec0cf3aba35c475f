"""One writer per output directory: a command that writes into `--out` holds `DIR/.xentcompat.lock` while it runs.

A second command on the same directory refuses in one line naming the holder (its command, pid and start time),
instead of deleting the first one's part files and overwriting its documents. A lock whose process is gone (killed
with SIGKILL, a crashed machine) is stale and taken over. The lock is never written through a symlink, and a command
refuses an --out where a file or directory it writes is one (`symlink_written_through`): opening it would truncate or
fill whatever it points to, outside --out.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".xentcompat.lock"


def output_directory(text: str) -> Path:
    """`--out` as argparse reads it: a directory path; an empty one would mean the current directory, by accident."""
    if not text.strip():
        raise argparse.ArgumentTypeError("--out needs a directory (got an empty path)")
    return Path(text)


class OutBusy(ValueError):
    """Another xentcompat command is writing into the directory (or its lock is not a plain file)."""


@contextmanager
def holding(out: Path, command: str):
    """Hold the lock of `out` (created if missing) while the block runs; OutBusy when another process holds it."""
    out = Path(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_NAME
    try:
        _take(path, command)
        _refuse_symlinks(out, path)
    except OutBusy:
        _remove_if_empty(out, created)
        raise
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        _remove_if_empty(out, created)


# what the commands write into --out (`run`'s training goes to --out/training, laid out as `train`'s --out)
WRITTEN_FILES = ("results.json", "results.partial.json", "report.md", "report.html", "training.json", "training.md",
                 "training.html", "bench.json", "bench.md", "bench.html")
WRITTEN_DIRECTORIES = ("shards", "repro", "training", "training-parts", "training-plots", "bench-parts")


def symlink_written_through(out: Path) -> Path | None:
    """The first file or directory a command writes into `out` that is a symlink (at the written names, or anywhere
    inside the written directories), or None."""
    for name in WRITTEN_FILES + WRITTEN_DIRECTORIES:
        if (out / name).is_symlink():
            return out / name
    for name in WRITTEN_DIRECTORIES:
        for root, directories, files in os.walk(out / name):  # symlinked directories are listed, not entered
            found = next((Path(root) / entry for entry in directories + files if os.path.islink(Path(root) / entry)),
                         None)
            if found is not None:
                return found
    return None


def _refuse_symlinks(out: Path, lock: Path) -> None:
    found = symlink_written_through(out)
    if found is not None:
        lock.unlink(missing_ok=True)
        raise OutBusy(f"{found} is a symlink inside --out, where xentcompat writes; remove it (nothing is written "
                      "through one) or choose another --out")


def _remove_if_empty(out: Path, created: bool) -> None:
    """A directory made only to hold the lock (the command wrote nothing) is not left behind."""
    if created:
        try:
            out.rmdir()
        except OSError:  # it holds what the command wrote
            pass


def _take(path: Path, command: str) -> None:
    for _ in range(3):  # a stale lock removed, or one released meanwhile: try again
        if path.is_symlink():
            raise OutBusy(f"{path} is a symlink; remove it (xentcompat writes nothing through one)")
        try:
            handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if holder is not None and _alive(holder.get("pid")):
                raise OutBusy(f"{path.parent} is being written by another xentcompat {holder.get('command')} "
                              f"(pid {holder.get('pid')}, since {holder.get('since')}); wait for it to finish or "
                              "choose another --out") from None
            path.unlink(missing_ok=True)  # its process is gone: stale
            continue
        with os.fdopen(handle, "w") as stream:
            json.dump({"pid": os.getpid(), "command": command,
                       "since": datetime.datetime.now().isoformat(timespec="seconds")}, stream)
        return
    raise OutBusy(f"{path} could not be taken (another command keeps creating it)")


def _holder(path: Path) -> dict | None:
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # half-written by a process that died, or unreadable: stale
    return holder if isinstance(holder, dict) else None


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
