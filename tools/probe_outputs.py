"""Hostile-user probes of the commands that write into --out (run, merge, render, rejudge, train, bench).

    python tools/probe_outputs.py [--checkout DIR] [--only NAME ...]

Each probe runs the command line of the checkout (`xentcompat.cli` of DIR, default this one, with the `fault` target
of tests/fault_target.py) in a fresh directory, the way a user would get it wrong, and says what happened:

    error      refused in one line (exit 2); nothing measured or pre-existing lost
    held       did the right thing (kept what was measured, ran once, escaped the text, ...)
    silent     accepted something wrong and said nothing
    traceback  an uncaught exception
    misleading failed without naming what was wrong (an exit 3 that blames an adapter)
    lost       a measurement, or an older complete output, lost or overwritten
    outside    wrote outside --out
    orphans    left processes running

Run it on two checkouts (`git worktree add /tmp/before COMMIT`) for a before/after table. Needs torch (train, bench)
and pgrep; Linux. Takes about three minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[1]
CASES = [{"id": f"c{index}", "logits": [[7.25 if index == 3 else 1.0, 0.0, -1.0]], "labels": [0]}
         for index in range(6)]
RUN = ["run", "--targets", "fault", "--dtypes", "float32", "--only-cases", "-n", "1", "--idle-timeout", "60"]
TRAIN = ["train", "--targets", "torch", "--seeds", "1", "--epochs", "1", "--regimes", "standard"]
BENCH = ["bench", "--targets", "torch", "--shapes", "8x10", "--dtypes", "float32", "--modes", "eager", "--apis",
         "torch.nn.CrossEntropyLoss", "--repeats", "1"]


@dataclass
class Said:
    status: int
    error: str

    @property
    def one_line(self) -> bool:
        """Exit 2 and one error line (progress lines before it, or argparse's usage line, are not the error)."""
        errors = [line for line in self.error.splitlines() if ": error:" in line]
        return self.status == 2 and len(errors) == 1 and not self.traceback

    @property
    def traceback(self) -> bool:
        return "Traceback" in self.error


class Probe:
    """One fresh directory and the checkout's command line."""

    def __init__(self, checkout: Path, work: Path):
        self.checkout, self.work = checkout, work

    def environment(self, **extra: str) -> dict:
        return {**os.environ, "PYTHONPATH": str(self.checkout), "PYTEST_ADDOPTS": "-p tests.fault_target",
                "XC_FAULT": "none", **extra}

    def start(self, argv: list[str], **extra: str) -> subprocess.Popen:
        program = ("import json, os, sys, tests.fault_target; from xentcompat import cli; "
                   "sys.exit(cli.main(json.loads(os.environ['XC_ARGV'])))")
        return subprocess.Popen([sys.executable, "-c", program], cwd=extra.pop("cwd", self.checkout),
                                env=self.environment(XC_ARGV=json.dumps(argv), **extra), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)

    def cli(self, argv: list[str], timeout: float = 300, **extra: str) -> Said:
        child = self.start(argv, **extra)
        try:
            _, error = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            return Said(-9, "hung: " + child.communicate()[1])
        return Said(child.returncode, error)

    def cases(self, cases: list[dict] = CASES, name: str = "cases.json") -> Path:
        path = self.work / name
        path.write_text(json.dumps({"cases": cases}))
        return path

    def run(self, out: Path, *extra: str, fault: str = "none", **environment: str) -> Said:
        return self.cli(RUN + ["--cases", str(self.cases()), *extra, "--out", str(out)], XC_FAULT=fault,
                        **environment)

    def earlier(self, out: Path) -> bytes:
        """A complete earlier run in `out`: its results.json."""
        self.run(out)
        return (out / "results.json").read_bytes()


def _records(path: Path) -> list[dict]:
    try:
        return json.loads(path.read_text())["records"]
    except (OSError, ValueError, KeyError):
        return []


def _kept(out: Path) -> list[dict]:
    return _records(out / "results.json") + _records(out / "results.partial.json")


def _refused_or_lost(said: Said, unchanged: bool) -> str:
    """The worst of what happened: an older output lost, then a traceback, then a silent exit 0."""
    if not unchanged:
        return "lost"
    if said.traceback:
        return "traceback"
    return "error" if said.one_line else "silent" if said.status == 0 else "misleading"


def _alive(pattern: str) -> list[str]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    return [pid for pid in found if Path(f"/proc/{pid}/status").exists()
            and "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()]


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def _part_lines(out: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in (out / "shards").glob(".fault.json.parts/*.records.jsonl"))


def _kill_all(pattern: str) -> None:
    for pid in _alive(pattern):
        os.kill(int(pid), signal.SIGKILL)


# ---------------------------------------------------------------- the probes


def concurrent_runs(p: Probe) -> str:
    out = p.work / "out"
    first = p.start(RUN + ["--cases", str(p.cases()), "--cell-timeout", "4", "--out", str(out)], XC_FAULT="hang")
    _wait_for(lambda: _part_lines(out) >= 1, 60)
    second = p.run(out)
    first.communicate(timeout=120)
    crashed = [r for r in _kept(out) if r["case"] == "c3" and r["loss"]["outcome"] == "crashed"]
    return "error" if second.one_line and crashed else "lost"


def cell_timeout_inf(p: Probe) -> str:
    out = p.work / "out"
    before = p.earlier(out)
    return _refused_or_lost(p.run(out, "--cell-timeout", "inf"), (out / "results.json").read_bytes() == before)


def _stop_run(p: Probe, signum: int) -> tuple[Path, list[str]]:
    out = p.work / "out"
    command = p.start(RUN + ["--cases", str(p.cases()), "--out", str(out)], XC_FAULT="hang")
    _wait_for(lambda: _part_lines(out) >= 3, 60)
    time.sleep(1.0)
    command.send_signal(signum)
    command.communicate(timeout=60)
    time.sleep(3.0)
    left = _alive(f"{out}/shards/fault.json")
    _kill_all(f"{out}/shards/fault.json")
    return out, left


def sigterm_run(p: Probe) -> str:
    out, left = _stop_run(p, signal.SIGTERM)
    return "orphans" if left else "held" if len(_kept(out)) >= 3 else "lost"


def sigkill_run(p: Probe) -> str:
    _, left = _stop_run(p, signal.SIGKILL)
    return "orphans" if left else "held"


def merge_part_files(p: Probe) -> str:
    out, _ = _stop_run(p, signal.SIGINT)
    said = p.cli(["merge", str(out / "shards" / ".fault.json.parts"), "--out", str(p.work / "merged")])
    return "held" if said.status == 0 and len(_records(p.work / "merged" / "results.json")) >= 3 else (
        "traceback" if said.traceback else "lost")


def _stop_worker(p: Probe, argv: list[str], worker: str, document: str) -> str:
    """SIGTERM to the command once its worker (a process whose command line matches `worker`) has started."""
    out = p.work / "out"
    command = p.start(argv + ["--out", str(out)])
    _wait_for(lambda: bool(_alive(worker)), 60)
    time.sleep(2.0)
    command.send_signal(signal.SIGTERM)
    command.communicate(timeout=60)
    time.sleep(2.0)
    left = _alive(worker)
    _kill_all(worker)
    return "orphans" if left else "held" if (out / document).exists() else "lost"


def sigterm_train(p: Probe) -> str:
    argv = ["train", "--targets", "torch", "--seeds", "5", "--epochs", "5", "--regimes", "standard"]
    return _stop_worker(p, argv, f"xentcompat.training.worker.*{p.work}", "training.json")


def sigterm_bench(p: Probe) -> str:
    argv = BENCH[:4] + ["2048x32000"] + BENCH[5:-1] + ["20"]
    return _stop_worker(p, argv, "xentcompat.bench.worker", "bench.json")


def _keeps_earlier(p: Probe, first: list[str], second: list[str], document: str) -> str:
    out = p.work / "out"
    p.cli(first + ["--out", str(out)])
    before = (out / document).read_bytes()
    said = p.cli(second + ["--out", str(out)])
    return _refused_or_lost(said, (out / document).read_bytes() == before)


def train_target_not_installed(p: Probe) -> str:
    return _keeps_earlier(p, TRAIN, ["train", "--targets", "huggingface", "--seeds", "1", "--epochs", "1"],
                          "training.json")


def bench_unknown_api(p: Probe) -> str:
    return _keeps_earlier(p, BENCH, BENCH[:-3] + ["no.such.api", "--repeats", "1"], "bench.json")


def bench_cuda_without_gpu(p: Probe) -> str:
    return _keeps_earlier(p, BENCH, BENCH + ["--device", "cuda"], "bench.json")


def _outside_untouched(p: Probe, link: str, argv: list[str], target_is_dir: bool) -> str:
    out, outside = p.work / "out", p.work / "outside"
    (out / link).parent.mkdir(parents=True, exist_ok=True)
    if target_is_dir:
        outside.mkdir()
        (outside / "precious.txt").write_text("precious")
    else:
        outside.write_text("precious")
    (out / link).symlink_to(outside)
    said = p.cli(argv + ["--out", str(out)]) if argv[0] != "run" else p.run(out)
    untouched = ((outside / "precious.txt").read_text() == "precious" and len(list(outside.iterdir())) == 1
                 if target_is_dir else outside.read_text() == "precious")
    return ("traceback" if said.traceback else "outside") if not untouched else (
        "error" if said.one_line else "held" if said.status in (0, 1) else "misleading")


def symlinked_shard_log(p: Probe) -> str:
    return _outside_untouched(p, "shards/fault.log", ["run"], False)


def symlinked_training_parts(p: Probe) -> str:
    return _outside_untouched(p, "training-parts", TRAIN, True)


def symlinked_bench_parts(p: Probe) -> str:
    return _outside_untouched(p, "bench-parts", BENCH, True)


def npz_named_after_a_catalogue_case(p: Probe) -> str:
    path = p.work / "random-moderate.npz"
    np.savez(path, logits=np.zeros((5, 4)), labels=np.zeros(5, dtype=np.int64))
    out = p.work / "out"
    said = p.cli(["run", "--targets", "fault", "--dtypes", "float32", "-n", "1", "--cases", str(path), "--out",
                  str(out)])
    if said.traceback or said.one_line:
        return "traceback" if said.traceback else "error"
    mine = [r for r in _records(out / "results.json") if r["case"] == "random-moderate"]
    return "held" if len(mine) == 2 else "lost"


def training_of_two_machines(p: Probe) -> str:
    out = p.work / "trained"
    p.cli(TRAIN + ["--out", str(out)])
    document = json.loads((out / "training.json").read_text())
    other = {**document, "environments": [{**e, "machine": "another-machine"} for e in document["environments"]],
             "runs": [{**r, "machine": "another-machine"} if "machine" in r else r for r in document["runs"]]}
    (p.work / "other.json").write_text(json.dumps(other))
    shard = p.work / "shard" / "results.json"
    p.earlier(shard.parent)
    said = p.cli(["merge", str(shard), str(out / "training.json"), str(p.work / "other.json"), "--out",
                  str(p.work / "merged")])
    try:
        runs = json.loads((p.work / "merged" / "results.json").read_text())["training"]["runs"]
    except (OSError, ValueError, KeyError):
        return "traceback" if said.traceback else "lost"
    return "held" if len(runs) == 2 * len(document["runs"]) else "lost"


def superscript_seeds(p: Probe) -> str:
    return _refused_or_lost(p.cli(["train", "--seeds", "²", "--out", str(p.work / "out")]), True)


def superscript_epochs(p: Probe) -> str:
    return _refused_or_lost(p.cli(["train", "--epochs", "²", "--out", str(p.work / "out")]), True)


def superscript_workers(p: Probe) -> str:
    return _refused_or_lost(p.cli(["run", "--targets", "fault", "-n", "²", "--out", str(p.work / "out")]), True)


def memory_budget_inf(p: Probe) -> str:
    out = p.work / "out"
    before = p.earlier(out)
    shard = (out / "shards" / "fault.json").exists()
    said = p.run(out, "--memory-budget", "inf")
    unchanged = (out / "results.json").read_bytes() == before and (out / "shards" / "fault.json").exists() == shard
    return _refused_or_lost(said, unchanged)


def npz_whose_header_lies(p: Probe) -> str:
    path = p.work / "bomb.npz"
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**7, 10**7)}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("logits.npy", "w") as member:
            np.lib.format.write_array_header_1_0(member, header)
            member.write(b"\0" * 64)
        with archive.open("labels.npy", "w") as member:
            np.save(member, np.zeros(3, dtype=np.int64))
    said = p.cli(RUN + ["--cases", str(path), "--out", str(p.work / "out")])
    return _refused_or_lost(said, True)


