"""A pytest plugin (`-p tests.fault_target`) adding the target `fault`: one correct loss API that, on a case whose
first logit is 7.25, does what XC_FAULT says — `kill` (SIGKILL to its own process) or `hang` (sleeps for an hour).
For the fault-injection tests, which run real shards through `xentcompat run`."""

from __future__ import annotations

from tests.fault_adapter import FAULT
from xentcompat.adapters.base import TARGETS

TARGETS[FAULT.name] = FAULT
