"""Targets and the registry without a framework: fake adapter modules stand in for real ones."""

from __future__ import annotations

import os
import sys
import types

import pytest

from xentcompat.adapters import base
from xentcompat.cli import shard_plan
from xentcompat.reference.cases import by_id
from xentcompat.run.harness import Cell, check


def fake_adapter(name: str, framework: str, backend: str | None, devices: dict) -> types.ModuleType:
    """A module registering one correct API (the float64 reference itself) under `framework`/`backend`."""
    module = types.ModuleType(name)
    module.versions = lambda: {framework: "1.2.3"}
    module.available_devices = lambda: devices
    module.repro = lambda api, call, logits_code: f"{api.id}(x, y)"

    def run(call):
        from xentcompat.reference.softmax_xent import solve
        result = solve(call.problem)
        return result.loss, result.grad

    run.__module__ = name
    base.register(framework, f"{framework}.loss", "loss(x, y)", backend=backend)(run)
    return module


@pytest.fixture
def two_module_target(monkeypatch):
    """Target `fake`: a Keras-like module (backend 'b1') and a plain one, with a backend variable to set."""
    modules = {"fake_keras": fake_adapter("fake_keras", "kerasish", "b1", {"cpu": "cpu", "cuda": "gpu0"}),
               "fake_plain": fake_adapter("fake_plain", "plain", None, {"cpu": "cpu"})}
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setitem(base.TARGETS, "fake", base.Target("fake", tuple(modules), (), (("XC_FAKE_BACKEND", "b1"),)))
    monkeypatch.delenv("XC_FAKE_BACKEND", raising=False)
    yield "fake"
    for name in modules:
        base._REGISTRY.pop(name, None)


def test_apis_come_from_every_module_of_the_target(two_module_target):
    apis = base.apis(two_module_target)
    assert [(api.id, api.framework, api.backend) for api in apis] == [
        ("kerasish.loss", "kerasish", "b1"), ("plain.loss", "plain", None)]
    assert apis[0].adapter is sys.modules["fake_keras"]


def test_load_sets_the_target_environment(two_module_target):
    base.load(two_module_target)
    assert os.environ["XC_FAKE_BACKEND"] == "b1"


def test_versions_merge_and_devices_are_those_every_module_has(two_module_target):
    assert base.versions(two_module_target) == {"kerasish": "1.2.3", "plain": "1.2.3"}
    assert base.devices(two_module_target) == {"cpu": "cpu"}


def test_records_carry_the_api_framework_and_backend(two_module_target):
    keras_like, plain = base.apis(two_module_target)
    records = [check(Cell(api, by_id("random-moderate"), "float32"), []).record for api in (keras_like, plain)]
    assert [(r["framework"], r["framework_version"], r["backend"]) for r in records] == [
        ("kerasish", "1.2.3", "b1"), ("plain", "1.2.3", None)]
    assert all((r["loss"]["outcome"], r["grad"]["outcome"]) == ("ok", "ok") for r in records)


def test_a_backend_clash_after_keras_import_is_refused(two_module_target, monkeypatch):
    monkeypatch.setenv("XC_FAKE_BACKEND", "other")
    monkeypatch.setitem(sys.modules, "keras", types.ModuleType("keras"))
    with pytest.raises(ValueError, match="needs XC_FAKE_BACKEND=b1.*own process"):
        base.load(two_module_target)


def test_every_keras_target_names_its_backend():
    """A target that loads the Keras adapter fixes its backend; no other target sets one."""
    backends = {name: dict(target.environment).get("KERAS_BACKEND") for name, target in base.TARGETS.items()}
    keras = {name for name, target in base.TARGETS.items() if "xentcompat.adapters.keras" in target.modules}
    assert {name: backends[name] for name in keras} == {"tensorflow": "tensorflow", "keras-jax": "jax",
                                                         "keras-torch": "torch"}
    assert all(backends[name] is None for name in set(base.TARGETS) - keras)
    assert all(dict(base.TARGETS[name].environment)["JAX_ENABLE_X64"] == "1" for name in ("jax", "keras-jax"))


@pytest.mark.parametrize("targets, workers, plan", [(5, 2, (2, 1)), (1, 8, (1, 8)), (2, 8, (2, 4)), (0, 4, (1, 4)),
                                                    (3, 1, (1, 1))])
def test_shard_plan_spreads_processes_over_targets_first(targets, workers, plan):
    assert shard_plan(targets, workers) == plan


def test_unknown_target_is_named():
    with pytest.raises(ValueError, match="unknown target 'mxnet'; known: torch, tensorflow"):
        base.target_named("mxnet")


def test_every_catalogue_area_is_run_by_a_matrix_module():
    from xentcompat.matrix import test_agreement, test_labels, test_linear, test_nonfinite, test_options
    from xentcompat.reference.cases import CATALOGUE

    modules = (test_agreement, test_nonfinite, test_options, test_labels, test_linear)
    covered = set().union(*(module.AREAS for module in modules))
    assert {case.area for case in CATALOGUE} | {"user"} <= covered
    assert sum(len(module.AREAS) for module in modules) == len(covered)  # no cell runs twice


def test_first_line_drops_tensorflows_function_node_prefix():
    error = ValueError("{{function_node __wrapped__Op_device_/job:localhost/device:CPU:0}} Received a label value of 5 "
                       "which is outside the valid range of [0, 5).\nsecond line")
    assert base.first_line(error) == "Received a label value of 5 which is outside the valid range of [0, 5)."
    assert base.first_line(RuntimeError("x" * 400)) == "x" * 300


def test_first_line_shows_the_error_torch_compile_wraps():
    error = RuntimeError("RuntimeError when making fake tensor call\n  Explanation: Dynamo failed to run FX node with "
                         "fake tensors: call_function <function cross_entropy>(*(FakeTensor(...),), **{}): "
                         "got RuntimeError('gather(): Expected dtype int32/int64 for index, but got torch.uint8')\n"
                         "  Hint: ...")
    assert base.first_line(error) == ("RuntimeError when making fake tensor call (RuntimeError: gather(): Expected "
                                      "dtype int32/int64 for index, but got torch.uint8)")


def test_first_line_drops_inductors_generated_file():
    error = RuntimeError("kernel, /tmp/torchinductor_root/5n/c5n3bul.main.cpp:73, "
                         "index out of bounds: 0 <= tmp22 < 5L")
    assert base.first_line(error) == "kernel: index out of bounds: 0 <= tmp22 < 5L"
