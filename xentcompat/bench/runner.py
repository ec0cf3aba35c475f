"""`xentcompat bench`: each target measured by one long-lived worker process per device, one target after the other
(a benchmark wants the machine to itself); their measurements, the machine's bandwidth and the floor in one
bench.json.

The first worker of a target lists its APIs (and measures the bandwidth of the non-CPU devices), then takes the
target's CPU measurements one after the other; each other device gets a worker of its own. A worker writes each
measurement to its own part file before it answers, so one that dies (the out-of-memory killer, a native abort) or
runs past the time limit for one measurement (it is then killed) loses only that measurement, which is recorded with
the reason; a fresh worker takes the rest. Each worker runs with the environment the `run` command gives its target
(the Keras backend is read at import, so targets never share a process). A target whose framework is not installed
is listed as skipped with the reason; a CUDA device no framework sees is skipped with the reason, not an error.
`DIR` gets bench.json, bench.md and bench.html (the report section) and the workers' output in DIR/bench-parts/.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from xentcompat import machine
from xentcompat.adapters.base import TARGETS, missing_requirement
from xentcompat.bench import floor
from xentcompat.bench.grid import Shape, dtype_order, parse_dtypes, parse_shapes, select_devices
from xentcompat.bench.worker import LIST_KIND, PART_KIND
from xentcompat.results.bench import bench_document
from xentcompat.run.isolation import describe_exit
from xentcompat.run.stopping import stopped_by

BENCH_FILE = "bench.json"
PARTS_DIR = "bench-parts"
PACKAGE_PARENT = Path(__file__).resolve().parents[2]
WORKER_COMMAND = ("-m", "xentcompat.bench.worker")
POLL_SECONDS = 0.5  # how often a wait for a worker's answer checks that the worker is still alive
EXIT_SECONDS = 60.0  # how long a worker whose input was closed may take to exit before it is killed


@dataclass(frozen=True)
class Config:
    shapes: tuple[Shape, ...]
    dtypes: tuple[str, ...]
    repeats: int = 3
    device: str = "cpu"
    modes: tuple[str, ...] = ("eager", "compiled")
    memory_limit: int | None = None  # bytes per worker (RLIMIT_DATA)
    worker_timeout: float = 3600.0  # seconds per measurement
    start_timeout: float = 600.0  # seconds for a worker to start (import, list the target)
    bandwidth_repeats: int = 5
    apis: tuple[str, ...] = ()  # only these API ids (default: every API of each target)

    def to_json(self) -> dict:
        return {"shapes": [s.text for s in self.shapes], "dtypes": list(self.dtypes), "modes": list(self.modes),
                "device": self.device, "repeats": self.repeats, "memory_limit_bytes": self.memory_limit,
                "apis": list(self.apis) or None}


@dataclass
class Collected:
    environments: list = field(default_factory=list)
    targets: list = field(default_factory=list)
    measurements: list = field(default_factory=list)
    bandwidth: list = field(default_factory=list)
    interrupted: bool = False  # Ctrl-C (SIGINT) stopped a target: the ones after it are listed as skipped


@dataclass(frozen=True)
class Planned:
    """One measurement: an API at a shape, on a device, in a dtype and a mode."""

    api: dict
    shape: Shape
    device: str
    dtype: str
    mode: str

    def part(self, target: str, parts: Path) -> Path:
        text = f"{self.api['id']} {self.shape.text} {self.device} {self.dtype} {self.mode}"
        return parts / f"{target}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.json"

    def request(self, part: Path) -> dict:
        return {"api": self.api["id"], "shape": self.shape.text, "device": self.device, "dtype": self.dtype,
                "mode": self.mode, "out": str(part.resolve())}

    @property
    def text(self) -> str:
        return f"{self.api['id']} {self.shape.text} {self.device} {self.dtype} {self.mode}"


class Worker:
    """A worker process of one target, with the target's environment, its output appended to `log`, in a process
    group of its own (stopped as one; Ctrl-C at the terminal does not reach it). It answers a line on its own pipe
    once it is ready and after each measurement request it reads from its stdin."""

    def __init__(self, target: str, arguments: list[str], log: Path):
        self.log = log
        reply_end, write_end = os.pipe()
        command = [sys.executable, *WORKER_COMMAND, "--target", target, "--reply-fd", str(write_end), *arguments]
        try:
            with log.open("a") as output:
                self.process = subprocess.Popen(
                    command, env={**os.environ, **dict(TARGETS[target].environment)}, stdin=subprocess.PIPE,
                    stdout=output, stderr=subprocess.STDOUT, cwd=PACKAGE_PARENT, start_new_session=True,
                    pass_fds=(write_end,), text=True)
        except BaseException:
            os.close(reply_end)
            raise
        finally:
            os.close(write_end)
        self.replies, self.pending = reply_end, b""

    def ready(self, timeout: float) -> dict | None:
        """None once the worker says it is ready; else why it is not (an error entry; the worker is gone)."""
        return self._outcome(timeout)

    def measure(self, request: dict, timeout: float) -> dict | None:
        """None once the worker has answered `request`; else why not (an error entry: it died, or it ran past
        `timeout` and was killed)."""
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except OSError:  # it died before it could read the request
            return self._died()
        return self._outcome(timeout)

    def _outcome(self, timeout: float) -> dict | None:
        try:
            answer = self._answer(timeout)
        except KeyboardInterrupt:
            self.stop(signal.SIGTERM)
            raise
        if answer == "answered":
            return None
        if answer == "ended":
            return self._died()
        self.stop(signal.SIGKILL)
        return {"type": "WorkerTimedOut", "message": f"the worker ran past the time limit ({timeout:g} s) and was "
                                                     f"killed (see the log; {self.log})"}

    def _answer(self, timeout: float) -> str:
        """'answered' once a line came, 'ended' if the worker exited or closed its pipe first, else 'timed out'."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timed out"
            if select.select([self.replies], [], [], min(left, POLL_SECONDS))[0]:
                chunk = os.read(self.replies, 4096)
                if not chunk:
                    return "ended"
                self.pending += chunk
            elif self.process.poll() is not None and not select.select([self.replies], [], [], 0)[0]:
                return "ended"
        _, _, self.pending = self.pending.partition(b"\n")
        return "answered"

    def _died(self) -> dict:
        try:
            status = self.process.wait(EXIT_SECONDS)
        except subprocess.TimeoutExpired:  # it closed its pipe but lives on
            self.stop(signal.SIGKILL)
            status = self.process.returncode
        self._close_pipes()
        hint = "out of memory?; " if status == -signal.SIGKILL else ""
        return {"type": "WorkerDied",
                "message": f"the worker {'was ' if status < 0 else ''}{describe_exit(status)} "
                           f"({hint}see the log; {self.log})"}

    def stop(self, how: int) -> None:
        """Signal the worker's process group (its own children too) and wait for the worker."""
        if self.process.returncode is None:  # once it is waited for, its group id may belong to another group
            try:
                os.killpg(self.process.pid, how)
            except ProcessLookupError:
                pass
        self.process.wait()
        self._close_pipes()

    def close(self) -> None:
        """End the worker: its input closed, it exits; killed if it has not within EXIT_SECONDS."""
        self._close_input()
        try:
            self.process.wait(EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.stop(signal.SIGKILL)
        self._close_pipes()

    def _close_pipes(self) -> None:
        self._close_input()
        if self.replies is not None:
            os.close(self.replies)
            self.replies = None

    def _close_input(self) -> None:
        with contextlib.suppress(OSError):  # a worker that died leaves a broken pipe
            self.process.stdin.close()


def _read(path: Path, kind: str) -> dict:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) and document.get("kind") == kind else {}


