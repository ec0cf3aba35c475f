"""One writer per output directory: a command that writes into `--out` holds `DIR/.xentcompat.lock` while it runs.

A second command on the same directory refuses in one line naming the holder (its command, pid and start time),
instead of deleting the first one's part files and overwriting its documents. A lock whose process is gone (killed
with SIGKILL, a crashed machine) is stale and taken over. The lock is never written through a symlink.
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
    except OutBusy:
        _remove_if_empty(out, created)
        raise
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        _remove_if_empty(out, created)


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
