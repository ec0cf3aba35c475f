"""`xentcompat train`: one worker process per target, one after the other, their runs in one training.json.

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


def run_target(target: str, config: Config, parts: Path) -> tuple[dict, dict | None, list[dict], bool]:
    """Train `target` in a worker process: (its targets entry, its environment, its runs, whether Ctrl-C stopped
    it: the worker, in the same process group, is stopped too, and what it wrote is kept)."""
    part, log = parts / f"{target}.json", parts / f"{target}.log"
    part.unlink(missing_ok=True)
    variables = training_environment(target)
    command = [sys.executable, "-m", "xentcompat.training.worker", "--target", target, "--seeds", str(config.seeds),
               "--epochs", str(config.epochs), "--regimes", ",".join(config.regimes), "--out", str(part.resolve())]
    print(f"xentcompat: training {target} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    interrupted = False
    with log.open("w") as output:
        try:
            status = subprocess.run(command, env={**os.environ, **variables}, stdout=output,
                                    stderr=subprocess.STDOUT, cwd=PACKAGE_PARENT).returncode
        except KeyboardInterrupt:
            status, interrupted = -stopped_by(), True
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
    return entry, found.get("environment"), runs, interrupted


def _read_part(part: Path) -> dict:
    """What a worker wrote (nothing, when it died before its first write)."""
    try:
        document = json.loads(part.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) and document.get("kind") == PART_KIND else {}


def train(targets: list[str], config: Config, out: Path) -> tuple[dict, bool]:
    """Every target's experiment: the training document, and whether Ctrl-C stopped it (the targets after the one
    it stopped are listed as skipped)."""
    parts = out / PARTS_DIR
    parts.mkdir(parents=True, exist_ok=True)
    entries, environments, runs, interrupted = [], [], [], False
    with progress_display("runs") as progress:
        for target in targets:  # every target that will train counted from the start (the overall line)
            if skip_reason(target) is None:
                progress.add(target, planned_runs(target, config))
        for target in targets:
            interrupted = _train_target(target, config, parts, progress, interrupted, (entries, environments, runs))
    return training_document(config_json(config), environments, entries, runs), interrupted


def _train_target(target: str, config: Config, parts: Path, progress: Progress, interrupted: bool,
                  found: tuple[list, list, list]) -> bool:
    """Train one target (or list it as skipped) into `found` (entries, environments, runs); whether Ctrl-C stopped
    it or an earlier one."""
    entries, environments, runs = found
    reason = f"stopped by {stopped_by().name} before it ran" if interrupted else skip_reason(target)
    if reason:
        print(f"xentcompat: skipped {target}: {reason}", file=sys.stderr)
        entries.append({"name": target, "skipped": reason, "failed": None})
        return interrupted
    runs_done = lambda: (len(_read_part(parts / f"{target}.json").get("runs", [])),  # noqa: E731
                         planned_runs(target, config))  # the worker rewrites its part after each run
    with watching(progress, target, runs_done):
        entry, environment, target_runs, interrupted = run_target(target, config, parts)
    entries.append(entry)
    environments += [environment] if environment else []
    runs += target_runs
    return interrupted
