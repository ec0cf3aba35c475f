"""The adapter of the `fault` target (see tests/fault_target.py)."""

from __future__ import annotations

import os
import signal
import time

from xentcompat.adapters.base import Target, register
from xentcompat.reference.softmax_xent import solve


FAULT = Target("fault", (__name__,), ())


def versions() -> dict[str, str]:
    return {"fault": "1.0"}


def available_devices() -> dict[str, str]:
    return {"cpu": "cpu"}


def repro(api, call, logits_code) -> str:
    return f"{api.id}(x, y)"


@register("fault", "fault.faulty", "fault.faulty(x, y)")
def faulty(call):
    if call.problem.labels is not None and _is_fault_case(call):
        if os.environ.get("XC_FAULT") == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if os.environ.get("XC_FAULT") == "hang":
            time.sleep(3600)
        if os.environ.get("XC_FAULT") == "adapter-error":
            raise KeyError("a bug in the adapter itself")
    result = solve(call.problem)
    return result.loss, result.grad


def _is_fault_case(call) -> bool:
    """The fault case is marked by its first logit, 7.25 (cells carry the problem, not the case id)."""
    return float(call.problem.logits[0, 0]) == 7.25
