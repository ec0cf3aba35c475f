"""Where the README's first command (`xentcompat run --train`, eager, every installed target) spends its time.

    python benchmarks/first_command.py [--targets jax torch ...] [--dtypes float32 ...] [--train] [--json FILE]

Each target's shard runs as the command runs it (one process, the plugin, the target's environment, the eager
matrix), here under cProfile in a fresh process, one target after another; its time is cut into phases:

* setup: imports and collection before the first cell (the framework's import, the catalogue, the causes);
* reference: the float64 reference and the error model's units (`reference.judging`);
* API calls: the cell's own call of the loss API, forward and backward (`adapters.base.capture` from the cell);
* relations: the metamorphic relations' extra calls and comparisons (`run.metamorphic.check_relations`);
* isolated: invalid input run in a child process (`run.isolation.capture_isolated`);
* of which compiles: inside the calls above, the framework compiling a program (XLA's compile and MLIR lowering for jax;
  dynamo and inductor for torch; `tf.function` tracing for TensorFlow and Keras);
* the rest: verdicts, records, pytest.

cProfile slows pure-Python code (jax's tracing most), so the shares matter more than the totals; the wall time
without the profiler is given beside them. With --train, `xentcompat train` on the same targets is timed too.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# phase -> (file suffix, function name) pairs whose cumulative times add up to it (none nested in another)
PHASES = {
    "reference": [("xentcompat/reference/judging.py", "solve"), ("xentcompat/reference/judging.py", "loss_unit"),
                  ("xentcompat/reference/judging.py", "grad_units")],
    "API calls": [("xentcompat/run/accumulation.py", "run")],
    "relations": [("xentcompat/run/metamorphic.py", "check_relations")],
    "isolated": [("xentcompat/run/isolation.py", "capture_isolated")],
}
COMPILES = [("jax/_src/compiler.py", "backend_compile_and_load"),
            ("jax/_src/interpreters/mlir.py", "lower_jaxpr_to_module"),
            ("torch/_dynamo/convert_frame.py", "_compile"),
            ("tensorflow/python/eager/polymorphic_function/polymorphic_function.py", "_initialize")]
CELLS = ("xentcompat/run/harness.py", "check")
LOOP = ("_pytest/main.py", "pytest_runtestloop")

CHILD = """
import cProfile, sys
import pytest
profile = cProfile.Profile()
status = profile.runcall(pytest.main, sys.argv[2:])
profile.dump_stats(sys.argv[1])
sys.exit(int(status) if int(status) in (0, 1) else 4)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=None, help="targets (default: every installed one)")
    parser.add_argument("--dtypes", nargs="+", default=None, help="dtypes (default: all four)")
    parser.add_argument("--train", action="store_true", help="time `xentcompat train` on the targets too")
    parser.add_argument("--no-plain", action="store_true", help="skip the wall time without the profiler")
    parser.add_argument("--json", type=Path, default=None, help="write the table's numbers here")
    args = parser.parse_args(argv)
    from xentcompat.adapters.base import TARGETS, missing_requirement

    targets = args.targets or [name for name in TARGETS if not missing_requirement(name)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="xentcompat-bench-") as scratch:
        for target in targets:
            rows.append(profile_shard(target, args.dtypes, Path(scratch), plain=not args.no_plain))
            print(_line(rows[-1]), flush=True)
        if args.train:
            rows.append(time_training(targets, Path(scratch)))
            print(f"training ({', '.join(targets)}): {rows[-1]['wall']:.0f} s", flush=True)
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": _machine(), "rows": rows}, indent=1))
    return 0


def _shard_command(target: str, dtypes, results: Path) -> list[str]:
    from xentcompat.cli import MATRIX_TESTS

    command = [str(MATRIX_TESTS), "-q", "-p", "no:cacheprovider", "-p", "xentcompat.run.plugin", "--framework", target,
               "--mode", "eager", "--results", str(results), "-n", "0", "-rN"]
    return command + (["--dtype", ",".join(dtypes)] if dtypes else [])