def lost_measurements(planned: Planned, error: dict, listing: dict) -> list[dict]:
    """The measurement a worker did not write, holding `error` (why: the worker died, timed out, never started)."""
    api, shape, environment = planned.api, planned.shape, listing["environment"]
    return [{"target": listing["target"], "framework": api["framework"], "backend": api["backend"],
             "framework_version": environment["frameworks"].get(api["framework"]), "api": api["id"],
             "expression": api["expression"], "targets": api["targets"], "mode": planned.mode,
             "device": planned.device, "dtype": planned.dtype, "rows": shape.rows, "classes": shape.classes,
             "machine": environment["machine"],
             "bytes_to_move": floor.bytes_to_move(shape.rows, shape.classes, planned.dtype, api["targets"]),
             "error": error}]


def planned(api: dict, config: Config) -> list[tuple[str, str]]:
    """(dtype, mode) of each measurement of `api` at a shape: the narrower dtype first."""
    return [(dtype, mode) for dtype in dtype_order(list(config.dtypes))
            for mode in ("eager", "compiled") if mode in config.modes and mode in api["modes"]]


def plan(listing: dict, device: str, config: Config) -> list[Planned]:
    """Every measurement of the listed target on `device`, API by API, shape by shape."""
    apis = [api for api in listing["apis"] if not config.apis or api["id"] in config.apis]
    return [Planned(api, shape, device, dtype, mode) for api in apis for shape in config.shapes
            for dtype, mode in planned(api, config)]


