"""SIGTERM stops `train` and `bench` the way Ctrl-C does.

Both commands stop on KeyboardInterrupt: the worker process is stopped, what it wrote is kept, the targets after it
are listed as not run, the document is written. A SIGTERM (a job scheduler's, `kill`, a CI time limit) used to kill
the command alone, leaving its worker running and writing nothing; inside `sigterm_as_ctrl_c` it raises
KeyboardInterrupt instead, and `stopped_by` says which signal it was, for the messages and the exit status (128 + it).
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

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