def _render_mutated(p: Probe, mutate) -> str:
    source, out = p.work / "source", p.work / "out"
    p.earlier(source)
    before = p.earlier(out)
    document = json.loads((source / "results.json").read_text())
    mutate(document)
    (p.work / "mutated.json").write_text(json.dumps(document))
    said = p.cli(["render", str(p.work / "mutated.json"), "--out", str(out)])
    return _refused_or_lost(said, (out / "results.json").read_bytes() == before)


def render_outcome_a_string(p: Probe) -> str:
    return _render_mutated(p, lambda d: d["records"][0].update(loss="ok"))


def render_environments_numbers(p: Probe) -> str:
    return _render_mutated(p, lambda d: d.update(environments=[3]))


def render_error_units_text(p: Probe) -> str:
    return _render_mutated(p, lambda d: d["records"][0]["loss"].update(max_error_units="big"))


def render_targets_an_object(p: Probe) -> str:
    return _render_mutated(p, lambda d: d.update(targets={"fault": 1}))


def render_tampered_verdict(p: Probe) -> str:
    source = p.work / "source"
    p.earlier(source)
    document = json.loads((source / "results.json").read_text())
    document["records"][0]["loss"]["outcome"] = "inaccurate"
    (p.work / "tampered.json").write_text(json.dumps(document))
    return _refused_or_lost(p.cli(["render", str(p.work / "tampered.json"), "--out", str(p.work / "out")]), True)