def listing_arguments(config: Config, listed: Path) -> list[str]:
    return ["--list", str(listed.resolve()), "--devices", config.device.replace("all", "cpu,cuda"),
            "--bandwidth-repeats", str(config.bandwidth_repeats)]


def measuring_arguments(config: Config) -> list[str]:
    return ["--repeats", str(config.repeats), "--memory-limit", str(config.memory_limit or 0)]


@dataclass
class TargetBench:
    """One target's measurements, taken in turn by its current worker; a fresh worker after one is lost."""

    target: str
    config: Config
    parts: Path
    collected: Collected
    listing: dict = field(default_factory=dict)
    worker: Worker | None = None
    workers_started: int = 0

    @property
    def log(self) -> Path:
        return self.parts / f"{self.target}.log"

    def start_worker(self, extra: list[str]) -> dict | None:
        """A fresh worker, ready; None, or why it could not start."""
        self.worker = Worker(self.target, [*extra, *measuring_arguments(self.config)], self.log)
        self.workers_started += 1
        problem = self.worker.ready(self.config.start_timeout)
        if problem:
            self.worker = None
        return problem

    def list_apis(self) -> str | None:
        """Start the first worker, which lists the target; None, or why the listing failed."""
        listed = self.parts / f"{self.target}-list.json"
        listed.unlink(missing_ok=True)
        problem = self.start_worker(listing_arguments(self.config, listed))
        self.listing = _read(listed, LIST_KIND)
        if problem or not self.listing:
            self.close_worker()
            return f"listing its APIs failed ({problem['message'] if problem else f'no listing; see {self.log}'})"
        return None

    def close_worker(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop(signal.SIGTERM)
            self.worker = None

    def take(self, item: Planned) -> None:
        """One measurement by the current worker; if it is lost, the reason in its place (and no current worker)."""
        print(f"xentcompat: bench {self.target} {item.text} ...", file=sys.stderr, flush=True)
        part = item.part(self.target, self.parts)
        part.unlink(missing_ok=True)
        problem = self.worker.measure(item.request(part), self.config.worker_timeout)
        if problem:
            self.worker = None
        found = _read(part, PART_KIND).get("measurements", [])
        if not found and not problem:
            problem = {"type": "WorkerDied", "message": f"the worker answered without writing its measurement "
                                                        f"(see the log; {self.log})"}
        self.collected.measurements += found or lost_measurements(item, problem, self.listing)

    def measure_device(self, device: str) -> str | None:
        """Every measurement on `device`; None, or why the target stopped (a fresh worker could not start)."""
        items = plan(self.listing, device, self.config)
        for index, item in enumerate(items):
            problem = self.start_worker([]) if self.worker is None else None
            if problem:
                for lost in items[index:]:
                    self.collected.measurements += lost_measurements(lost, problem, self.listing)
                return f"a fresh worker could not start on {device} ({problem['message']})"
            self.take(item)
        return None


def bench_target(target: str, config: Config, parts: Path, collected: Collected) -> None:
    """List `target`'s APIs in its first worker, which goes on to measure on the CPU; then each other device."""
    start = time.perf_counter()
    run = TargetBench(target, config, parts, collected)
    try:
        failed = run.list_apis()
        if failed:
            collected.targets.append({"name": target, "skipped": None, "failed": failed})
            return
        measure_target(run, start)
    finally:
        run.close_worker()


def measure_target(run: TargetBench, start: float) -> None:
    """The listed target's measurements on each selected device; Ctrl-C keeps what was measured."""
    listing, collected = run.listing, run.collected
    devices, skipped = select_devices(run.config.device, listing["devices"])
    collected.environments.append(listing["environment"])
    machine_id = listing["environment"]["machine"]
    collected.bandwidth += [{"machine": machine_id, "device": device, **found}
                            for device, found in listing.get("device_bandwidth", {}).items()]
    entry = {"name": run.target, "skipped": None, "failed": None, "devices_skipped": skipped}
    collected.targets.append(entry)
    before = len(collected.measurements)
    try:
        for device in devices:
            if device != "cpu":
                run.close_worker()  # the listing copied on this device to measure its bandwidth
            entry["failed"] = run.measure_device(device) or entry["failed"]
    except KeyboardInterrupt:  # what was measured is kept; the target is listed as stopped
        run.stop_worker()
        entry["failed"] = f"stopped by {stopped_by().name} after {len(collected.measurements) - before} measurements"
        collected.interrupted = True
    finally:
        entry["wall_seconds"] = round(time.perf_counter() - start, 2)
    print(f"xentcompat: bench {run.target}: {len(collected.measurements) - before} measurements by "
          f"{run.workers_started} worker process(es)", file=sys.stderr, flush=True)


def bench(targets: list[str], config: Config, out: Path) -> dict:
    """Every target's measurements, with the host's bandwidth measured first (before any worker loads memory)."""
    start = time.perf_counter()
    parts = out / PARTS_DIR
    parts.mkdir(parents=True, exist_ok=True)
    host = current_machine()
    collected = Collected(bandwidth=[{"machine": host["machine"], "device": "cpu",
                                      **floor.measure_bandwidth(config.bandwidth_repeats)}])
    for target in targets:
        reason = (f"stopped by {stopped_by().name} before it ran" if collected.interrupted
                  else missing_requirement(target))
        if reason:
            print(f"xentcompat: skipped {target}: {reason}", file=sys.stderr)
            collected.targets.append({"name": target, "skipped": reason, "failed": None})
            continue
        bench_target(target, config, parts, collected)
    return bench_document(config.to_json(), [host], collected.bandwidth, collected.environments, collected.targets,
                          collected.measurements, round(time.perf_counter() - start, 2))


def bench_config(args, repeats: int) -> Config:
    """The run's Config from the command line's arguments; ValueError (one line) for a bad shape, dtype or mode."""
    modes = tuple(dict.fromkeys(m.strip() for m in args.modes.split(",") if m.strip()))
    bad = [m for m in modes if m not in ("eager", "compiled")]
    if bad or not modes:
        raise ValueError(f"unknown mode {bad[0] if bad else args.modes!r}; known: eager, compiled")
    limit = (int(args.memory_limit_gib * 2**30) if args.memory_limit_gib is not None
             else default_memory_limit())
    if limit is not None and limit <= 0:
        raise ValueError(f"--memory-limit-gib must be positive, got {args.memory_limit_gib}")
    return Config(tuple(parse_shapes(args.shapes)), tuple(parse_dtypes(args.dtypes)), repeats, args.device, modes,
                  limit, apis=tuple(args.apis or ()))


def default_memory_limit() -> int | None:
    """90% of the memory available now (MemAvailable), so one worker cannot push the machine into its
    out-of-memory killer; None where the kernel does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(int(line.split()[1]) * 1024 * 0.9)
    except OSError:
        return None
    return None


def current_machine() -> dict:
    """The machine (id, CPU, kernel switches) and its memory."""
    pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    return {**machine.current(), "memory_bytes": pages * size}