def _environment(target: str, scratch: Path) -> dict[str, str]:
    from xentcompat.adapters.base import TARGETS

    cache = tempfile.mkdtemp(prefix="jax-cache-", dir=scratch)  # fresh, as each run's (see `run.compile_cache`)
    return {**os.environ, **dict(TARGETS[target].environment), "JAX_COMPILATION_CACHE_DIR": cache,
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
            "TORCHINDUCTOR_CACHE_DIR": tempfile.mkdtemp(prefix="inductor-", dir=scratch)}


def profile_shard(target: str, dtypes, scratch: Path, plain: bool) -> dict:
    """One target's eager shard under cProfile: its phases, cells and wall time (and without the profiler)."""
    stats_file, results = scratch / f"{target}.prof", scratch / f"{target}.json"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, str(stats_file), *_shard_command(target, dtypes, results)],
                          cwd=ROOT, env=_environment(target, scratch), capture_output=True, text=True)
    profiled = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{target}: the shard failed (exit {done.returncode}):\n"
                         f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    row = {"target": target, "profiled": profiled, **phases(pstats.Stats(str(stats_file)))}
    row["cells"] = len(json.loads(results.read_text())["records"])
    if plain:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", *_shard_command(target, dtypes, scratch / "plain.json")],
                       cwd=ROOT, env=_environment(target, scratch), capture_output=True, check=False)
        row["wall"] = time.perf_counter() - start
    return row


def phases(stats: pstats.Stats) -> dict[str, float]:
    """Seconds per phase from the profile (cumulative times of the functions in `PHASES`, `COMPILES`)."""
    found = {name: sum(_cumulative(stats, where) for where in functions) for name, functions in PHASES.items()}
    found["compiles"] = sum(_cumulative(stats, where) for where in COMPILES)
    found["setup"] = stats.total_tt - _cumulative(stats, LOOP)
    cells = _cumulative(stats, CELLS)
    found["rest"] = max(0.0, stats.total_tt - found["setup"] - sum(found[name] for name in PHASES))
    found["cells total"] = cells
    found["total"] = stats.total_tt
    return found


def _cumulative(stats: pstats.Stats, where: tuple[str, str]) -> float:
    suffix, name = where
    return sum(entry[3] for (path, _, function), entry in stats.stats.items()
               if function == name and path.replace(os.sep, "/").endswith(suffix))


def time_training(targets: list[str], scratch: Path) -> dict:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "xentcompat.cli", "train", "--targets", *targets, "--out",
                    str(scratch / "training")], cwd=ROOT, capture_output=True, check=True)
    return {"target": "training", "wall": time.perf_counter() - start}


COLUMNS = ("setup", "reference", "API calls", "relations", "isolated", "rest", "compiles")


def table(rows: list[dict]) -> str:
    head = ("| target | cells | wall (s) | profiled (s) | " + " | ".join(f"{name} %" for name in COLUMNS[:-1])
            + " | of which compiles % |")
    lines = [head, "|" + "---|" * (4 + len(COLUMNS))]
    for row in rows:
        if "total" not in row:
            lines.append(f"| {row['target']} | | {row['wall']:.0f} | |" + " |" * len(COLUMNS))
            continue
        shares = " | ".join(f"{100 * row[name] / row['total']:.0f}" for name in COLUMNS)
        wall = f"{row['wall']:.0f}" if "wall" in row else ""
        lines.append(f"| {row['target']} | {row['cells']} | {wall} | {row['profiled']:.0f} | {shares} |")
    return "\n".join(lines)


def _line(row: dict) -> str:
    wall = f", {row['wall']:.0f} s without the profiler" if "wall" in row else ""
    return f"{row['target']}: {row['cells']} cells, {row['profiled']:.0f} s profiled{wall}"


def _machine() -> dict:
    return {"cpus": os.cpu_count(), "load": os.getloadavg(), "python": sys.version.split()[0]}


if __name__ == "__main__":
    sys.exit(main())
