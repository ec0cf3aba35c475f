"""The GPU leg: every target the machine has, on its CUDA device, eager and compiled, within a time limit.

For a machine with one CUDA GPU and its own framework builds, this checkout on PYTHONPATH (no install needed):

    XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONPATH=$PWD python3 tools/gpu_leg.py --out DIR [--seconds 480]

Runs `xentcompat run --device cuda` for each group of targets in turn (one group a process tree, so each group's
shards share the GPU and the cores); a group still running when the time is up is stopped and what its shards
measured is kept (the cells lost recorded as crashed, as `run` does for a failed shard). Writes, per group,
DIR/<group>.results.json.gz and DIR/<group>.log.gz (the shards' pytest output), to merge or re-judge elsewhere:
`xentcompat rejudge DIR/*.results.json.gz --out REPORT`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

GROUPS = (  # the order is the order of value: torch's APIs first, jax's compiled cells (slow to compile) last
    ("torch-family", ("torch", "huggingface", "keras-torch"), "all"),
    ("jax-family-eager", ("jax", "keras-jax"), "eager"),
    ("jax-family-compiled", ("jax", "keras-jax"), "compiled"),
    ("keras-torch", ("keras-torch",), "eager"),  # in torch-family too: a group of its own for a machine without keras
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=480.0, help="time for all groups together")
    parser.add_argument("-n", dest="workers", default="16")
    parser.add_argument("--groups", nargs="+", choices=[name for name, _, _ in GROUPS], help="default: all, in order")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.seconds
    for name, targets, mode in GROUPS:
        if args.groups and name not in args.groups:
            continue
        left = deadline - time.monotonic()
        if left < 20:
            print(f"gpu_leg: no time left for {name}", file=sys.stderr)
            continue
        run_group(name, targets, mode, args, left)
    return 0


def run_group(name: str, targets: tuple[str, ...], mode: str, args, seconds: float) -> None:
    out = args.out / name
    command = [sys.executable, "-m", "xentcompat.cli", "run", "--targets", *targets, "--device", "cuda",
               "--mode", mode, "-n", args.workers, "--out", str(out)]
    start = time.monotonic()
    child = subprocess.Popen(command, start_new_session=True)
    try:
        status = child.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGTERM)  # `run` stops its shards; their part files stay
        status = child.wait()
    print(f"gpu_leg: {name}: exit {status} after {time.monotonic() - start:.0f} s", file=sys.stderr)
    document = _document(out, targets, status)
    if document is not None:
        with gzip.open(args.out / f"{name}.results.json.gz", "wt", encoding="utf-8") as stream:
            json.dump(document, stream)
    _keep_logs(out / "shards", args.out / f"{name}.log.gz")
    shutil.rmtree(out, ignore_errors=True)


def _document(out: Path, targets: tuple[str, ...], status: int) -> dict | None:
    """The group's results: `run`'s document, or (stopped) each shard's salvaged records."""
    for found in (out / "results.json", out / "results.partial.json"):
        if found.exists() and status in (0, 1):
            return json.loads(found.read_text())
    from xentcompat.run.salvage import salvage
    from xentcompat.results.merge import merge_documents

    shard_dir = out / "shards"
    documents = []
    for target in targets:
        shard = shard_dir / f"{target}.json"
        documents.append(json.loads(shard.read_text()) if shard.exists() else salvage(target, shard_dir, status))
    return without_stopped_cells(merge_documents(documents)) if documents else None


def without_stopped_cells(document: dict) -> dict:
    """A stopped group's document without the cells its processes were running when stopped (recorded as crashed
    by `run`, but never measured): each listed under not run, stopped by the time limit."""
    from xentcompat.run.harness import DIED
    from xentcompat.run.rejudge import cell_key_text

    stopped = [r for r in document["records"] if (r.get("error") or {}).get("message") == DIED]
    reason = "running when the GPU leg's time limit stopped its shard: not measured"
    return {**document, "records": [r for r in document["records"] if r not in stopped],
            "not_run": document.get("not_run", []) + [{"cell": cell_key_text(r), "reason": reason} for r in stopped]}


def _keep_logs(shard_dir: Path, path: Path) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as stream:
        for log in sorted(shard_dir.glob("*.log")):
            stream.write(f"===== {log.name}\n{log.read_text(errors='replace')}\n")


if __name__ == "__main__":
    sys.exit(main())
