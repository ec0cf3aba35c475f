"""Progress of `run` (and `train`, `bench`): plain lines per target at each tenth when not on a terminal, with
counts read from the running shard's own record files, reaching the total."""

from __future__ import annotations

import io
import json
import re

import pytest

from tests.fault_adapter import FAULT
from xentcompat import cli
from xentcompat.adapters import base
from xentcompat.results.documents import read_results
from xentcompat.run import parts
from xentcompat.run.progress import duration, plain_line, progress_display

LINE = re.compile(r"^xentcompat: (?P<name>[\w-]+): (?P<done>\d+)/(?P<total>\d+) cells \((?P<percent>\d+)%\), "
                  r"(?P<elapsed>\d+ s|\d+ min \d+ s) elapsed(, about (\d+ s|\d+ min \d+ s) left)?$")


def test_plain_lines_name_the_count_the_share_the_time_and_what_is_left():
    assert plain_line("torch", 120, 1187, 35.2, "cells", left=313.4) == \
        "xentcompat: torch: 120/1187 cells (10%), 35 s elapsed, about 5 min 13 s left"
    assert plain_line("jax", 1187, 1187, 3725, "cells") == "xentcompat: jax: 1187/1187 cells (100%), 1 h 2 min elapsed"
    assert plain_line("keras-jax", 3, None, 2, "runs") == "xentcompat: keras-jax: 3 runs, 2 s elapsed"
    assert plain_line("jax", 1, 919, 23, "cells") == "xentcompat: jax: 1/919 cells (0%), 23 s elapsed"  # no rate yet
    assert duration(59.6) == "1 min 0 s"


def test_off_a_terminal_a_line_at_the_first_count_and_at_each_tenth():
    stream = io.StringIO()
    with progress_display("cells", stream=stream) as progress:
        progress.add("torch", total=40)
        for done in range(1, 41):
            progress.update("torch", done)
        progress.finish("torch")
    lines = stream.getvalue().splitlines()
    percents = [int(LINE.match(line)["percent"]) for line in lines]
    assert percents == [2] + [10 * step for step in range(1, 11)]  # the first count, then each tenth
    assert lines[-1].startswith("xentcompat: torch: 40/40 cells (100%)") and "left" not in lines[-1]


def test_a_stopped_count_still_gets_its_last_line():
    stream = io.StringIO()
    with progress_display("cells", stream=stream, live=False) as progress:
        progress.add("jax", total=10)
        progress.update("jax", 4)
        progress.finish("jax")
        progress.update("jax", 5)  # after the end: nothing more
    assert stream.getvalue().splitlines()[-1].startswith("xentcompat: jax: 4/10 cells (40%)")


def test_the_record_counter_reads_only_complete_lines(tmp_path):
    counter = parts.RecordCounter(tmp_path)
    assert counter() == (0, None)
    parts.write_planned(tmp_path, 3)
    (tmp_path / f"gw0{parts.RECORDS}").write_text('{"a": 1}\n{"a": 2}\n{"a"')
    assert counter() == (2, 3)
    with (tmp_path / f"gw0{parts.RECORDS}").open("a") as stream:
        stream.write(': 3}\n')
    (tmp_path / f"gw1{parts.RECORDS}").write_text('{"b": 1}\n')
    assert counter() == (4, 3)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_run_shows_counts_from_the_running_shard_that_reach_the_total(tmp_path, monkeypatch, capsys, workers):
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps({"cases": [{"id": f"c{index}", "logits": [[1.0 + index, 0.0, -1.0]], "labels": [0]}
                                           for index in range(12)]}))
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p tests.fault_target")
    monkeypatch.delenv("XC_FAULT", raising=False)
    monkeypatch.setitem(base.TARGETS, FAULT.name, FAULT)
    out = tmp_path / "out"
    status = cli.main(["run", "--targets", "fault", "--dtypes", "float32", "--cases", str(cases), "--only-cases",
                       "-n", workers, "--out", str(out)])
    assert status == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if LINE.match(line)]
    counts = [(int(LINE.match(line)["done"]), int(LINE.match(line)["total"])) for line in lines]
    records = len(read_results(out / "results.json")["records"])
    assert records == 12 and counts, lines
    assert {total for _, total in counts} == {records}  # the total is the shard's planned cells
    assert [done for done, _ in counts] == sorted(done for done, _ in counts)
    assert counts[-1] == (records, records) and lines[-1].startswith("xentcompat: fault: 12/12 cells (100%)")
    assert all(LINE.match(line)["name"] == "fault" for line in lines)


def test_the_longest_shards_start_first(monkeypatch):
    from dataclasses import replace

    from xentcompat.adapters import base
    from xentcompat.run import schedule

    seconds = {name: target.eager_seconds for name, target in base.TARGETS.items()}
    measured = sorted(seconds, key=seconds.get, reverse=True)
    assert measured[0] == "jax" and schedule.longest_first(sorted(measured)) == measured
    monkeypatch.setitem(base.TARGETS, "huggingface", replace(base.TARGETS["huggingface"], eager_seconds=None))
    assert schedule.longest_first(["torch", "huggingface"]) == ["huggingface", "torch"]  # not yet measured: early


OVERALL = re.compile(r"^xentcompat: all (?P<targets>\d+) targets: (?P<finished>\d+) done, (?P<done>\d+)"
                     r"(/(?P<total>\d+))? cells( \((?P<percent>\d+)%\))?, .* elapsed(, about .* left)?$")


def test_with_several_targets_an_overall_line_sums_them_and_says_how_many_are_done():
    stream = io.StringIO()
    with progress_display("cells", stream=stream, live=False) as progress:
        progress.add("torch")
        progress.add("jax")
        progress.update("torch", 10, 20)  # jax's total not known yet: no share of the whole
        for done in range(11, 21):
            progress.update("torch", done)
        progress.finish("torch")
        progress.update("jax", 5, 20)
        for done in range(6, 21):
            progress.update("jax", done)
        progress.finish("jax")
    overall = [OVERALL.match(line) for line in stream.getvalue().splitlines() if line.startswith("xentcompat: all ")]
    assert all(overall), stream.getvalue()
    assert [(m["finished"], m["done"], m["total"]) for m in overall][:2] == [("1", "20", None), ("1", "25", "40")]
    assert [int(m["percent"]) for m in overall[1:]] == [62, 70, 80, 90, 100]  # then each tenth of the whole
    assert overall[-1]["finished"] == "2" and "left" not in stream.getvalue().splitlines()[-1]


def test_one_target_has_no_overall_line():
    stream = io.StringIO()
    with progress_display("cells", stream=stream, live=False) as progress:
        progress.add("torch", total=4)
        for done in range(1, 5):
            progress.update("torch", done)
        progress.finish("torch")
    assert "all " not in stream.getvalue()
