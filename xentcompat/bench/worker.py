"""One target in its own process: `python -m xentcompat.bench.worker --target T --list --out FILE` lists its APIs,
versions and devices; `... --api ID --shape NxV --dtypes ... --modes ... --device D --repeats R --out PART` measures
one API at one shape, every dtype and mode, and rewrites PART after each measurement (a process that dies keeps what
it measured). The runner sets the target's environment (the Keras backend) before anything imports Keras.

An API that cannot hold a shape (MemoryError, a framework's allocation error, any error the framework raises) gets a
measurement holding the error's type and first line instead of times; the next dtype or mode still runs.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import sys
from pathlib import Path

from xentcompat import machine
from xentcompat.adapters import base
from xentcompat.bench import floor, steps, timing
from xentcompat.bench.grid import dtype_order, parse_dtypes, parse_shapes
from xentcompat.report.records import write_json_atomic

LIST_KIND = "bench-list"
PART_KIND = "bench-part"


def api_entry(api: base.LossApi) -> dict:
    return {"id": api.id, "framework": api.framework, "backend": api.backend, "expression": api.expression,
            "targets": api.targets, "modes": sorted(api.modes)}


def environment(target: str) -> dict:
    threads = {"cpus": os.cpu_count()}
    if "torch" in sys.modules:
        threads["torch"] = sys.modules["torch"].get_num_threads()
    return {"target": target, "python": sys.version.split()[0], "platform": platform.platform(),
            "frameworks": base.versions(target), "threads": threads, **machine.current()}


def list_target(target: str, devices: list[str], repeats: int, out: Path) -> None:
    """The target's APIs, environment and devices, and the copy bandwidth of each requested non-CPU device."""
    apis = base.apis(target)
    available = base.devices(target)
    bandwidth = {}
    for device in (d for d in devices if d != "cpu" and d in available):
        for api in apis:
            module = steps.STEP_MODULES.get(api.adapter.__name__)
            if module:
                found = steps.importlib.import_module(module).device_bandwidth(device, repeats)
                if found:
                    bandwidth[device] = found
                    break
    write_json_atomic(out, {"kind": LIST_KIND, "target": target, "environment": environment(target),
                            "devices": available, "device_bandwidth": bandwidth,
                            "apis": [api_entry(api) for api in apis]})


def measurement_base(target: str, api: base.LossApi, rows: int, classes: int, dtype: str, device: str,
                     mode: str) -> dict:
    frameworks = base.versions(target)
    return {"target": target, "framework": api.framework, "backend": api.backend,
            "framework_version": frameworks.get(api.framework), "api": api.id, "expression": api.expression,
            "targets": api.targets, "mode": mode, "device": device, "dtype": dtype, "rows": rows, "classes": classes,
            "machine": machine.current()["machine"],
            "bytes_to_move": floor.bytes_to_move(rows, classes, dtype, api.targets)}


def error_entry(error: BaseException, where: str = "") -> dict:
    return {"type": type(error).__name__, "message": where + (base.first_line(error) or repr(error)[:300])}


def measure(captured: steps.Captured, rows: int, classes: int, dtype: str, device: str, mode: str, repeats: int,
            baseline: int) -> dict:
    """Times and peak memory of one dtype × mode, or the error that stopped it."""
    gc.collect()
    module = captured.steps
    module.release(device)
    before = timing.current_rss()
    was_reset = []

    def after_warm_up():
        module.reset_device_peak(device)
        was_reset.append(timing.reset_peak())

    memory = {"baseline_rss_bytes": baseline, "rss_before_bytes": before}
    try:
        step = module.prepare(captured, rows, classes, dtype, device, mode)
    except Exception as error:  # not even the inputs fit: the reason is the measurement
        return {"error": error_entry(error, "making the inputs (before the API ran): "), **memory}
    try:
        measured = timing.time_step(step, repeats, after_warm_up)
    except Exception as error:  # the framework could not run this shape: the reason is the measurement
        return {"error": error_entry(error), **memory}
    peak, method = _peak(module, device, before, bool(was_reset and was_reset[0]))
    del step
    return {**measured.summary(mode == "compiled"), "peak_bytes": peak, "peak_method": method, **memory,
            "error": None}


def _peak(module, device: str, before: int, was_reset: bool) -> tuple[int, str]:
    """The peak above `before`, the RSS after import and after the previous measurement was released (so memory an
    earlier measurement left resident is not counted again); on a GPU, the framework's peak allocation."""
    on_device = module.device_peak_bytes(device)
    if on_device is not None:
        return on_device, f"{device} peak allocation (the framework's counter)"
    peak, method = timing.host_peak_bytes(was_reset)
    return peak - before, f"{method}, above the RSS before the inputs were made"


def measure_api(target: str, api_id: str, shape_text: str, dtypes: list[str], modes: list[str], device: str,
                repeats: int, out: Path) -> None:
    found = [api for api in base.apis(target) if api.id == api_id]
    if not found:
        raise SystemExit(f"target {target} has no API {api_id!r}")
    api, (shape,) = found[0], parse_shapes(shape_text)
    entries = []
    try:
        captured, reason = steps.capture(api), None
    except steps.NoTimingPath as error:
        captured, reason = None, error
    baseline = timing.current_rss()
    for dtype in dtype_order(dtypes):
        for mode in (m for m in ("eager", "compiled") if m in modes and m in api.modes):
            entry = measurement_base(target, api, shape.rows, shape.classes, dtype, device, mode)
            result = ({"error": error_entry(reason)} if captured is None
                      else measure(captured, shape.rows, shape.classes, dtype, device, mode, repeats, baseline))
            entries.append({**entry, **result})
            write_json_atomic(out, {"kind": PART_KIND, "measurements": entries, "done": False})
            _say(entries[-1])
    write_json_atomic(out, {"kind": PART_KIND, "measurements": entries, "done": True})


def _say(entry: dict) -> None:
    where = f"{entry['api']} {entry['mode']} {entry['dtype']} {entry['rows']}x{entry['classes']}"
    if entry.get("error"):
        print(f"{where}: {entry['error']['type']}: {entry['error']['message']}", file=sys.stderr, flush=True)
    else:
        print(f"{where}: median {entry['median_seconds'] * 1e3:.1f} ms, peak {entry['peak_bytes'] / 2**20:.0f} MiB",
              file=sys.stderr, flush=True)


def limit_memory(limit: int | None) -> None:
    """Cap the process's data segment (RLIMIT_DATA), so a shape too large fails with an allocation error in this
    process instead of pushing the machine into its out-of-memory killer."""
    if limit:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xentcompat.bench.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, choices=sorted(base.TARGETS))
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--api")
    parser.add_argument("--shape")
    parser.add_argument("--dtypes", default="float32")
    parser.add_argument("--modes", default="eager,compiled")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--devices", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-limit", type=int, default=0, help="bytes (RLIMIT_DATA); 0: none")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.list:
        list_target(args.target, args.devices.split(","), args.repeats, args.out)
        return 0
    limit_memory(args.memory_limit)
    measure_api(args.target, args.api, args.shape, parse_dtypes(args.dtypes), args.modes.split(","), args.device,
                args.repeats, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
