"""The `xentcompat` command line: run (shards → merge → render), merge, render.

Exit status: 0 when the report was written; 1 with --strict when a cell deviates from its expectation; 2 for bad
input (one line on stderr naming what is wrong); 3 when a shard could not be produced.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from xentcompat.adapters.base import TARGETS, missing_requirement
from xentcompat.reference.case_file import CaseFileError, load_cases
from xentcompat.reference.dtypes import DTYPE_NAMES
from xentcompat.report.markdown import render_markdown
from xentcompat.report.merge import merge_files
from xentcompat.report.records import ResultsError, write_json_atomic, write_text_atomic

REPO = Path(__file__).resolve().parents[2]
MATRIX_TESTS = REPO / "tests" / "matrix"


class UsageError(ValueError):
    """Bad command-line input; exit status 2."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except (UsageError, CaseFileError, ResultsError) as error:
        print(f"xentcompat: error: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xentcompat", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run every target's shard, merge them, render the report")
    run.add_argument("--targets", nargs="+", metavar="TARGET", help=f"default: all ({', '.join(TARGETS)})")
    run.add_argument("--device", default="cpu", choices=("cpu", "cuda", "all"))
    run.add_argument("--dtypes", nargs="+", metavar="DTYPE", help=f"default: all ({', '.join(DTYPE_NAMES)})")
    run.add_argument("--cases", type=Path, help="a user case file (JSON or NPZ) run besides the catalogue")
    run.add_argument("-n", dest="workers", default="auto", help="pytest-xdist workers per shard (default auto)")
    run.add_argument("--strict", action="store_true", help="exit 1 when a cell deviates from its expectation")
    run.add_argument("--out", type=Path, required=True, help="directory for results.json and report.md")
    run.set_defaults(command=run_command)
    merge = commands.add_parser("merge", help="merge shard results files into one")
    merge.add_argument("shards", nargs="+", type=Path)
    merge.add_argument("--out", type=Path, required=True)
    merge.set_defaults(command=merge_command)
    render = commands.add_parser("render", help="render report.md from a results.json")
    render.add_argument("results", type=Path)
    render.add_argument("--out", type=Path, required=True)
    render.set_defaults(command=render_command)
    return parser


def run_command(args) -> int:
    targets = _check_run_args(args)
    shard_dir = args.out / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    shards, skipped, failed = [], [], []
    for target in targets:
        reason = missing_requirement(target)
        if reason:
            skipped.append((target, reason))
            print(f"xentcompat: skipped {target}: {reason}", file=sys.stderr)
            continue
        shard = shard_dir / f"{target}.json"
        status = _run_shard(target, shard, args)
        if status not in (0, 1) or not shard.exists():
            failed.append(target)
            print(f"xentcompat: shard {target} failed (pytest exit status {status})", file=sys.stderr)
            continue
        shards.append(shard)
    document = merge_files(shards) if shards else merge_files([])
    document["targets"] += [{"name": name, "skipped": reason} for name, reason in skipped]
    _write_outputs(document, args.out)
    return _exit_status(document, failed, args.strict)


def _check_run_args(args) -> list[str]:
    targets = args.targets or list(TARGETS)
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise UsageError(f"unknown target {unknown[0]!r}; known: {', '.join(TARGETS)}")
    bad_dtypes = [d for d in args.dtypes or () if d not in DTYPE_NAMES]
    if bad_dtypes:
        raise UsageError(f"unknown dtype {bad_dtypes[0]!r}; known: {', '.join(DTYPE_NAMES)}")
    if args.cases is not None:
        load_cases(args.cases)
    if not MATRIX_TESTS.is_dir():
        raise UsageError(f"the matrix tests are not at {MATRIX_TESTS}: install from a checkout (pip install -e .)")
    return targets


def _run_shard(target: str, shard: Path, args) -> int:
    command = [sys.executable, "-m", "pytest", str(MATRIX_TESTS), "-q", "-p", "no:cacheprovider",
               "--framework", target, "--device", args.device, "--results", str(shard.resolve()),
               "-n", str(args.workers), "--tb=no", "-rN"]
    if args.dtypes:
        command += ["--dtype", ",".join(args.dtypes)]
    if args.cases is not None:
        command += ["--cases", str(args.cases.resolve())]
    environment = {**os.environ, **dict(TARGETS[target].environment)}
    print(f"xentcompat: running {target} ...", file=sys.stderr)
    return subprocess.run(command, cwd=REPO, env=environment, stdout=subprocess.DEVNULL).returncode


def _write_outputs(document: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "results.json", document)
    write_text_atomic(out / "report.md", render_markdown(document))
    records = document["records"]
    unexpected = sum(1 for r in records if _unexpected(r))
    print(f"xentcompat: {len(records)} cells, {sum(1 for r in records if r['finding'])} deviating, "
          f"{unexpected} unexpected; wrote {out / 'results.json'} and {out / 'report.md'}")


def _unexpected(record: dict) -> bool:
    return (record["loss"]["outcome"], record["grad"]["outcome"]) != (record["expected"]["loss"],
                                                                     record["expected"]["grad"])


def _exit_status(document: dict, failed: list[str], strict: bool) -> int:
    if failed:
        return 3
    if strict and any(_unexpected(r) for r in document["records"]):
        return 1
    return 0


def merge_command(args) -> int:
    _write_outputs(merge_files(args.shards), args.out)
    return 0


def render_command(args) -> int:
    _write_outputs(merge_files([args.results]), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
