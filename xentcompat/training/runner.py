"""`xentcompat train`: one worker process per target, `LANES` at a time, their runs in one training.json.

Each target trains in its own process with the environment the `run` command gives it (the Keras backend is read at
import; JAX trains in its default float32, so JAX_ENABLE_X64 is off here). A target whose framework (or
scikit-learn) is not installed is listed as skipped with the reason. A worker that dies or fails keeps the runs its
part file holds and the target is listed as failed with its exit status; the other targets are unaffected.
`DIR` gets training.json, training.md and training.html (the report section, plots in DIR/training-plots), and
the workers' output in DIR/training-parts/<target>.log.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import queue
import threading
import time
from pathlib import Path

from xentcompat.adapters.base import TARGETS, missing_requirement
from xentcompat.results.training import training_document
from xentcompat.run.isolation import describe_exit
from xentcompat.run.stopping import stopped_by
from xentcompat.run.progress import Progress, progress_display, watching
from xentcompat.training.experiment import Config, config_json
from xentcompat.training.variants import FAMILIES, variants_for
from xentcompat.training.worker import PART_KIND

TRAINING_FILE = "training.json"
PARTS_DIR = "training-parts"
PLOTS_DIR = "training-plots"
PACKAGE_PARENT = Path(__file__).resolve().parents[2]
# targets trained at once: each worker computes on about one core (the MLP's ops are 32 x 64 matrices; torch is given
# one thread), so two share a 2-core machine without slowing each other much, and the runs do not depend on it
LANES = 2
_WORKERS: set[subprocess.Popen] = set()  # the workers running now (stopped together on Ctrl-C or SIGTERM)
_WORKERS_LOCK = threading.Lock()
_STOPPING = threading.Event()  # set once the command is stopped: a worker starting after that is stopped at once


def training_environment(target: str) -> dict[str, str]:
    """The variables a target's worker runs with: the `run` command's, JAX left in float32."""
    variables = dict(TARGETS[target].environment)
    if "JAX_ENABLE_X64" in variables:
        variables["JAX_ENABLE_X64"] = "0"
    return variables


def skip_reason(target: str) -> str | None:
    """Why `target` cannot train here, or None."""
    reason = missing_requirement(target)
    if reason is None and target not in FAMILIES:
        reason = f"target {target} has no training loop (the digits MLP trains with the torch, JAX and Keras losses)"
    if reason is None and importlib.util.find_spec("sklearn") is None:
        reason = f"scikit-learn is not installed (target {target}: the digits come from it)"
    return reason


def planned_runs(target: str, config: Config) -> int:
    return len(config.regimes) * len(variants_for(target)) * config.seeds


def run_target(target: str, config: Config, parts: Path) -> tuple[dict, dict | None, list[dict]]:
    """Train `target` in a worker process: (its targets entry, its environment, its runs); a worker stopped by
    `stop_workers` keeps what it wrote."""
    part, log = parts / f"{target}.json", parts / f"{target}.log"
    part.unlink(missing_ok=True)
    variables = training_environment(target)
    command = [sys.executable, "-m", "xentcompat.training.worker", "--target", target, "--seeds", str(config.seeds),
               "--epochs", str(config.epochs), "--regimes", ",".join(config.regimes), "--out", str(part.resolve())]
    print(f"xentcompat: training {target} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    with log.open("w") as output:
        worker = subprocess.Popen(command, env={**os.environ, **variables}, stdout=output, stderr=subprocess.STDOUT,
                                  cwd=PACKAGE_PARENT)
        with _WORKERS_LOCK:
            _WORKERS.add(worker)
            if _STOPPING.is_set():  # started as the command was being stopped
                worker.send_signal(stopped_by())
        try:
            status = worker.wait()
        finally:
            with _WORKERS_LOCK:
                _WORKERS.discard(worker)
    wall = time.perf_counter() - start
    found = _read_part(part)
    runs = found.get("runs", [])
    entry = {"name": target, "skipped": None, "failed": None, "wall_seconds": round(wall, 2),
             "train_seconds": found.get("train_seconds"), "runs": len(runs), "environment": variables}
    if status != 0 or not found.get("done"):
        how = ("was " if status < 0 else "") + describe_exit(status) if status else "stopped before it finished"
        entry["failed"] = (f"the worker {how} "
                           f"after {len(runs)} of {planned_runs(target, config)} runs; its output is in {log}")
        print(f"xentcompat: {target}: {entry['failed']}", file=sys.stderr)
    return entry, found.get("environment"), runs


def stop_workers() -> None:
    """Stop every running worker, and any that starts from now on, with the signal that stopped the command (SIGINT
    or SIGTERM)."""
    with _WORKERS_LOCK:
        _STOPPING.set()
        for worker in _WORKERS:
            worker.send_signal(stopped_by())


def _read_part(part: Path) -> dict:
    """What a worker wrote (nothing, when it died before its first write)."""
    try:
        document = json.loads(part.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) and document.get("kind") == PART_KIND else {}


def train(targets: list[str], config: Config, out: Path) -> tuple[dict, bool]:
    """Every target's experiment, `LANES` targets at a time: the training document, and whether Ctrl-C (or SIGTERM)
    stopped it (the running workers are stopped and keep what they wrote; the targets not started yet are listed as
    skipped)."""
    parts = out / PARTS_DIR
    parts.mkdir(parents=True, exist_ok=True)
    _STOPPING.clear()
    reasons = {target: skip_reason(target) for target in targets}
    trainable = [target for target in targets if reasons[target] is None]
    with progress_display("runs") as progress:
        for target in trainable:  # every target that will train counted from the start (the overall line)
            progress.add(target, planned_runs(target, config))
        trained, interrupted = _train_all(trainable, config, parts, progress)
    entries, environments, runs = [], [], []
    for target in targets:
        entry, environment, target_runs = _outcome(target, reasons[target], trained.get(target))
        entries.append(entry)
        environments += [environment] if environment else []
        runs += target_runs
    return training_document(config_json(config), environments, entries, runs), interrupted


def _train_all(trainable: list[str], config: Config, parts: Path, progress: Progress) -> tuple[dict, bool]:
    """Each target's training on `LANES` threads, each taking the next target until none is left: target -> (entry,
    environment, runs) of those that ran, and whether Ctrl-C (or SIGTERM) stopped it. Then no lane takes another
    target, the running workers are stopped (one starting after that is stopped at once), and the lanes are waited for.
    The lanes exist before any starts, so a signal that comes while one is starting still finds it."""
    pending: queue.SimpleQueue = queue.SimpleQueue()
    for target in trainable:
        pending.put(target)
    trained: dict[str, tuple] = {}  # filled by the lanes: a target is here once it ran, however it ended
    errors: list[BaseException] = []
    finished = [threading.Event() for _ in range(min(LANES, len(trainable)))]  # not Thread.join: in Python 3.11 a
    # join that a signal interrupts can return at once afterwards while the thread runs on
    lanes = [threading.Thread(target=_lane, args=(pending, trained, errors, config, parts, progress, done),
                              name=f"training-lane-{number}") for number, done in enumerate(finished)]
    interrupted = False
    try:
        for lane in lanes:
            lane.start()
        for done in finished:
            while not done.wait(timeout=0.5):  # short waits: a signal reaches this thread between them
                pass
    except KeyboardInterrupt:
        interrupted = True
        stop_workers()
        for lane, done in zip(lanes, finished):
            if lane.ident is not None:  # started (a lane that never started never sets its event)
                done.wait()
    if errors:
        raise errors[0]
    return trained, interrupted


def _lane(pending: queue.SimpleQueue, trained: dict, errors: list, config: Config, parts: Path,
          progress: Progress, done: threading.Event) -> None:
    """Train the next target until none is left or the command is stopped; `done` set when it ends."""
    try:
        while not _STOPPING.is_set():
            try:
                target = pending.get_nowait()
            except queue.Empty:
                return
            trained[target] = _train_target(target, config, parts, progress)
    except BaseException as error:  # raised in the main thread once the lanes are done
        errors.append(error)
    finally:
        done.set()


def _outcome(target: str, reason: str | None, trained: tuple | None) -> tuple[dict, dict | None, list[dict]]:
    """(entry, environment, runs) of one target: skipped with `reason`, not started when stopped, or trained."""
    if reason is None and trained is None:  # not started when the command was stopped
        reason = f"stopped by {stopped_by().name} before it ran"
    if reason:
        print(f"xentcompat: skipped {target}: {reason}", file=sys.stderr)
        return {"name": target, "skipped": reason, "failed": None}, None, []
    return trained


def _train_target(target: str, config: Config, parts: Path, progress: Progress) -> tuple[dict, dict | None, list]:
    """Train one target, its runs shown as they come (the worker rewrites its part after each run)."""
    runs_done = lambda: (len(_read_part(parts / f"{target}.json").get("runs", [])),  # noqa: E731
                         planned_runs(target, config))
    with watching(progress, target, runs_done):
        return run_target(target, config, parts)
