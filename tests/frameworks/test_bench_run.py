"""`xentcompat bench` on this env's target (`--framework`) at a tiny shape: a measurement per API, dtype and mode,
each with its repeats; every API's timing path is the function its adapter calls; a compiled step runs. These check
the pipeline's structure, not any speed."""

from __future__ import annotations

import pytest

from xentcompat import cli
from xentcompat.adapters import base
from xentcompat.bench import steps, timing
from xentcompat.bench.floor import bytes_to_move
from xentcompat.bench.grid import select_devices
from xentcompat.results.bench import read_bench


def test_a_tiny_bench_measures_every_api(target, tmp_path, capsys):
    argv = ["bench", "--targets", target, "--shapes", "8x16", "--dtypes", "float32,bfloat16", "--modes", "eager",
            "--repeats", "2", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    measurements = 2 * len(base.apis(target))
    assert f"bench {target}: {measurements} measurements by 1 worker process(es)" in capsys.readouterr().err
    document = read_bench(tmp_path / "bench.json")
    measured = {(m["api"], m["dtype"]) for m in document["measurements"]}
    assert measured == {(api.id, dtype) for api in base.apis(target) for dtype in ("float32", "bfloat16")}
    timed = {api.id: steps.step_module(api) is not None for api in base.apis(target)}
    for m in document["measurements"]:
        if not timed[m["api"]]:  # an adapter the bench has no timing path for says so
            assert m["error"]["type"] == "NoTimingPath", m
            continue
        assert m["error"] is None, m
        assert len(m["seconds"]) == 2 and m["min_seconds"] <= m["median_seconds"] <= m["max_seconds"]
        assert m["bytes_to_move"] == bytes_to_move(8, 16, m["dtype"], m["targets"]) and m["peak_bytes"] >= 0
    assert document["bandwidth"][0]["device"] == "cpu" and document["environments"][0]["target"] == target
    assert "## Speed and memory" in (tmp_path / "bench.md").read_text()


FUNCTION_ARGUMENT = {"xentcompat.adapters.torch": "loss_fn", "xentcompat.adapters.jax": "rows",
                     "xentcompat.adapters.tf_nn": "rows", "xentcompat.adapters.keras": "loss_class"}


def test_every_api_is_timed_through_the_function_its_adapter_calls(target):
    for api in base.apis(target):
        if steps.step_module(api) is None:
            with pytest.raises(steps.NoTimingPath, match="no timing path"):
                steps.capture(api)
            continue
        function = steps.capture(api).arguments[FUNCTION_ARGUMENT[api.adapter.__name__]]
        if api.framework == "keras":
            import keras
            assert issubclass(function, keras.losses.Loss), api.id
        else:
            assert function.__module__ == api.adapter.__name__ and callable(function), api.id


def test_a_compiled_step_runs_and_its_compile_is_apart(target):
    api = next((api for api in base.apis(target)
                if "compiled" in api.modes and steps.step_module(api) is not None), None)
    if api is None:  # e.g. transformers: no timing path yet (the report lists its APIs as not timed)
        pytest.skip(f"{target} has no compiled API the bench has a timing path for")
    captured = steps.capture(api)
    step = captured.steps.prepare(captured, 8, 16, "float32", "cpu", "compiled")
    summary = timing.time_step(step, 2).summary(compiled=True)
    assert summary["compile_seconds"] is not None and len(summary["seconds"]) == 2


def test_cuda_is_run_only_where_the_framework_sees_a_gpu(target):
    available = base.devices(target)
    devices, skipped = select_devices("cuda", available)
    assert (devices == ["cuda"]) == ("cuda" in available)
    assert bool(skipped) == ("cuda" not in available)
