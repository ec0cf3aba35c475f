"""`xentcompat bench`: each target's APIs listed in a worker process, then one worker per API × shape × device ×
dtype × mode, one after the other (a benchmark wants the machine to itself); their measurements, the machine's bandwidth and the
floor in one bench.json.

Each worker runs with the environment the `run` command gives its target (the Keras backend is read at import). A
target whose framework is not installed is listed as skipped with the reason; a CUDA device no framework sees is
skipped with the reason, not an error. A worker that dies (the out-of-memory killer, a native abort) or runs past
the time limit leaves a measurement with that reason; the rest go on.
`DIR` gets bench.json, bench.md and bench.html (the report section) and the workers' output in DIR/bench-parts/.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from xentcompat import machine
from xentcompat.adapters.base import TARGETS, missing_requirement
from xentcompat.bench import floor
from xentcompat.bench.document import bench_document, write_bench
from xentcompat.bench.grid import Shape, dtype_order, parse_dtypes, parse_shapes, select_devices
from xentcompat.bench.worker import LIST_KIND, PART_KIND
from xentcompat.isolation import describe_exit
from xentcompat.report.records import write_text_atomic

BENCH_FILE = "bench.json"
PARTS_DIR = "bench-parts"
PACKAGE_PARENT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Config:
    shapes: tuple[Shape, ...]
    dtypes: tuple[str, ...]
    repeats: int = 3
    device: str = "cpu"
    modes: tuple[str, ...] = ("eager", "compiled")
    memory_limit: int | None = None  # bytes per worker (RLIMIT_DATA)
    worker_timeout: float = 3600.0
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


def _worker(target: str, arguments: list[str], log: Path, timeout: float) -> int:
    """Run a worker with its target's environment; its exit status (-9 when it ran past `timeout`)."""
    command = [sys.executable, "-m", "xentcompat.bench.worker", "--target", target, *arguments]
    with log.open("a") as output:
        child = subprocess.Popen(command, env={**os.environ, **dict(TARGETS[target].environment)}, stdout=output,
                                 stderr=subprocess.STDOUT, cwd=PACKAGE_PARENT, start_new_session=True)
        try:
            return child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return -signal.SIGKILL
        except KeyboardInterrupt:
            os.killpg(child.pid, signal.SIGTERM)
            child.wait()
            raise


def _read(path: Path, kind: str) -> dict:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) and document.get("kind") == kind else {}


def lost_measurements(api: dict, shape: Shape, device: str, dtype: str, mode: str, reason: str,
                      listing: dict) -> list[dict]:
    """The measurement a dead worker did not write, holding `reason`."""
    environment = listing["environment"]
    return [{"target": listing["target"], "framework": api["framework"], "backend": api["backend"],
             "framework_version": environment["frameworks"].get(api["framework"]), "api": api["id"],
             "expression": api["expression"], "targets": api["targets"], "mode": mode, "device": device,
             "dtype": dtype, "rows": shape.rows, "classes": shape.classes, "machine": environment["machine"],
             "bytes_to_move": floor.bytes_to_move(shape.rows, shape.classes, dtype, api["targets"]),
             "error": {"type": "WorkerDied", "message": reason}}]


def planned(api: dict, config: Config) -> list[tuple[str, str]]:
    """(dtype, mode) of each measurement of `api`: one worker process each, so no measurement sees memory an
    earlier one left resident (JAX's and glibc's allocators keep freed memory) or a compile an earlier one did."""
    return [(dtype, mode) for dtype in dtype_order(list(config.dtypes))
            for mode in ("eager", "compiled") if mode in config.modes and mode in api["modes"]]


def measure_api(listing: dict, api: dict, shape: Shape, device: str, dtype: str, mode: str, config: Config,
                parts: Path) -> list[dict]:
    target = listing["target"]
    tag = hashlib.sha256(f"{api['id']} {shape.text} {device} {dtype} {mode}".encode()).hexdigest()[:12]
    part = parts / f"{target}-{tag}.json"
    part.unlink(missing_ok=True)
    arguments = ["--api", api["id"], "--shape", shape.text, "--dtypes", dtype, "--modes", mode, "--device", device,
                 "--repeats", str(config.repeats), "--memory-limit", str(config.memory_limit or 0),
                 "--out", str(part.resolve())]
    status = _worker(target, arguments, parts / f"{target}.log", config.worker_timeout)
    found = _read(part, PART_KIND)
    measurements = found.get("measurements", [])
    if (status != 0 or not found.get("done")) and not measurements:
        timed_out = status == -signal.SIGKILL
        reason = (f"the worker {'ran past the limit or was killed' if timed_out else describe_exit(status)} "
                  f"({'out of memory?' if timed_out else 'see the log'}; {parts / (target + '.log')})")
        measurements = lost_measurements(api, shape, device, dtype, mode, reason, listing)
    return measurements


