"""Time and memory of the float64 reference and of the error model's units on large float32 batches.

    python benchmarks/oracle.py [--shapes 256x131072 4096x131072] [--repeats 3] [--work-mib 64] [--workers N]
                                [--frozen]

Each shape gets random normal float32 logits and random labels, with the default options (a mean over the batch).
* Time, in one fresh process per shape: one `np.max(x, axis=1)` pass over the float32 logits, the reference's loss and
  gradient (`solve`: with a new gradient array, and into one given to it, `out=`, which leaves out the kernel's
  zeroing of the new array's pages), one float64 e^x pass into a given array on the same threads (the least any
  float64 reference returning the gradient computes), and the error model's units (`loss_unit` and
  `grad_units(...).row`, given the reference): the median of --repeats runs, after one warm-up run that is not
  counted. Ratios are to the `np.max` pass.
* Memory, in a fresh process per measurement: the peak resident memory the one call adds, read from
  /proc/self/status (VmHWM after the call, reset through /proc/self/clear_refs just before it, less VmRSS then),
  shown beyond the gradient output (N × C float64) that the reference returns.
With --frozen, the one-piece reference it replaced (`tests/frozen_reference.py`) is measured as well wherever its
~21× the input fits in the memory available (it is skipped, with the reason, where it does not).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MiB = 2**20
FROZEN_FACTOR = 21  # peak extra memory of the one-piece reference, in multiples of the float32 input (measured)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["256x131072", "4096x131072"], help="N x C, e.g. 256x131072")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (after one warm-up)")
    parser.add_argument("--work-mib", type=float, default=None, help="the reference's work budget (default: its own)")
    parser.add_argument("--workers", type=int, default=None, help="threads (default: the cores available)")
    parser.add_argument("--frozen", action="store_true", help="also measure the one-piece reference where it fits")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args)))
        return 0
    rows = [_measure_shape(shape, args) for shape in args.shapes]
    print(_table(rows, args))
    return 0


def _measure_shape(shape: str, args) -> dict:
    n, c = _shape(shape)
    input_bytes = n * c * 4
    frozen_fits = args.frozen and FROZEN_FACTOR * input_bytes + 2 * input_bytes < _available_bytes()
    row = {"shape": shape, "input_mib": input_bytes / MiB, "grad_mib": n * c * 8 / MiB,
           **_run_child("time", shape, args, frozen=frozen_fits),
           "reference_peak_mib": _run_child("memory-reference", shape, args)["growth_mib"],
           "units_peak_mib": _run_child("memory-units", shape, args)["growth_mib"]}
    if frozen_fits:
        row["frozen_peak_mib"] = _run_child("memory-frozen", shape, args)["growth_mib"]
    elif args.frozen:
        row["frozen_skipped"] = f"needs ~{FROZEN_FACTOR * input_bytes / 2**30:.0f} GiB"
    return row


def _run_child(kind: str, shape: str, args, frozen: bool = False) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--shapes", shape,
               "--repeats", str(args.repeats), "--seed", str(args.seed)]
    command += ["--work-mib", str(args.work_mib)] if args.work_mib else []
    command += ["--workers", str(args.workers)] if args.workers else []
    command += ["--frozen"] if frozen else []
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child(kind: str, args) -> dict:
    sys.path.insert(0, str(ROOT))
    problem = _problem(*_shape(args.shapes[0]), args.seed)
    budget = _budget(args)
    if kind == "time":
        return _times(problem, budget, args.repeats, args.frozen)
    return {"growth_mib": _peak_growth(kind.removeprefix("memory-"), problem, budget) / MiB}


def _problem(n: int, c: int, seed: int):
    from xentcompat.reference.options import Problem, validate

    rng = np.random.default_rng(seed)
    problem = Problem(rng.standard_normal((n, c), dtype=np.float32), rng.integers(0, c, n))
    validate(problem)
    return problem


def _budget(args):
    from xentcompat.reference.blocks import DEFAULT_BUDGET, Budget

    work = int(args.work_mib * MiB) if args.work_mib else DEFAULT_BUDGET.work_bytes
    return Budget(work_bytes=work, workers=args.workers or DEFAULT_BUDGET.workers)


def _times(problem, budget, repeats: int, frozen: bool) -> dict:
    from xentcompat.reference.softmax_xent import solve

    x = problem.logits
    times = {"max_ms": _median_ms(lambda: np.max(x, axis=1), repeats),
             "reference_ms": _median_ms(lambda: solve(problem, budget), repeats)}
    times["reference_out_ms"] = _median_ms(_into_given_gradient(problem, budget), repeats)
    times["exp_ms"] = _median_ms(_exp_pass(x, budget), repeats)
    times["units_ms"] = _median_ms(_units_of(problem, solve(problem, budget), budget), repeats)
    if frozen:
        from tests.frozen_reference import frozen_solve

        times["frozen_ms"] = _median_ms(lambda: frozen_solve(problem), repeats)
    return times


def _into_given_gradient(problem, budget):
    """A call computing the reference into one gradient array, allocated (and its pages touched) beforehand."""
    from xentcompat.reference.softmax_xent import solve

    out = np.zeros(problem.logits.shape)
    return lambda: solve(problem, budget, out=out)


def _exp_pass(x: np.ndarray, budget):
    """One float64 e^x per element into a float64 array allocated beforehand, on the reference's threads and row
    chunks: the least a float64 reference returning an N x C gradient computes (x itself, not x - max)."""
    from xentcompat.reference.blocks import block_elements, chunks, run_chunks

    out = np.zeros(x.shape)
    planned = chunks(x.shape, block_elements(budget, 1))

    def exp_chunk(chunk, _):
        np.exp(x[chunk.rows], out=out[chunk.rows], dtype=np.float64)

    return lambda: run_chunks(exp_chunk, planned, budget)


def _units_of(problem, reference, budget):
    """A call computing the error model's units of `reference`: the loss unit and each row's gradient unit (the
    units the reference keeps from an earlier call are dropped first, so each call computes them)."""
    from xentcompat.reference.errors import grad_units, loss_unit

    def units():
        reference.memo.clear()
        return loss_unit(problem, reference, "float32", budget), grad_units(problem, reference, "float32", budget).row

    return units


def _median_ms(call, repeats: int) -> float:
    """Median wall time of `repeats` calls after one warm-up; each result is dropped before the next call starts."""
    call()
    elapsed = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        elapsed.append(time.perf_counter() - start)
        del result
    return 1e3 * statistics.median(elapsed)


def _peak_growth(what: str, problem, budget) -> int:
    """Bytes of peak resident memory one call adds beyond what the process held just before it (and, for the
    reference, beyond the gradient it returns)."""
    from xentcompat.reference.softmax_xent import solve

    if what == "units":
        call = _units_of(problem, solve(problem, budget), budget)
    elif what == "frozen":
        from tests.frozen_reference import frozen_solve

        call = lambda: frozen_solve(problem)  # noqa: E731
    else:
        call = lambda: solve(problem, budget)  # noqa: E731
    before = _reset_peak()
    result = call()
    grown = _status_kib("VmHWM") * 1024 - before
    returned = result.grad.nbytes if what in ("reference", "frozen") else 0
    return grown - returned


def _reset_peak() -> int:
    """Reset the process's peak resident memory to its current one (Linux); the current one, in bytes."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    return _status_kib("VmRSS") * 1024


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return int(re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.M).group(1))


