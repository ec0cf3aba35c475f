"""`xentcompat bench` and `xentcompat train` as commands: measure (`bench.runner`, `training.runner`), write the
document, render its section (`report.bench`, `report.training`) as a page and Markdown of its own, and say what was
written. The exit status: 0 when every target that could run finished, 3 when one failed (the others kept), 130 when
Ctrl-C stopped it and 143 when SIGTERM did (what was measured is written). A document that is not complete (stopped,
or a target failed) does not replace a complete earlier one in --out: it goes to bench.partial.json or
training.partial.json beside it. Nothing measured at all (every target skipped, no device to run on) is an error in
one line, with nothing written."""

from __future__ import annotations

import sys
from pathlib import Path

from xentcompat.bench import runner as bench_runner
from xentcompat.bench.runner import BENCH_FILE, Config as BenchConfig
from xentcompat.report.bench import html_page as bench_page, markdown_section as bench_markdown
from xentcompat.report.md_tables import readable_markdown
from xentcompat.report.training import html_page as training_page, markdown_section as training_markdown, write_plots
from xentcompat.results.bench import write_bench
from xentcompat.results.documents import write_text_atomic
from xentcompat.results.training import write_training
from xentcompat.run.stopping import sigterm_as_ctrl_c, stopped_by
from xentcompat.training import runner as training_runner
from xentcompat.training.experiment import Config as TrainingConfig
from xentcompat.training.runner import PLOTS_DIR, TRAINING_FILE


def write_bench_outputs(document: dict, out: Path) -> None:
    """bench.json, and the report section as bench.md and a self-contained bench.html."""
    out.mkdir(parents=True, exist_ok=True)
    write_bench(out / BENCH_FILE, document)
    write_text_atomic(out / "bench.md", readable_markdown("\n".join(bench_markdown(document)) + "\n"))
    write_text_atomic(out / "bench.html", bench_page(document))


class NothingWritten(ValueError):
    """Nothing was measured (every target skipped, no device, an unknown --apis id): nothing is written."""


class UnknownApis(NothingWritten):
    """`--apis` named an id no target that ran lists: nothing is written."""


def _refuse_nothing_measured(document: dict, found: list, stopped: bool, noun: str) -> None:
    if found or stopped or any(t.get("failed") for t in document["targets"]):
        return
    reasons = [f"{t['name']}: {t['skipped']}" for t in document["targets"] if t.get("skipped")]
    reasons += [f"{t['name']} {why}" for t in document["targets"] for why in t.get("devices_skipped") or ()]
    if reasons:  # none: an --apis id no target lists (said by _refuse_unknown_apis)
        raise NothingWritten(f"nothing {noun} ({'; '.join(reasons)}); nothing written")


def run_bench(targets: list[str], config: BenchConfig, out: Path) -> int:
    """`xentcompat bench`: measure, write bench.json, bench.md and bench.html; the exit status. NothingWritten, with
    nothing written, when nothing was measured or an `--apis` id is no API of the targets run (each target lists its
    APIs in its worker)."""
    with sigterm_as_ctrl_c():
        document = bench_runner.bench(targets, config, out)
    measured = document["measurements"]
    failed = [t["name"] for t in document["targets"] if t.get("failed")]
    stopped = any(str(t.get("failed", "")).startswith("stopped by SIG") for t in document["targets"])
    _refuse_nothing_measured(document, measured, stopped, "measured")
    _refuse_unknown_apis(config, document, targets)
    wrote = _write_or_keep(document, out, BENCH_FILE, not failed, write_bench_outputs, write_bench)
    print(f"xentcompat: {len(measured)} measurements ({sum(1 for m in measured if m.get('error'))} could not run) "
          f"in {document['wall_seconds']:.0f} s; wrote {wrote}")
    return 128 + stopped_by() if stopped else (3 if failed else 0)


def _write_or_keep(document: dict, out: Path, name: str, complete: bool, write_outputs, write_document) -> str:
    """Write the document and its pages; a document that is not complete goes to NAME.partial.json instead when a
    complete earlier NAME is there (left as it was, with its pages). What was written, in words."""
    earlier = out / name
    if complete or not earlier.exists():
        write_outputs(document, out)
        stem = name.removesuffix(".json")
        return f"{earlier}, {out / (stem + '.md')} and {out / (stem + '.html')}"
    partial = out / f"{name.removesuffix('.json')}.partial.json"
    write_document(partial, document)
    print(f"xentcompat: kept the earlier {earlier} (this document is not complete)", file=sys.stderr)
    return str(partial)


def _refuse_unknown_apis(config: BenchConfig, document: dict, targets: list[str]) -> None:
    listed = {m["api"] for m in document["measurements"]}
    unknown = [api for api in config.apis if api not in listed]
    ran = [t["name"] for t in document["targets"] if not t.get("skipped") and not t.get("failed")]
    if unknown and len(ran) == len(targets):  # a target that did not list its APIs may hold the id
        raise UnknownApis(f"--apis {unknown[0]!r} is no API of {', '.join(ran)}; nothing written (API ids are the "
                          "`api` column of a report, e.g. 'torch.nn.CrossEntropyLoss')")


def write_training_outputs(document: dict, out: Path) -> None:
    """training.json, and the report section as training.md and a self-contained training.html."""
    out.mkdir(parents=True, exist_ok=True)
    write_training(out / TRAINING_FILE, document)
    write_plots(document, out / PLOTS_DIR)
    section = "\n".join(training_markdown(document, plots=PLOTS_DIR)) + "\n"
    write_text_atomic(out / "training.md", readable_markdown(section))
    write_text_atomic(out / "training.html", training_page(document))


def run_training(targets: list[str], config: TrainingConfig, out: Path) -> int:
    """`xentcompat train`: train, write training.json, training.md, training.html and the plots; the exit status."""
    with sigterm_as_ctrl_c():
        document, interrupted = training_runner.train(targets, config, out)
    failed = [t["name"] for t in document["targets"] if t.get("failed")]
    _refuse_nothing_measured(document, document["runs"], interrupted, "trained")
    wrote = _write_or_keep(document, out, TRAINING_FILE, not (failed or interrupted), write_training_outputs,
                           write_training)
    trained = [t for t in document["targets"] if not t.get("skipped")]
    times = ", ".join(f"{t['name']} {t['wall_seconds']:.0f} s" for t in trained)
    print(f"xentcompat: {len(document['runs'])} training runs ({times}); wrote {wrote}")
    return 128 + stopped_by() if interrupted else (3 if failed else 0)
