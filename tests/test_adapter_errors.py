"""Whose exception is it: an error raised inside the framework is a measurement (`raised`), one raised by
xentcompat's own code a bug (`AdapterFailed`). A framework's native function, called directly, raises from the
adapter's frame; called through `framework_call`, it reads as the framework's."""

from __future__ import annotations

import math

from xentcompat.adapters import base
from xentcompat.reference.cases import by_id
from xentcompat.run.harness import Cell


def _api(run) -> base.LossApi:
    return base.LossApi("native.loss", "native", "labels", "native.loss(x, y)", run)


def _call():
    return Cell(_api(lambda call: None), by_id("random-moderate"), "float32").call()


def _native_refusal(call):
    return math.sqrt(-1.0)  # a C function raising ValueError: no frame of its own


def _native_refusal_through_framework_call(call):
    return base.framework_call(math.sqrt, -1.0)


def _own_bug(call):
    return {}["missing"]


def test_a_native_error_called_directly_reads_as_the_adapters():
    captured = base.capture(_api(_native_refusal), _call())
    assert isinstance(captured, base.AdapterFailed) and captured.type == "ValueError"


def test_a_native_error_through_framework_call_is_the_frameworks_measurement():
    captured = base.capture(_api(_native_refusal_through_framework_call), _call())
    assert isinstance(captured, base.Raised)
    assert (captured.type, captured.message) == ("ValueError", "math domain error")


def test_framework_call_does_not_excuse_the_adapters_own_bug():
    captured = base.capture(_api(lambda call: base.framework_call(_own_bug, call)), _call())
    assert isinstance(captured, base.AdapterFailed) and captured.type == "KeyError"


def test_framework_call_returns_the_functions_result():
    assert base.framework_call(max, 3, 7, key=None) == 7
