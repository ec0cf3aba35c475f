"""SIGTERM stops `train` and `bench` the way Ctrl-C does; a shard stops with the `run` that started it.

Both commands stop on KeyboardInterrupt: the worker process is stopped, what it wrote is kept, the targets after it
are listed as not run, the document is written. A SIGTERM (a job scheduler's, `kill`, a CI time limit) used to kill
the command alone, leaving its worker running and writing nothing; inside `sigterm_as_ctrl_c` it raises
KeyboardInterrupt instead, and `stopped_by` says which signal it was, for the messages and the exit status (128 + it).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from contextlib import contextmanager

# set by `run` for its shards: the shard (its own process group) goes when `run` goes, even by SIGKILL
STOP_WITH_PARENT = "XENTCOMPAT_STOP_WITH_PARENT"
_PR_SET_PDEATHSIG = 1

_STOPPED_BY = [signal.SIGINT]


@contextmanager
def sigterm_as_ctrl_c():
    """Within: SIGTERM raises KeyboardInterrupt (in the main thread; elsewhere signals cannot be handled)."""
    _STOPPED_BY[0] = signal.SIGINT
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop(signum, _frame) -> None:
    _STOPPED_BY[0] = signal.Signals(signum)
    raise KeyboardInterrupt


def stopped_by() -> signal.Signals:
    """The signal behind the last KeyboardInterrupt: SIGTERM when the handler above raised it, else SIGINT."""
    return _STOPPED_BY[0]


def stop_group_with_parent() -> bool:
    """In a shard started by `run` (STOP_WITH_PARENT set) that leads its own process group, on Linux: when the
    parent dies, however it dies, the kernel sends SIGTERM, and SIGTERM kills the whole group (the pytest-xdist
    workers and the children running invalid input), so nothing outlives the command. Whether it was set up."""
    if not os.environ.get(STOP_WITH_PARENT) or not sys.platform.startswith("linux") or os.getpgrp() != os.getpid():
        return False  # never a group this process does not lead (a user's shell's)
    parent = os.getppid()
    signal.signal(signal.SIGTERM, _kill_group)
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        return False
    if os.getppid() != parent:  # the parent died before the request was made
        _kill_group(signal.SIGTERM, None)
    return True


def _kill_group(_signum, _frame) -> None:
    os.killpg(os.getpgrp(), signal.SIGKILL)