def _case_id_shown(p: Probe, case_id: str, raw: str) -> str:
    """The case's cell crashes (the fault target kills itself on it), so the report names the case."""
    cases = p.cases([{"id": case_id, "logits": [[7.25, 0.0, -1.0]], "labels": [0]}], "odd.json")
    out = p.work / "out"
    said = p.cli(RUN + ["--cases", str(cases), "--out", str(out)], XC_FAULT="kill")
    if not (out / "report.md").exists():
        return "traceback" if said.traceback else "error" if said.one_line else "silent"
    shown = (out / "report.md").read_text()
    return "silent" if raw in shown else "held" if "onerror" in shown or "2Jb" in shown else "unjudged (id not shown)"


def html_in_a_case_id(p: Probe) -> str:
    return _case_id_shown(p, "<img src=x onerror=alert(1)>", "<img")


def terminal_escape_in_a_case_id(p: Probe) -> str:
    return _case_id_shown(p, "a\x1b[2Jb", "\x1b")


def empty_out(p: Probe) -> str:
    here = p.work / "cwd"
    here.mkdir()
    said = p.cli(RUN + ["--cases", str(p.cases()), "--out", ""], cwd=str(here))
    return "outside" if any(here.iterdir()) else _refused_or_lost(said, True)


def pytest_temp_in_system_temp(p: Probe) -> str:
    system = p.work / "tmp"
    system.mkdir()
    p.run(p.work / "out", "-n", "2", TMPDIR=str(system))  # xdist workers: where pytest-of-USER came from
    return "outside" if any(system.glob("pytest-of-*")) else "held"