def _available_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        return int(re.search(r"^MemAvailable:\s+(\d+) kB", meminfo.read(), re.M).group(1)) * 1024


def _shape(text: str) -> tuple[int, int]:
    n, c = text.lower().split("x")
    return int(n), int(c)


def _table(rows: list[dict], args) -> str:
    from xentcompat.reference.blocks import DEFAULT_BUDGET

    work = args.work_mib or DEFAULT_BUDGET.work_bytes / MiB
    lines = [f"float32 logits, random labels, reduction mean; work budget {work:g} MiB on "
             f"{args.workers or DEFAULT_BUDGET.workers} thread(s); median of {args.repeats} after a warm-up",
             "",
             "| N × C | input | np.max | reference (loss + grad) | into a given gradient | float64 e^x pass | "
             "units (loss + grad rows) | "
             "reference peak beyond input + grad | units peak | "
             + ("one-piece reference | its peak |" if args.frozen else ""),
             "|---|---|---|---|---|---|---|---|---|" + ("---|---|" if args.frozen else "")]
    for row in rows:
        ratio = lambda key: f"{row[key]:.0f} ms ({row[key] / row['max_ms']:.1f}×)"  # noqa: E731
        cells = [row["shape"].replace("x", " × "), f"{row['input_mib']:.0f} MiB", f"{row['max_ms']:.1f} ms",
                 ratio("reference_ms"), ratio("reference_out_ms"), ratio("exp_ms"), ratio("units_ms"),
                 f"{row['reference_peak_mib']:.0f} MiB",
                 f"{row['units_peak_mib']:.0f} MiB"]
        if args.frozen:
            if "frozen_ms" in row:
                cells += [ratio("frozen_ms"), f"{row['frozen_peak_mib']:.0f} MiB"]
            else:
                cells += [f"not run: {row.get('frozen_skipped', '')}", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
