"""One target's worker process: `python -m xentcompat.bench.worker --target T --reply-fd FD [--list FILE ...]`
lists the target's APIs, versions and devices into FILE (with `--list`), then takes measurement requests, one JSON
line each on its stdin ({"api", "shape", "device", "dtype", "mode", "out"}), one after the other: each measurement
is written to its own part file `out` before the worker answers a line on the pipe FD (it says "ready" first), so a
process that dies loses only the measurement it was on. It ends when its stdin closes. The runner sets the target's
environment (the Keras backend) before anything imports Keras.

An API that cannot hold a shape (MemoryError, a framework's allocation error, any error the framework raises) gets a
measurement holding the error's type and first line instead of times; the next request still runs.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import platform
import resource
import sys
from pathlib import Path
from typing import Callable, TextIO

from xentcompat import machine
from xentcompat.adapters import base
from xentcompat.bench import floor, steps, timing
from xentcompat.bench.grid import parse_shapes
from xentcompat.results.documents import write_json_atomic

LIST_KIND = "bench-list"
PART_KIND = "bench-part"
READY = "ready"
DONE = "done"


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
            module = steps.step_module(api)
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
    module = captured.steps
    module.release(device)
    gc.collect()
    return_freed_memory()
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


def _peak(module, device: str, before: int, was_reset: bool) -> tuple[int | None, str]:
    """The peak above `before`, the RSS after the previous measurement was released (so memory an earlier
    measurement left resident is not counted again); on a GPU, the framework's peak allocation."""
    if device != "cpu":
        on_device = module.device_peak_bytes(device)
        if on_device is None:
            return None, (f"unknown: the {device} peak counter cannot be reset and was not above what an earlier "
                          "measurement in this worker reached")
        return on_device, f"{device} peak allocation (the framework's counter)"
    peak, method = timing.host_peak_bytes(was_reset)
    return peak - before, f"{method}, above the RSS before the inputs were made"


def return_freed_memory() -> None:
    """Hand the heap's free pages back to the kernel (glibc's malloc_trim), so what an earlier measurement freed
    is not resident before the next one; nothing where the C library has no such call."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


class Session:
    """A target's APIs measured in one process, one request after another: each API's timing path found once, and
    before a step module's first measurement in a mode one step of that mode at 2 × 3, not timed, so the memory
    the process keeps for good (imports, the compiler) is in the baseline and no compile time holds the compiler's
    own start."""

    def __init__(self, target: str, repeats: int):
        self.target, self.repeats = target, repeats
        self.apis = {api.id: api for api in base.apis(target)}
        self.paths: dict[str, steps.Captured | steps.NoTimingPath] = {}
        self.settled: set[tuple[str, str]] = set()
        self.baseline = timing.current_rss()

    @contextlib.contextmanager
    def kept_for_good(self):
        """The memory what runs inside leaves resident joins the baseline: it belongs to the process, as the
        import's does, not to the measurement that happens to come first."""
        before = timing.current_rss()
        try:
            yield
        finally:
            gc.collect()
            return_freed_memory()
            self.baseline += max(0, timing.current_rss() - before)

    def timing_path(self, api: base.LossApi) -> steps.Captured | steps.NoTimingPath:
        if api.id not in self.paths:
            with self.kept_for_good():
                try:
                    self.paths[api.id] = steps.capture(api)
                except steps.NoTimingPath as error:
                    self.paths[api.id] = error
        return self.paths[api.id]

    def settle(self, captured: steps.Captured, dtype: str, device: str, mode: str) -> None:
        """One step at 2 × 3 before the step module's first measurement in `mode` (an error here is the
        measurement's own, which follows)."""
        module = captured.steps
        if (module.__name__, mode) in self.settled:
            return
        self.settled.add((module.__name__, mode))
        with self.kept_for_good(), contextlib.suppress(Exception):
            module.release(device)
            module.prepare(captured, *steps.PROBE_SHAPE, dtype, device, mode)()
            module.release(device)

    def measure(self, request: dict) -> dict:
        api, (shape,) = self.apis[request["api"]], parse_shapes(request["shape"])
        dtype, device, mode = request["dtype"], request["device"], request["mode"]
        entry = measurement_base(self.target, api, shape.rows, shape.classes, dtype, device, mode)
        captured = self.timing_path(api)
        if isinstance(captured, steps.NoTimingPath):
            return {**entry, "error": error_entry(captured)}
        self.settle(captured, dtype, device, mode)
        return {**entry, **measure(captured, shape.rows, shape.classes, dtype, device, mode, self.repeats,
                                   self.baseline)}


def serve(measure_one: Callable[[dict], dict], requests: TextIO, replies: TextIO) -> None:
    """Say ready, then take each request line in turn: its measurement written to its part file, then done said."""
    answer(replies, READY)
    for line in iter(requests.readline, ""):
        request = json.loads(line)
        entry = measure_one(request)
        write_json_atomic(Path(request["out"]), {"kind": PART_KIND, "measurements": [entry], "done": True})
        _say(entry)
        answer(replies, DONE)


def answer(replies: TextIO, word: str) -> None:
    replies.write(word + "\n")
    replies.flush()


def _say(entry: dict) -> None:
    where = f"{entry['api']} {entry['mode']} {entry['dtype']} {entry['rows']}x{entry['classes']}"
    if entry.get("error"):
        print(f"{where}: {entry['error']['type']}: {entry['error']['message']}", file=sys.stderr, flush=True)
    elif entry.get("peak_bytes") is None:
        print(f"{where}: median {entry['median_seconds'] * 1e3:.1f} ms", file=sys.stderr, flush=True)
    else:
        print(f"{where}: median {entry['median_seconds'] * 1e3:.1f} ms, peak {entry['peak_bytes'] / 2**20:.0f} MiB",
              file=sys.stderr, flush=True)


def limit_memory(limit: int | None) -> None:
    """Cap the process's data segment (RLIMIT_DATA), so a shape too large fails with an allocation error in this
    process instead of pushing the machine into its out-of-memory killer."""
    if limit:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m xentcompat.bench.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, choices=sorted(base.TARGETS))
    parser.add_argument("--reply-fd", type=int, required=True, help="the pipe the worker answers on")
    parser.add_argument("--list", type=Path, metavar="FILE", help="list the target's APIs and devices into FILE")
    parser.add_argument("--devices", default="cpu", help="with --list: the devices to measure the bandwidth of")
    parser.add_argument("--bandwidth-repeats", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls of each measurement")
    parser.add_argument("--memory-limit", type=int, default=0, help="bytes (RLIMIT_DATA); 0: none")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    if args.list:
        list_target(args.target, args.devices.split(","), args.bandwidth_repeats, args.list)
    limit_memory(args.memory_limit)
    with os.fdopen(args.reply_fd, "w", encoding="utf-8") as replies:
        serve(Session(args.target, args.repeats).measure, sys.stdin, replies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