def dtypes_twice(p: Probe) -> str:
    out = p.work / "out"
    p.cli(["run", "--targets", "fault", "--dtypes", "float32", "float32", "--only-cases", "-n", "1", "--cases",
           str(p.cases()), "--out", str(out)])
    log = (out / "shards" / "fault.log").read_text()
    return "silent" if " 12 passed" in log or "12 passed" in log else "held"


PROBES = [concurrent_runs, cell_timeout_inf, sigterm_run, sigkill_run, merge_part_files, sigterm_train,
          sigterm_bench, train_target_not_installed, bench_unknown_api, bench_cuda_without_gpu, symlinked_shard_log,
          symlinked_training_parts, symlinked_bench_parts, npz_named_after_a_catalogue_case,
          training_of_two_machines, superscript_seeds, superscript_epochs, superscript_workers, memory_budget_inf,
          npz_whose_header_lies, render_outcome_a_string, render_environments_numbers, render_error_units_text,
          render_targets_an_object, render_tampered_verdict, html_in_a_case_id, terminal_escape_in_a_case_id,
          empty_out, pytest_temp_in_system_temp, dtypes_twice]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, default=HERE)
    parser.add_argument("--only", nargs="+", default=[p.__name__ for p in PROBES])
    args = parser.parse_args()
    found = {}
    for probe in (p for p in PROBES if p.__name__ in args.only):
        work = Path(tempfile.mkdtemp(prefix=f"probe-{probe.__name__}-"))
        try:
            found[probe.__name__] = probe(Probe(args.checkout.resolve(), work))
        except Exception as error:  # the probe itself could not judge: say so, never count it
            found[probe.__name__] = f"unjudged ({type(error).__name__}: {error})"
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"{probe.__name__:36} {found[probe.__name__]}", flush=True)
    counts = collections.Counter(outcome.split(" ")[0] for outcome in found.values())
    print(json.dumps({"checkout": str(args.checkout), "probes": len(found), "counts": dict(sorted(counts.items())),
                      "outcomes": found}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
