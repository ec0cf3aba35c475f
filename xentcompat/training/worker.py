"""One target's experiment, in its own process: `python -m xentcompat.training.worker --target T ... --out PART`.

The process's environment names the Keras backend before anything imports Keras (the runner sets it). After every
run the part file is rewritten (atomically) with every run finished so far, so a process that dies keeps what it
measured; `"done": true` marks a target that finished. A run whose framework call raises is recorded with its error
and the others go on.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
from pathlib import Path

from xentcompat import machine
from xentcompat.results.documents import write_json_atomic
from xentcompat.results.training import run_entry
from xentcompat.training.experiment import Config
from xentcompat.training.loop import run_seed
from xentcompat.training.variants import FAMILIES, loop_module, variants_for

PART_KIND = "training-part"


def part_document(target: str, environment: dict, runs: list[dict], done: bool, seconds: float) -> dict:
    return {"kind": PART_KIND, "target": target, "environment": environment, "runs": runs, "done": done,
            "train_seconds": round(seconds, 3)}


def _threads() -> dict:
    """The CPUs, and the threads torch computes with where it is loaded.

    torch gets one intra-op thread here: the ops are 32 × 64 matrices, too small for a second thread to help, and
    torch's waiting threads spin, so a CPU shared with other work slows two threads far more than one. The other
    frameworks keep their defaults."""
    found = {"cpus": os.cpu_count()}
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
        found["torch"] = sys.modules["torch"].get_num_threads()
    return found


def train_target(target: str, config: Config, part: Path) -> None:
    """Every regime × variant × seed of `target`, the part file rewritten after each run."""
    start = time.perf_counter()
    loop = importlib.import_module(loop_module(target))
    threads = _threads()
    frameworks = loop.versions()
    backend = getattr(loop, "BACKEND", None)
    environment = {"target": target, "python": sys.version.split()[0], "platform": platform.platform(),
                   "frameworks": frameworks, "threads": threads, **machine.current()}
    runs: list[dict] = []
    write_json_atomic(part, part_document(target, environment, runs, False, 0.0))
    for regime in config.regime_list():
        for variant in variants_for(target):
            for seed in config.seed_list:
                try:
                    result = run_seed(loop.make_trainer, variant, regime, seed, config)
                    entry = run_entry(target, frameworks, backend, variant, regime, seed, result)
                    said = (f"test accuracy {result.metrics['test_accuracy'][-1]:.3f}, "
                            f"{sum(result.metrics['nonfinite_steps'])} non-finite steps, {result.seconds:.1f} s")
                except Exception as error:  # the framework refused this run; the others still run
                    entry = run_entry(target, frameworks, backend, variant, regime, seed, error=error)
                    said = f"raised {entry['error']['type']}: {entry['error']['message']}"
                runs.append({**entry, "machine": environment["machine"]})
                write_json_atomic(part, part_document(target, environment, runs, False,
                                                      time.perf_counter() - start))
                print(f"{target} {regime.name} {variant.api} seed {seed}: {said}", file=sys.stderr, flush=True)
    write_json_atomic(part, part_document(target, environment, runs, True, time.perf_counter() - start))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xentcompat.training.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, choices=sorted(FAMILIES))
    parser.add_argument("--seeds", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--regimes", required=True, help="comma-separated regime names")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    train_target(args.target, Config(seeds=args.seeds, epochs=args.epochs, regimes=tuple(args.regimes.split(","))),
                 args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