def bench_target(target: str, config: Config, parts: Path, collected: Collected) -> None:
    start = time.perf_counter()
    listed = parts / f"{target}-list.json"
    status = _worker(target, ["--list", "--devices", config.device.replace("all", "cpu,cuda"), "--repeats",
                              str(config.bandwidth_repeats), "--out", str(listed.resolve())],
                     parts / f"{target}.log", config.worker_timeout)
    listing = _read(listed, LIST_KIND)
    if status != 0 or not listing:
        collected.targets.append({"name": target, "skipped": None, "failed": f"listing its APIs failed "
                                  f"({describe_exit(status)}); see {parts / (target + '.log')}"})
        return
    devices, skipped = select_devices(config.device, listing["devices"])
    collected.environments.append(listing["environment"])
    machine_id = listing["environment"]["machine"]
    collected.bandwidth += [{"machine": machine_id, "device": device, **found}
                            for device, found in listing.get("device_bandwidth", {}).items()]
    entry = {"name": target, "skipped": None, "failed": None, "devices_skipped": skipped}
    collected.targets.append(entry)
    before = len(collected.measurements)
    try:
        for api in (a for a in listing["apis"] if not config.apis or a["id"] in config.apis):
            for shape in config.shapes:
                for device in devices:
                    print(f"xentcompat: bench {target} {api['id']} {shape.text} {device} ...", file=sys.stderr,
                          flush=True)
                    for dtype, mode in planned(api, config):
                        collected.measurements += measure_api(listing, api, shape, device, dtype, mode, config,
                                                              parts)
    except KeyboardInterrupt:  # what was measured is kept; the target is listed as stopped
        entry["failed"] = f"stopped by SIGINT after {len(collected.measurements) - before} measurements"
        collected.interrupted = True
    finally:
        entry["wall_seconds"] = round(time.perf_counter() - start, 2)


def bench(targets: list[str], config: Config, out: Path) -> dict:
    """Every target's measurements, with the host's bandwidth measured first (before any worker loads memory)."""
    start = time.perf_counter()
    parts = out / PARTS_DIR
    parts.mkdir(parents=True, exist_ok=True)
    host = current_machine()
    collected = Collected(bandwidth=[{"machine": host["machine"], "device": "cpu",
                                      **floor.measure_bandwidth(config.bandwidth_repeats)}])
    for target in targets:
        reason = "stopped by SIGINT before it ran" if collected.interrupted else missing_requirement(target)
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


def write_outputs(document: dict, out: Path) -> None:
    from xentcompat.report.bench import html_page, markdown_section

    out.mkdir(parents=True, exist_ok=True)
    write_bench(out / BENCH_FILE, document)
    write_text_atomic(out / "bench.md", "\n".join(markdown_section(document)) + "\n")
    write_text_atomic(out / "bench.html", html_page(document))


def run_bench(targets: list[str], config: Config, out: Path) -> int:
    """`xentcompat bench`: 0 when every target that could run finished, 3 when one failed (the others kept), 130
    when Ctrl-C stopped it (what was measured is written)."""
    document = bench(targets, config, out)
    write_outputs(document, out)
    measured = document["measurements"]
    failed = [t["name"] for t in document["targets"] if t.get("failed")]
    print(f"xentcompat: {len(measured)} measurements ({sum(1 for m in measured if m.get('error'))} could not run) "
          f"in {document['wall_seconds']:.0f} s; wrote {out / BENCH_FILE}, {out / 'bench.md'} and "
          f"{out / 'bench.html'}")
    stopped = any(str(t.get("failed", "")).startswith("stopped by SIGINT") for t in document["targets"])
    return 128 + signal.SIGINT if stopped else (3 if failed else 0)
