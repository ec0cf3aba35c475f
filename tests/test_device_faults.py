"""Device faults: an asynchronous device error (a CUDA device-side assert) is the framework's outcome, recorded as
the fault it is, never an adapter error; invalid input on an accelerator runs in a child thrown away afterwards."""

from __future__ import annotations

import pytest

from tests import device_fault_adapter
from xentcompat.adapters import base
from xentcompat.reference.cases import by_id
from xentcompat.run.harness import Cell, check
from xentcompat.run.isolation import Setup, close_children

SETUP = Setup((), ("tests.device_fault_adapter",))


@pytest.fixture
def apis():
    found = {api.id: api for api in base.registered(device_fault_adapter.__name__)}
    device_fault_adapter._CONTEXT["dead"] = False
    yield found
    device_fault_adapter._CONTEXT["dead"] = False
    close_children()


class InductorError(RuntimeError):
    """As torch.compile wraps a device error met while running its kernels."""


class JaxRuntimeError(RuntimeError):
    pass


@pytest.mark.parametrize("error, fault", [
    (device_fault_adapter.AcceleratorError("CUDA error: device-side assert triggered"), True),
    (InductorError("AcceleratorError: CUDA error: device-side assert triggered"), True),
    (JaxRuntimeError("INTERNAL: CUDA error: an illegal memory access was encountered"), True),
    (RuntimeError("CUDA error: out of memory"), True),
    (RuntimeError("expected target dtype to be Long or Byte, but got Int"), False),
    (IndexError("Target 5 is out of bounds."), False),
    (ValueError("CUDA error in the text of a ValueError"), False),
])
def test_a_device_fault_is_told_apart_by_its_type_or_its_cuda_error(error, fault):
    assert base.is_device_fault(error) is fault


def test_a_fault_surfacing_in_the_adapters_frame_is_the_frameworks_not_an_adapter_error(apis):
    call = Cell(apis["fake.device_assert"], by_id("label-equals-C"), "float32", "cuda").call()
    captured = base.capture(apis["fake.device_assert"], call)
    assert isinstance(captured, base.Faulted)
    assert (captured.type, captured.message) == ("AcceleratorError", "CUDA error: device-side assert triggered")
    assert captured.context_usable is False  # a trivial device call failed afterwards


def test_the_record_says_the_device_faulted_asynchronously_and_the_context_died(apis):
    record = check(Cell(apis["fake.device_assert"], by_id("label-huge"), "float32", "cuda"), [], SETUP).record
    assert (record["loss"]["outcome"], record["grad"]["outcome"]) == ("crashed", "crashed")
    assert record["error"] == {"type": "AcceleratorError", "message": "CUDA error: device-side assert triggered",
                               "device_fault": True, "context_usable": False}
    assert record["finding"].startswith("XC-unexplained-")  # no cause here: a deviation from `raised`


def test_on_the_cpu_the_same_label_raises_where_it_is_read(apis):
    record = check(Cell(apis["fake.device_assert"], by_id("label-huge"), "float32", "cpu"), [], SETUP).record
    assert (record["loss"]["outcome"], record["error"]["type"], record["finding"]) == ("raised", "IndexError", None)


def test_no_cell_inherits_a_dead_context_each_accelerator_cell_gets_a_fresh_child(apis):
    first = check(Cell(apis["fake.device_assert"], by_id("label-equals-C"), "float32", "cuda"), [], SETUP).record
    after = check(Cell(apis["fake.device_assert"], by_id("labels-too-many"), "float32", "cuda"), [], SETUP).record
    assert first["loss"]["outcome"] == "crashed"
    assert after["loss"]["outcome"] == "raised"  # its own child: the shape error, not the dead context
    pids = [check(Cell(apis["fake.device_pid"], by_id("label-minus-1"), "float32", "cuda"), [], SETUP).record
            ["loss"]["value"] for _ in range(2)]
    assert pids[0] != pids[1]


def test_on_the_cpu_invalid_cells_share_one_child(apis):
    pids = [check(Cell(apis["fake.device_pid"], by_id("label-minus-1"), "float32", "cpu"), [], SETUP).record
            ["loss"]["value"] for _ in range(2)]
    assert pids[0] == pids[1]
