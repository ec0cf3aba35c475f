"""The `xentcompat` command line: run (shards → merge → render), merge, render, rejudge, train, bench, check.

Exit status: 0 when the report was written; 1 with --strict when a cell deviates from its expectation; 2 for bad
input (one line on stderr naming what is wrong); 3 when a shard could not be produced (the records it did write are
kept, and an earlier results.json in --out is left as it was: this run's document goes beside it, in
results.partial.json); 128 + the signal when stopped by SIGTERM or SIGINT, which reach the shards too.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from xentcompat.adapters.base import FORWARD_MAX_ELEMENTS, TARGETS, missing_requirement
from xentcompat.own import command as own_command
from xentcompat.reference.case_file import CaseFileError, load_cases
from xentcompat.reference.dtypes import DTYPE_NAMES
from xentcompat.report.files import write_reports
from xentcompat.results import out_lock
from xentcompat.results.digests import sealed
from xentcompat.results.documents import ResultsError, read_results, write_json_atomic
from xentcompat.results.merge import merge_files
from xentcompat.results.record import Record
from xentcompat.run import compile_cache, parts, threads
from xentcompat.run.progress import Progress, progress_display, watching
from xentcompat.run.salvage import from_parts, parts_directory, salvage, stopped_run
from xentcompat.run.schedule import longest_first
from xentcompat.run.stopping import STOP_WITH_PARENT

PACKAGE = Path(__file__).resolve().parent
MATRIX_TESTS = PACKAGE / "matrix"  # ships in the package: an installed xentcompat runs without a checkout
CHECKOUT = PACKAGE.parent if (PACKAGE.parent / "pyproject.toml").is_file() else None


class UsageError(ValueError):
    """Bad command-line input; exit status 2."""


class CannotWrite(ValueError):
    """The report could not be written (a full disk, no permission); exit status 2, the shards are kept."""


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as stop:  # --help (0) or a bad argument (2, its line already printed)
        return int(stop.code or 0)
    try:
        if getattr(args, "out", None) is None:
            return args.command(args)
        with out_lock.holding(args.out, args.command.__name__.removesuffix("_command")):
            return args.command(args)
    except (UsageError, CannotWrite, CaseFileError, ResultsError, out_lock.OutBusy) as error:
        print(f"xentcompat: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # --out at a file, a directory without write permission, a full disk
        print(f"xentcompat: error: cannot write {error.filename or args.out}: {error.strerror or error}",
              file=sys.stderr)
        return 2


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in the one line every other bad input gets (exit 2, `--help` for usage)."""

    def error(self, message: str):
        print(f"xentcompat: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="xentcompat", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=_Parser)
    run = commands.add_parser("run", help="run every target's shard, merge them, render the report")
    run.add_argument("--targets", nargs="+", metavar="TARGET", help=f"default: all ({', '.join(TARGETS)})")
    run.add_argument("--device", default="cpu", choices=("cpu", "cuda", "all"),
                     help="cpu, cuda (where the framework sees a GPU) or both (default cpu)")
    run.add_argument("--mode", default="eager", choices=("eager", "compiled", "forward", "all"),
                     help="eager, compiled (torch.compile, jax.jit, tf.function(jit_compile=True), mx.compile, paddle.jit.to_static), "
                          "forward (the gradient by forward-mode differentiation: jax.jacfwd, torch.func.jacfwd, on "
                          f"cases of at most {FORWARD_MAX_ELEMENTS} logits) or all three (default eager: the decision table's compiled "
                          "column then says it was not run)")
    run.add_argument("--dtypes", nargs="+", metavar="DTYPE", help=f"default: all ({', '.join(DTYPE_NAMES)})")
    run.add_argument("--cases", type=Path, help="a user case file (JSON or NPZ) run besides the catalogue")
    run.add_argument("--only-cases", action="store_true", help="run only the --cases file's cases, not the catalogue")
    run.add_argument("-n", dest="workers", default="auto",
                     help="processes to use: shards of different targets run at once, leftovers go to pytest-xdist "
                          "(default auto: one per CPU)")
    run.add_argument("--strict", action="store_true", help="exit 1 when a cell deviates from its expectation")
    run.add_argument("--train", action="store_true",
                     help="also run `xentcompat train` (default settings) on the targets that ran, into DIR/training, "
                          "and put its training evidence in the report")
    run.add_argument("--idle-timeout", type=float, default=900.0, metavar="SECONDS",
                     help="stop a shard whose output has not grown for this long (a hung pytest-xdist worker); "
                          "what it measured is kept (default 900)")
    run.add_argument("--cell-timeout", type=float, default=600.0, metavar="SECONDS",
                     help="stop a cell that runs longer than this, recording it as crashed (default 600; 0: none)")
    run.add_argument("--memory-budget", type=float, metavar="GIB",
                     help="memory a cell of a big batch (a --cases file over 256 MiB as float64) may need; a cell "
                          "that needs more is recorded as not run, with its numbers (default: half the machine's)")
    run.add_argument("--out", type=out_lock.output_directory, required=True,
                     help="directory for results.json and report.md")
    run.set_defaults(command=run_command)
    merge = commands.add_parser("merge", help="merge shard results files into one")
    merge.add_argument("shards", nargs="+", type=Path)
    merge.add_argument("--out", type=out_lock.output_directory, required=True)
    merge.set_defaults(command=merge_command)
    render = commands.add_parser("render", help="render report.md from a results.json")
    render.add_argument("results", type=Path)
    render.add_argument("--out", type=out_lock.output_directory, required=True)
    render.set_defaults(command=render_command)
    rejudge = commands.add_parser("rejudge", help="apply today's causes to stored records (results or shard "
                                                  "documents, .json or .json.gz, any machine) and render the report, "
                                                  "running nothing")
    rejudge.add_argument("results", nargs="+", type=Path)
    rejudge.add_argument("--out", type=out_lock.output_directory, required=True)
    rejudge.add_argument("--strict", action="store_true", help="exit 1 when a re-judged cell deviates from its "
                                                               "expectation")
    rejudge.set_defaults(command=rejudge_command)
    train = commands.add_parser("train", help="train a small MLP with each loss variant in every framework, write "
                                              "training.json and its report section")
    train.add_argument("--targets", nargs="+", metavar="TARGET", help=f"default: all ({', '.join(TARGETS)})")
    train.add_argument("--seeds", default="5", metavar="N", help="seeds 0..N-1 per variant and regime (default 5)")
    train.add_argument("--epochs", default="10", metavar="N", help="epochs per run (default 10)")
    train.add_argument("--regimes", nargs="+", metavar="REGIME",
                       help="default: all (standard, and the stress regimes high-lr, float16, bfloat16)")
    train.add_argument("--out", type=out_lock.output_directory, required=True,
                       help="directory for training.json, training.md and training.html")
    train.set_defaults(command=train_command)
    _bench_parser(commands)
    own_command.add_parser(commands)
    return parser


def _bench_parser(commands) -> None:
    from xentcompat.bench.grid import DEFAULT_DTYPES, DEFAULT_SHAPES

    bench = commands.add_parser("bench", help="time each loss API's forward + backward at LLM shapes against the "
                                              "memory-bandwidth floor, write bench.json and its report section")
    bench.add_argument("--targets", nargs="+", metavar="TARGET", help=f"default: all ({', '.join(TARGETS)})")
    bench.add_argument("--shapes", default=DEFAULT_SHAPES, metavar="NxV,...", help=f"default {DEFAULT_SHAPES}")
    bench.add_argument("--dtypes", default=",".join(DEFAULT_DTYPES), metavar="DTYPE,...",
                       help=f"default {','.join(DEFAULT_DTYPES)}")
    bench.add_argument("--modes", default="eager,compiled", metavar="MODE,...",
                       help="eager, compiled (where the API runs compiled) or both (default)")
    bench.add_argument("--apis", nargs="+", metavar="API", help="only these API ids (default: every API)")
    bench.add_argument("--repeats", default="3", metavar="R", help="timed calls after the warm-up (default 3)")
    bench.add_argument("--device", default="cpu", choices=("cpu", "cuda", "all"))
    bench.add_argument("--memory-limit-gib", type=float, metavar="GIB",
                       help="cap each worker's memory (default: 90%% of the memory available at the start)")
    bench.add_argument("--out", type=out_lock.output_directory, required=True,
                       help="directory for bench.json, bench.md and bench.html")
    bench.set_defaults(command=bench_command)


def run_command(args) -> int:
    targets = _check_run_args(args)
    shard_dir = args.out / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    reasons = {target: missing_requirement(target) for target in targets}
    skipped = [(target, reason) for target, reason in reasons.items() if reason]
    for target, reason in skipped:
        print(f"xentcompat: skipped {target}: {reason}", file=sys.stderr)
    runnable = [target for target, reason in reasons.items() if not reason]
    for stale in runnable:  # a shard of an earlier run is not this run's
        (shard_dir / f"{stale}.json").unlink(missing_ok=True)
        shutil.rmtree(parts.parts_dir(shard_dir / f"{stale}.json"), ignore_errors=True)
    _STOPPED_RUN.update(out=args.out, shard_dir=shard_dir, targets=runnable)
    cache = compile_cache.start() if any(map(compile_cache.runs_jax, runnable)) else None
    try:  # one jax compilation cache for the run's shards (see `compile_cache`), removed when they are done
        statuses = _run_shards(runnable, shard_dir, args)
    finally:
        compile_cache.stop(cache)
    shards, failed, salvaged = [], [], []
    for target, status in statuses.items():
        shard = shard_dir / f"{target}.json"
        if status not in (0, 1) or not shard.exists():
            failed.append(target)
            salvaged.append(salvage(target, shard_dir, status))
            continue
        shards.append(shard)
    trained = _train_beside(runnable, args) if args.train and runnable else []
    document = merge_files(shards + trained, extra=salvaged)
    document["targets"] += [{"name": name, "skipped": reason} for name, reason in skipped]
    earlier = args.out / "results.json"
    if failed and earlier.exists():
        write_json_atomic(args.out / "results.partial.json", sealed(document))
        print(f"xentcompat: kept the earlier {earlier}; this run's records ({len(document['records'])}) are in "
              f"{args.out / 'results.partial.json'}", file=sys.stderr)
    else:
        _write_outputs_keeping(document, args.out, shard_dir)
    return _exit_status(document, failed, args.strict)


def _write_outputs_keeping(document: dict, out: Path, shard_dir: Path) -> None:
    """Write the report; if that fails, say where the measured shards are and how to render them later."""
    try:
        _write_outputs(document, out)
    except OSError as error:
        raise CannotWrite(f"cannot write {error.filename or out}: {error.strerror or error}; the measured shards "
                          f"are kept in {shard_dir}: `xentcompat merge {shard_dir}/*.json --out {out}` once it can be "
                          "written") from None


def shard_plan(targets: int, workers: int) -> tuple[int, int]:
    """(shards at once, xdist workers per shard) sharing `workers` processes: targets first, leftovers to xdist."""
    at_once = max(1, min(workers, targets))
    return at_once, max(1, workers // at_once)


def _run_shards(targets: list[str], shard_dir: Path, args) -> dict[str, int]:
    """Run each target's shard in its own process, up to -n at a time; target -> pytest exit status."""
    workers = (os.cpu_count() or 1) if args.workers == "auto" else int(args.workers)
    at_once, per_shard = shard_plan(len(targets), workers)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _stop_children)
    order = longest_first(targets)
    scratch = Path(tempfile.mkdtemp(prefix="xentcompat-run-"))  # the shards' pytest temporary directories
    _SCRATCH.add(scratch)
    try:
        with progress_display("cells") as progress, ThreadPoolExecutor(at_once) as pool:
            for target in order:  # every target counted from the start: the overall line names them all
                progress.add(target)
            statuses = pool.map(lambda target: _run_shard(target, shard_dir, per_shard, args, progress, scratch,
                                                          at_once * per_shard),
                                order)
            found = dict(zip(order, statuses))
            return {target: found[target] for target in targets}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        _SCRATCH.discard(scratch)


def _check_run_args(args) -> list[str]:
    targets = list(dict.fromkeys(args.targets or TARGETS))  # one shard per target, whatever is repeated
    args.dtypes = list(dict.fromkeys(args.dtypes)) if args.dtypes else None
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise UsageError(f"unknown target {unknown[0]!r}; known: {', '.join(TARGETS)}")
    bad_dtypes = [d for d in args.dtypes or () if d not in DTYPE_NAMES]
    if bad_dtypes:
        raise UsageError(f"unknown dtype {bad_dtypes[0]!r}; known: {', '.join(DTYPE_NAMES)}")
    if args.workers != "auto" and not (args.workers.isascii() and args.workers.isdigit() and int(args.workers) > 0):
        raise UsageError(f"-n must be a positive number of processes or 'auto', got {args.workers!r}")
    if not 0 <= args.cell_timeout < math.inf:
        raise UsageError(f"--cell-timeout must be 0 (no limit) or a positive number of seconds, got {args.cell_timeout}")
    if args.memory_budget is not None and not 0 < args.memory_budget < math.inf:
        raise UsageError(f"--memory-budget must be a positive number of GiB, got {args.memory_budget}")
    if not 0 < args.idle_timeout < math.inf:
        raise UsageError(f"--idle-timeout must be a positive number of seconds, got {args.idle_timeout}")
    if args.cases is not None:
        load_cases(args.cases)
    elif args.only_cases:
        raise UsageError("--only-cases needs --cases FILE")
    if not MATRIX_TESTS.is_dir():
        raise UsageError(f"the matrix tests are not at {MATRIX_TESTS}: reinstall xentcompat")
    return targets


_CHILDREN: set[subprocess.Popen] = set()
_SCRATCH: set[Path] = set()
_STOPPED_RUN: dict = {}  # out, shard_dir, targets of the run in progress, for a stop to keep what it measured
_CHILDREN_LOCK = threading.Lock()


def _stop_children(signum, _frame) -> None:
    """SIGTERM / SIGINT: stop every shard (its whole process group: pytest and its workers), then exit."""
    with _CHILDREN_LOCK:
        children = list(_CHILDREN)
    for child in children:
        try:
            os.killpg(child.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for child in children:
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
    for scratch in list(_SCRATCH):
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"xentcompat: stopped by {signal.Signals(signum).name}; the shards were stopped too", file=sys.stderr)
    _keep_stopped_run()
    os._exit(128 + signum)


def _keep_stopped_run() -> None:
    """What the stopped run measured, into --out/results.partial.json (results.json is left as it was)."""
    if not _STOPPED_RUN:
        return
    out, shard_dir = _STOPPED_RUN["out"], _STOPPED_RUN["shard_dir"]
    try:
        document = stopped_run(_STOPPED_RUN["targets"], shard_dir)
        if document is not None:
            write_json_atomic(out / "results.partial.json", sealed(document))
            print(f"xentcompat: the {len(document['records'])} records measured before the stop are in "
                  f"{out / 'results.partial.json'}; {out / 'results.json'} is left as it was", file=sys.stderr)
    except (OSError, ValueError) as error:
        print(f"xentcompat: what was measured is in the part files under {shard_dir} (`xentcompat merge` reads "
              f"them); writing results.partial.json failed: {error}", file=sys.stderr)


def _run_shard(target: str, shard_dir: Path, workers: int, args, progress: Progress, scratch: Path,
               processes: int) -> int:
    """One target's shard: pytest on the matrix in its own process group, its temporary directories under `scratch`
    (not pytest-of-USER in the system's, where pytest would prune a user's own)."""
    shard = shard_dir / f"{target}.json"
    plugins = ["-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "xentcompat.run.plugin"]  # the matrix draws no examples
    command = [sys.executable, "-m", "pytest", str(MATRIX_TESTS), "-q", *plugins,
               "--framework", target, "--device", args.device, "--mode", args.mode, "--results", str(shard.resolve()),
               "-n", str(workers if workers > 1 else 0), "--dist", "loadgroup", "--tb=short", "-rN",
               "--cell-timeout", str(args.cell_timeout), "--basetemp", str(scratch / target)]
    if args.dtypes:
        command += ["--dtype", ",".join(args.dtypes)]
    if args.cases is not None:
        command += ["--cases", str(args.cases.resolve())] + (["--only-cases"] if args.only_cases else [])
    environment = {**os.environ, **dict(TARGETS[target].environment), STOP_WITH_PARENT: "1",
                   **threads.per_process(processes)}  # `processes` at once: the run's shards and their workers
    if args.memory_budget is not None:
        environment["XENTCOMPAT_MEMORY_BUDGET"] = str(int(args.memory_budget * 2**30))
    print(f"xentcompat: running {target} ...", file=sys.stderr)
    with (shard_dir / f"{target}.log").open("w") as log:
        child = subprocess.Popen(command, cwd=CHECKOUT or shard_dir, env=environment, stdout=log,
                                 stderr=subprocess.STDOUT,
                                 start_new_session=True)  # its own process group: a signal reaches its workers too
        with _CHILDREN_LOCK:
            _CHILDREN.add(child)
        try:
            with watching(progress, target, parts.RecordCounter(parts.parts_dir(shard), shard)):
                return _wait_while_busy(child, shard_dir / f"{target}.log", args.idle_timeout, target)
        finally:
            with _CHILDREN_LOCK:
                _CHILDREN.discard(child)


def _wait_while_busy(child: subprocess.Popen, log: Path, idle_timeout: float, target: str) -> int:
    """The shard's exit status; a shard whose log has not grown for `idle_timeout` seconds is killed (-9)."""
    size, quiet = -1, 0.0
    while True:
        try:
            return child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            grown = log.stat().st_size if log.exists() else 0
            quiet = 0.0 if grown != size else quiet + 5
            size = grown
            if quiet >= idle_timeout:
                print(f"xentcompat: {target}: no progress for {quiet:.0f} s (a hung worker?); stopping the shard",
                      file=sys.stderr)
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
                return -signal.SIGKILL


def _write_outputs(document: dict, out: Path) -> None:
    records = write_reports(document, out)
    unexpected = sum(1 for r in records if not r.as_promised)
    conflicts = len(document.get("conflicts", []))
    print(f"xentcompat: {len(records)} cells, {sum(1 for r in records if r.finding)} deviating, "
          f"{unexpected} unexpected" + (f", {conflicts} measured twice with different outcomes" if conflicts else "")
          + f"; wrote {out / 'results.json'}, {out / 'report.md'} and {out / 'report.html'}")


def _train_beside(targets: list[str], args) -> list[Path]:
    """`xentcompat train` on `targets` into DIR/training: its training.json, or nothing when none was written."""
    from xentcompat.training.experiment import Config
    from xentcompat.commands import NothingWritten, run_training

    out = args.out / "training"
    partial = out / "training.partial.json"
    partial.unlink(missing_ok=True)  # an earlier run's, not this one's
    try:
        run_training(targets, Config(), out)
    except NothingWritten as error:
        print(f"xentcompat: training: {error}", file=sys.stderr)
        return []
    found = partial if partial.exists() else out / "training.json"
    return [found] if found.exists() else []


def _exit_status(document: dict, failed: list[str], strict: bool) -> int:
    if failed:
        return 3
    if strict and any(not r.as_promised for r in map(Record.from_json, document["records"])):
        return 1
    return 0


def merge_command(args) -> int:
    """Results, training and bench files, and the part files of stopped shards (shards/.TARGET.json.parts)."""
    directories = {path: parts_directory(path) for path in args.shards}
    stopped = [from_parts(d) for d in dict.fromkeys(d for d in directories.values() if d)]
    _write_outputs(merge_files([path for path, d in directories.items() if d is None], extra=stopped), args.out)
    return 0


def render_command(args) -> int:
    _write_outputs(merge_files([args.results]), args.out)
    return 0


def rejudge_command(args) -> int:
    from xentcompat.run.rejudge import rejudge_document
    from xentcompat.results.bench import check_bench, merge_bench
    from xentcompat.results.merge import merge_documents
    from xentcompat.results.training import check_training, merge_training

    documents = [read_results(path) for path in args.results]
    trainings = [check_training(d["training"], f"{path}: field 'training'")
                 for path, d in zip(args.results, documents) if d.get("training")]
    benches = [check_bench(d["bench"], f"{path}: field 'bench'") for path, d in zip(args.results, documents)
               if d.get("bench")]
    workers = os.cpu_count() or 1
    rejudged = [rejudge_document(document, workers) for document in documents]
    for path, document in zip(args.results, rejudged):
        _say_rejudged(path, document)
    merged = merge_documents(rejudged)
    if trainings:
        merged["training"] = merge_training(trainings)
    if benches:
        merged["bench"] = merge_bench(benches)
    _write_outputs(merged, args.out)
    return _exit_status(merged, [], args.strict)


def _say_rejudged(path: Path, document: dict) -> None:
    aside = len(document["set_aside"])
    lacking = sum(1 for entry in document["not_run"] if "api" in entry)
    kept = [f"{target}: {note}" for target, found in document["rejudged"].items()
            for note in found["kept_as_recorded"]]
    print(f"xentcompat: {path}: {len(document['records'])} records re-judged"
          + (f", {aside} set aside (not measurements)" if aside else "")
          + (f", {lacking} APIs not in the release that ran" if lacking else "")
          + (f"; kept as recorded: {'; '.join(kept)}" if kept else ""), file=sys.stderr)


def train_command(args) -> int:
    from xentcompat.training.experiment import REGIMES, Config
    from xentcompat.commands import NothingWritten, run_training

    targets = args.targets or list(TARGETS)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise UsageError(f"unknown target {unknown[0]!r}; known: {', '.join(TARGETS)}")
    regimes = args.regimes or list(REGIMES)
    unknown = [r for r in regimes if r not in REGIMES]
    if unknown:
        raise UsageError(f"unknown regime {unknown[0]!r}; known: {', '.join(REGIMES)}")
    config = Config(seeds=_positive_count(args.seeds, "--seeds"), epochs=_positive_count(args.epochs, "--epochs"),
                    regimes=tuple(dict.fromkeys(regimes)))
    try:
        return run_training(list(dict.fromkeys(targets)), config, args.out)
    except NothingWritten as error:
        raise UsageError(str(error)) from None


def bench_command(args) -> int:
    from xentcompat.bench.runner import bench_config
    from xentcompat.commands import NothingWritten, run_bench

    targets = list(dict.fromkeys(args.targets or TARGETS))
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise UsageError(f"unknown target {unknown[0]!r}; known: {', '.join(TARGETS)}")
    try:
        config = bench_config(args, _positive_count(args.repeats, "--repeats"))
    except ValueError as error:
        raise UsageError(str(error)) from None
    try:
        return run_bench(targets, config, args.out)
    except NothingWritten as error:
        raise UsageError(str(error)) from None


# the most each count may ask for: --seeds 20000000 would plan 10^9 training runs (and a Ctrl-C then wrote a
# 249 MB training.json of none)
COUNT_LIMITS = {"--seeds": 1000, "--epochs": 1000, "--repeats": 10_000}


def _positive_count(text: str, option: str) -> int:
    if not (text.isascii() and text.isdigit() and int(text) > 0):  # '²'.isdigit() is True, int('²') raises
        raise UsageError(f"{option} must be a positive whole number, got {text!r}")
    if int(text) > COUNT_LIMITS[option]:
        raise UsageError(f"{option} must be at most {COUNT_LIMITS[option]}, got {text}")
    return int(text)


if __name__ == "__main__":
    sys.exit(main())
