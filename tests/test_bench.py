"""The bench pipeline without a framework: shapes, dtypes and device selection; the floor's arithmetic; the timing
summary from fake timings; bench.json written, read, refused when malformed (one line), merged beside shards; the
"Speed and memory" section rendered from a fake document, after the findings; the runner's workers as real
processes running the worker's own request loop over a fake target (one per target and device, one killed, one past
its time limit, Ctrl-C). Structure and arithmetic only: no test here depends on how fast anything runs."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.test_records import record
from xentcompat import cli, commands
from xentcompat.bench import floor, runner, timing, worker
from xentcompat.bench.grid import Shape, dtype_order, parse_dtypes, parse_shapes, select_devices
from xentcompat.report import bench as section
from xentcompat.report.html import render_html
from xentcompat.report.markdown import render_markdown
from xentcompat.results.bench import (BenchError, bench_document, check_bench, merge_bench, read_bench,
                                       write_bench)
from xentcompat.results.documents import read_results, results_document, write_json_atomic

BANDWIDTH = 10e9  # bytes per second, a fake machine's


def measurement(api: str, seconds: list[float], dtype: str = "float32", targets: str = "labels", mode: str = "eager",
                rows: int = 4, classes: int = 8, error: dict | None = None, backend: str | None = None) -> dict:
    entry = {"target": "torch", "framework": "torch", "backend": backend, "framework_version": "2.0", "api": api,
             "expression": api + "(x, y)", "targets": targets, "mode": mode, "device": "cpu", "dtype": dtype,
             "rows": rows, "classes": classes, "machine": "M-test",
             "bytes_to_move": floor.bytes_to_move(rows, classes, dtype, targets), "error": error}
    if error:
        return entry
    summary = timing.Timing(first_call=seconds[0] * 3, seconds=seconds).summary(mode == "compiled")
    return {**entry, **summary, "peak_bytes": 3 * 2**20, "peak_method": "VmHWM", "baseline_rss_bytes": 1,
            "rss_before_bytes": 1}


def fake_bench(measurements: list[dict] | None = None) -> dict:
    measurements = measurements if measurements is not None else [
        measurement("fast.api", [0.002, 0.001, 0.003]),
        measurement("slow.api", [0.006, 0.004, 0.005], mode="compiled"),
        measurement("probs.api", [0.008, 0.008], targets="probs"),
        measurement("broken.api", [], error={"type": "MemoryError", "message": "cannot allocate <128 GiB>"}),
    ]
    bandwidth = [{"machine": "M-test", "device": "cpu", "bytes_per_second": BANDWIDTH, "seconds": [0.1],
                  "bytes_moved": 10**9, "method": "numpy copy"}]
    return bench_document({"shapes": ["4x8"], "dtypes": ["float32"], "repeats": 3}, [{"machine": "M-test"}],
                          bandwidth, [], [{"name": "torch", "skipped": None, "failed": None}], measurements, 12.5)


def test_shapes_dtypes_and_their_order():
    assert parse_shapes("4096x32000, 8192×128256,4096x32000") == [Shape(4096, 32000), Shape(8192, 128256)]
    for bad in ("4096", "0x5", "ax3", "4096x"):
        with pytest.raises(ValueError, match="a shape is N×V"):
            parse_shapes(bad)
    assert parse_dtypes("float32,bfloat16") == ["float32", "bfloat16"]
    with pytest.raises(ValueError, match="unknown bench dtype 'float64'"):
        parse_dtypes("float64")
    assert dtype_order(["float32", "bfloat16"]) == ["bfloat16", "float32"]


def test_cuda_is_skipped_with_a_reason_where_no_gpu_is_visible_and_run_where_one_is():
    assert select_devices("cuda", {"cpu": "cpu"}) == ([], ["cuda: no such device visible to the framework"])
    assert select_devices("all", {"cpu": "cpu"}) == (["cpu"], [])
    assert select_devices("all", {"cpu": "cpu", "cuda": "H200"}) == (["cpu", "cuda"], [])
    assert select_devices("cuda", {"cpu": "cpu", "cuda": "H200"}) == (["cuda"], [])


def test_the_floor_is_the_bytes_that_must_move_over_the_bandwidth():
    rows, classes = 8192, 128256
    assert floor.bytes_to_move(rows, classes, "float32") == 2 * rows * classes * 4 + 8 * rows
    assert floor.bytes_to_move(rows, classes, "bfloat16", "probs") == 3 * rows * classes * 2
    assert floor.floor_seconds(10**9, 2e9) == 0.5
    assert floor.ratio(1.0, 0.25) == 4.0 and floor.ratio(None, 1.0) is None and floor.ratio(1.0, None) is None
    assert floor.fastest([None, 3.0, 2.0]) == 2.0 and floor.fastest([None]) is None


def test_the_bandwidth_is_bytes_moved_over_the_median_copy_time():
    found = floor.measure_bandwidth(repeats=3, size=1 << 20, threads=2)
    assert found["bytes_moved"] == 2 * (1 << 20) and len(found["seconds"]) == 3 and found["threads"] == 2
    assert found["bytes_per_second"] == pytest.approx(found["bytes_moved"] / sorted(found["seconds"])[1])


def test_the_warm_up_call_is_apart_and_the_compile_is_the_first_call_less_the_median():
    calls, resets = [], []
    measured = timing.time_step(lambda: calls.append(1), repeats=4, after_warm_up=lambda: resets.append(len(calls)))
    assert len(calls) == 5 and resets == [1] and len(measured.seconds) == 4
    summary = timing.Timing(first_call=2.0, seconds=[0.3, 0.1, 0.2, 0.4]).summary(compiled=True)
    assert summary["median_seconds"] == pytest.approx(0.25) and summary["min_seconds"] == 0.1
    assert (summary["q1_seconds"], summary["q3_seconds"]) == pytest.approx((0.175, 0.325))
    assert summary["compile_seconds"] == pytest.approx(1.75)
    assert timing.Timing(1.0, [0.5]).summary(compiled=False)["compile_seconds"] is None


def test_the_peak_mark_is_read_from_the_kernel_after_a_reset():
    if timing.status_bytes("VmHWM") is None:
        pytest.skip("no /proc/self/status here")
    was_reset = timing.reset_peak()
    peak, method = timing.host_peak_bytes(was_reset)
    assert peak >= timing.current_rss() * 0.5 and "VmHWM" in method


def test_bench_json_round_trips(tmp_path):
    document = fake_bench()
    write_bench(tmp_path / "bench.json", document)
    assert read_bench(tmp_path / "bench.json") == json.loads(json.dumps(document))


BAD = [
    pytest.param({"schema_version": 9}, "bench schema version 9", id="schema"),
    pytest.param({"measurements": {}}, "field 'measurements': expected a list", id="measurements"),
    pytest.param({"bandwidth": [{"machine": "M", "device": "cpu", "bytes_per_second": 0}]},
                 "bandwidth #0: field 'bytes_per_second'", id="bandwidth"),
    pytest.param({"measurements": [{**measurement("a", [0.1]), "rows": "4"}]}, "measurement #0: field 'rows'",
                 id="rows"),
    pytest.param({"measurements": [{**measurement("a", [0.1]), "seconds": []}]},
                 "measurement #0: field 'seconds'", id="no-times"),
    pytest.param({"measurements": [{**measurement("a", [0.1]), "error": "boom"}]}, "field 'error'", id="error"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_a_malformed_bench_file_is_refused_in_one_line(tmp_path, capsys, change, message):
    path = tmp_path / "bench.json"
    write_json_atomic(path, {**fake_bench(), **change})
    with pytest.raises(BenchError, match=message):
        read_bench(path)
    assert cli.main(["merge", str(path), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error and str(path) in error


def test_merge_carries_bench_beside_the_shards_and_render_keeps_it(tmp_path):
    shard, bench_file = tmp_path / "shard.json", tmp_path / "bench.json"
    write_json_atomic(shard, results_document([record("a")], []))
    write_bench(bench_file, fake_bench())
    assert cli.main(["merge", str(shard), str(bench_file), "--out", str(tmp_path / "merged")]) == 0
    merged = read_results(tmp_path / "merged" / "results.json")
    assert len(merged["records"]) == 1 and len(merged["bench"]["measurements"]) == 4
    assert cli.main(["render", str(tmp_path / "merged" / "results.json"), "--out", str(tmp_path / "again")]) == 0
    assert read_results(tmp_path / "again" / "results.json")["bench"] == merged["bench"]
    assert "## Speed and memory" in (tmp_path / "again" / "report.md").read_text()


def test_merging_bench_files_keeps_each_measurement_once_in_any_order():
    one = fake_bench()
    other = fake_bench([measurement("fast.api", [0.002, 0.001, 0.003], dtype="bfloat16")])
    merged = merge_bench([one, other, one])
    assert len(merged["measurements"]) == 5 and len(merged["bandwidth"]) == 1
    faster = {**other, "bandwidth": [{**other["bandwidth"][0], "bytes_per_second": 2 * BANDWIDTH}]}
    assert merge_bench([one, faster])["bandwidth"][0]["bytes_per_second"] == 2 * BANDWIDTH  # the machine's best
    assert merge_bench([other, one]) == merge_bench([one, other])
    failed = fake_bench([measurement("fast.api", [], error={"type": "MemoryError", "message": "under a cap"})])
    kept = merge_bench([failed, fake_bench([measurement("fast.api", [0.9])])])["measurements"]
    assert len(kept) == 1 and kept[0]["error"] is None  # a re-run that measured it shows the shape fits
    check_bench(merged, "merged")


def test_the_section_shows_each_api_against_the_floor_and_the_fastest():
    table, = section.tables(fake_bench())
    by_label = {row.label: row for row in table.rows}
    assert [row.label for row in table.rows] == ["fast.api", "slow.api", "probs.api", "broken.api"]
    labels_floor = floor.bytes_to_move(4, 8, "float32") / BANDWIDTH
    assert table.floors["labels"] == pytest.approx(labels_floor)
    assert by_label["slow.api"].to_floor == pytest.approx(0.005 / labels_floor)
    assert by_label["slow.api"].to_fastest == pytest.approx(2.5)
    assert by_label["probs.api"].to_floor == pytest.approx(0.008 / (floor.bytes_to_move(4, 8, "float32", "probs")
                                                                     / BANDWIDTH))
    assert by_label["slow.api"].compile_seconds == pytest.approx(3 * 0.006 - 0.005)  # first call less the median
    assert by_label["broken.api"].error == "MemoryError: cannot allocate <128 GiB>"
    lines = section.markdown_section(fake_bench())
    assert "| slow.api | compiled | 5 | 4–6 | " in "\n".join(lines)
    assert "| 2.50 | 3 | 0.0 |" in "\n".join(lines)
    assert "Could not run: `MemoryError: cannot allocate <128 GiB>`: broken.api (eager)." in lines
    assert "10.0 GB/s" in lines[2] and "3 timed calls" in lines[2] and "capped" not in lines[2]
    capped = fake_bench()
    capped["config"]["memory_limit_bytes"] = 4 * 2**30
    assert "Each worker's data segment was capped at 4.0 GiB" in section.markdown_section(capped)[2]


def test_a_peak_over_memory_an_earlier_measurement_left_resident_is_shown_as_a_lower_bound():
    resident = {**measurement("a", [0.001]), "baseline_rss_bytes": 100 * 2**20, "rss_before_bytes": 900 * 2**20}
    clean = {**measurement("b", [0.002]), "baseline_rss_bytes": 100 * 2**20, "rss_before_bytes": 110 * 2**20}
    assert section.peak_at_least(resident) and not section.peak_at_least(clean)
    text = "\n".join(section.markdown_section(fake_bench([resident, clean])))
    assert "| a | eager | 1 | 1–1 | " in text and "| ≥3 |" in text and "| b | eager |" in text


def test_a_prefix_repeated_once_per_nesting_level_is_said_once():
    error = {"type": "JaxRuntimeError", "message": "INTERNAL: Error dispatching computation: Error dispatching "
                                                   "computation: Out of memory allocating 524288000 bytes."}
    assert section.error_text(error) == ("JaxRuntimeError: INTERNAL: Error dispatching computation: Out of memory "
                                         "allocating 524288000 bytes.")


def test_failures_with_one_error_are_listed_once_and_a_merged_runs_caps_and_repeats_are_named():
    oom = {"type": "MemoryError", "message": "no room"}
    one = fake_bench([measurement("a", [0.1, 0.2]), measurement("b", [], error=oom), measurement("c", [], error=oom)])
    one["config"]["memory_limit_bytes"] = 4 * 2**30
    other = fake_bench([measurement("d", [0.1, 0.2, 0.3])])
    other["config"] = {**other["config"], "memory_limit_bytes": 8 * 2**30, "repeats": 3}
    lines = section.markdown_section(merge_bench([one, other]))
    assert "Could not run: `MemoryError: no room`: b (eager), c (eager)." in lines
    assert "of 2/3 timed calls" in lines[2] and "capped at 4.0 or 8.0 GiB" in lines[2]


def test_an_api_without_a_timing_path_is_named_apart_not_as_a_failure():
    untimed = measurement("linear.api", [], error={"type": "NoTimingPath", "message": "no timing path for adapter x"})
    lines = "\n".join(section.markdown_section(fake_bench([measurement("fast.api", [0.001]), untimed])))
    assert "Not timed (no timing path for its adapter): `linear.api`." in lines
    assert "| linear.api |" not in lines and "Could not run" not in lines


def test_targets_and_devices_not_measured_are_named_with_their_reasons():
    document = fake_bench()
    document["targets"] = [{"name": "torch", "skipped": None, "failed": None,
                            "devices_skipped": ["cuda: no such device visible to the framework"]},
                           {"name": "jax", "skipped": "jax is not installed (target jax)", "failed": None}]
    lines = section.markdown_section(document)
    assert ("Not measured: torch: cuda: no such device visible to the framework; jax: jax is not installed "
            "(target jax).") in lines


def test_the_section_comes_after_the_findings_and_its_text_is_escaped():
    document = {**results_document([record("a", loss="nan")], []), "bench": fake_bench()}
    markdown = render_markdown(document)
    assert markdown.index("## Findings") < markdown.index("## Speed and memory")
    page = render_html(document)
    assert page.index('id="findings"') < page.index('id="bench"')
    assert "&lt;128 GiB&gt;" in page and "<128 GiB>" not in page
    assert page.count("<table") == page.count("</table>")


FAKE_WORKER = ("-c", "import sys; from tests.test_bench import fake_worker; sys.exit(fake_worker(sys.argv[1:]))")
REPOSITORY = Path(__file__).resolve().parents[1]


def fake_listing() -> dict:
    """The fake target's listing (named torch, whose framework it never imports): an API per name in XC_FAKE_APIS,
    each with the modes in XC_FAKE_MODES, and the devices in XC_FAKE_DEVICES."""
    modes = os.environ.get("XC_FAKE_MODES", "eager").split(",")
    devices = {name: name for name in os.environ.get("XC_FAKE_DEVICES", "cpu").split(",")}
    return {"kind": "bench-list", "target": "torch", "devices": devices, "device_bandwidth": {},
            "environment": {"target": "torch", "python": "3.11.7", "platform": "Linux", "frameworks": {"torch": "2.0"},
                            "machine": "M-test"},
            "apis": [{"id": name, "framework": "torch", "backend": None, "expression": name, "targets": "labels",
                      "modes": modes} for name in os.environ["XC_FAKE_APIS"].split(",")]}


def fake_measure(request: dict) -> dict:
    """A measurement of the fake target, naming the process that took it; API `dies` kills its own process
    (SIGKILL), `exits` exits with status 3, `hangs` sleeps for a minute."""
    if request["api"] == "dies":
        os.kill(os.getpid(), signal.SIGKILL)
    if request["api"] == "exits":
        os._exit(3)
    if request["api"] == "hangs":
        time.sleep(60)
    shape, = parse_shapes(request["shape"])
    return {**measurement(request["api"], [0.001, 0.002], dtype=request["dtype"], mode=request["mode"],
                          rows=shape.rows, classes=shape.classes), "device": request["device"],
            "peak_method": f"pid {os.getpid()}"}


def fake_worker(argv: list[str]) -> int:
    """The bench worker's own loop (xentcompat.bench.worker.serve) over the fake target; with XC_FAKE_FRESH=exit a
    worker started after the first exits with status 4 before it is ready."""
    args = worker.arguments(argv)
    if args.list:
        write_json_atomic(args.list, fake_listing())
    elif os.environ.get("XC_FAKE_FRESH") == "exit":
        return 4
    with os.fdopen(args.reply_fd, "w", encoding="utf-8") as replies:
        worker.serve(fake_measure, sys.stdin, replies)
    return 0


@pytest.fixture
def fake_bench_run(tmp_path, monkeypatch):
    """Run `xentcompat bench` on the fake target, its workers real processes: (exit status, bench.json, the workers
    started)."""
    started = []

    class Recorded(runner.Worker):
        def __init__(self, *args):
            super().__init__(*args)
            started.append(self)

    monkeypatch.setattr(runner, "Worker", Recorded)
    monkeypatch.setattr(runner, "WORKER_COMMAND", FAKE_WORKER)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")])))
    monkeypatch.setattr(runner, "missing_requirement", lambda target: None)
    monkeypatch.setattr(floor, "COPY_BYTES", 1 << 20)

    def run(names: str, modes: str = "eager", targets: tuple[str, ...] = ("torch",), shapes=(Shape(4, 8),),
            dtypes=("float32",), **config) -> tuple:
        monkeypatch.setenv("XC_FAKE_APIS", names)
        monkeypatch.setenv("XC_FAKE_MODES", modes)
        settings = {"repeats": 1, "bandwidth_repeats": 1, "modes": tuple(modes.split(",")), **config}
        config = runner.Config(tuple(shapes), tuple(dtypes), **settings)
        status = commands.run_bench(list(targets), config, tmp_path)
        return status, read_bench(tmp_path / "bench.json"), started

    return run


def by_api(document: dict) -> dict[str, dict]:
    return {m["api"]: m for m in document["measurements"]}


def test_the_plan_orders_dtypes_and_modes_and_a_lost_measurement_holds_its_reason():
    listing = {"target": "torch", "environment": {"python": "3.11.7", "platform": "Linux", "frameworks": {"torch": "2.0"},
                                                 "machine": "M-test"}}
    api = {"id": "a", "framework": "torch", "backend": None, "expression": "a(x, y)", "targets": "labels",
           "modes": ["compiled", "eager"]}
    config = runner.Config((Shape(4, 8),), ("float32", "bfloat16"), modes=("eager", "compiled"))
    assert runner.planned(api, config) == [("bfloat16", "eager"), ("bfloat16", "compiled"), ("float32", "eager"),
                                           ("float32", "compiled")]
    assert runner.planned({**api, "modes": ["eager"]}, config) == [("bfloat16", "eager"), ("float32", "eager")]
    two = runner.Config((Shape(4, 8), Shape(2, 3)), ("float32",), modes=("eager",))
    listed = {**listing, "apis": [api, {**api, "id": "b"}]}
    assert [(p.api["id"], p.shape.text, p.device) for p in runner.plan(listed, "cpu", two)] == [
        ("a", "4x8", "cpu"), ("a", "2x3", "cpu"), ("b", "4x8", "cpu"), ("b", "2x3", "cpu")]
    died = {"type": "WorkerDied", "message": "the worker was killed by signal SIGKILL (-9)"}
    lost = runner.lost_measurements(runner.Planned(api, Shape(4, 8), "cpu", "float32", "compiled"), died, listing)
    assert [(m["dtype"], m["mode"], m["rows"], m["error"]) for m in lost] == [("float32", "compiled", 4, died)]
    assert lost[0]["bytes_to_move"] == floor.bytes_to_move(4, 8, "float32")
    check_bench(fake_bench(lost), "lost")


def test_one_worker_process_takes_every_measurement_of_a_target(fake_bench_run):
    status, document, started = fake_bench_run("a,b,c", modes="eager,compiled", shapes=(Shape(4, 8), Shape(2, 3)),
                                               dtypes=("float32", "bfloat16"))
    measured = document["measurements"]
    assert status == 0 and len(started) == 1 and len(measured) == 24
    assert [(m["api"], m["rows"], m["dtype"], m["mode"]) for m in measured] == [
        (api, rows, dtype, mode) for api in "abc" for rows in (4, 2) for dtype in ("bfloat16", "float32")
        for mode in ("eager", "compiled")]
    assert {m["peak_method"] for m in measured} == {f"pid {started[0].process.pid}"}
    assert all(m["error"] is None for m in measured) and started[0].process.returncode == 0
    assert document["targets"][0]["failed"] is None and document["targets"][0]["wall_seconds"] > 0


def test_each_device_after_the_cpu_gets_a_worker_of_its_own(fake_bench_run, monkeypatch):
    monkeypatch.setenv("XC_FAKE_DEVICES", "cpu,cuda")
    status, document, started = fake_bench_run("a,b", device="all")
    first, second = (f"pid {worker.process.pid}" for worker in started)
    assert status == 0 and [(m["device"], m["api"], m["peak_method"]) for m in document["measurements"]] == [
        ("cpu", "a", first), ("cpu", "b", first), ("cuda", "a", second), ("cuda", "b", second)]
    assert [worker.process.returncode for worker in started] == [0, 0]


@pytest.mark.parametrize(("api", "reason"), [("dies", "was killed by signal SIGKILL (-9) (out of memory?; "),
                                             ("exits", "exited with status 3 (see the log")])
def test_a_worker_that_dies_mid_measurement_loses_only_that_measurement(fake_bench_run, api, reason):
    status, document, started = fake_bench_run(f"a,{api},b,c")
    measured = by_api(document)
    assert status == 0 and len(started) == 2 and list(measured) == ["a", api, "b", "c"]
    assert measured[api]["error"]["type"] == "WorkerDied" and reason in measured[api]["error"]["message"]
    assert "bench-parts/torch.log" in measured[api]["error"]["message"]
    assert [measured[name]["error"] for name in ("a", "b", "c")] == [None, None, None]
    first, fresh = (f"pid {worker.process.pid}" for worker in started)
    assert [measured[name]["peak_method"] for name in ("a", "b", "c")] == [first, fresh, fresh]
    assert document["targets"][0]["failed"] is None


def test_a_measurement_past_the_time_limit_is_killed_and_the_rest_go_on(fake_bench_run):
    start = time.monotonic()
    status, document, started = fake_bench_run("a,hangs,b", worker_timeout=2.0)
    measured = by_api(document)
    assert time.monotonic() - start < 30 and status == 0 and len(started) == 2
    assert measured["hangs"]["error"]["type"] == "WorkerTimedOut"
    assert "ran past the time limit (2 s) and was killed" in measured["hangs"]["error"]["message"]
    assert started[0].process.returncode == -signal.SIGKILL
    assert measured["a"]["error"] is None and measured["b"]["error"] is None


def test_a_fresh_worker_that_cannot_start_leaves_the_rest_with_the_reason(fake_bench_run, monkeypatch):
    monkeypatch.setenv("XC_FAKE_FRESH", "exit")
    status, document, started = fake_bench_run("a,dies,b,c")
    measured = by_api(document)
    assert status == 3 and len(started) == 2 and measured["a"]["error"] is None
    assert "SIGKILL" in measured["dies"]["error"]["message"]
    assert all("exited with status 4" in measured[name]["error"]["message"] for name in ("b", "c"))
    assert "a fresh worker could not start on cpu (the worker exited with status 4" in \
        document["targets"][0]["failed"]


def test_a_worker_that_cannot_list_its_target_fails_the_target_with_the_reason(fake_bench_run, monkeypatch):
    monkeypatch.setenv("XC_FAKE_APIS", "")
    monkeypatch.setattr(runner, "WORKER_COMMAND", ("-c", "import sys; sys.exit(5)"))
    status, document, started = fake_bench_run("a")
    assert status == 3 and len(started) == 1 and document["measurements"] == []
    failed = document["targets"][0]["failed"]
    assert failed.startswith("listing its APIs failed (the worker exited with status 5 (see the log")


def test_ctrl_c_keeps_what_was_measured_and_skips_the_targets_after(fake_bench_run, monkeypatch, tmp_path):
    answers = []
    real_answer = runner.Worker._answer

    def answer(self, timeout):
        answers.append(timeout)
        if len(answers) == 3:  # ready, the first measurement, then Ctrl-C during the second
            raise KeyboardInterrupt
        return real_answer(self, timeout)

    monkeypatch.setattr(runner.Worker, "_answer", answer)
    status, document, started = fake_bench_run("a,b,c", targets=("torch", "jax"))
    assert status == 130 and len(started) == 1 and [m["api"] for m in document["measurements"]] == ["a"]
    assert started[0].process.returncode == -signal.SIGTERM
    assert [(t["name"], t["failed"] or t["skipped"]) for t in document["targets"]] == [
        ("torch", "stopped by SIGINT after 1 measurements"), ("jax", "stopped by SIGINT before it ran")]
    answers.clear()  # stopped again with that document in --out: it is kept, this one goes beside it
    earlier = (tmp_path / "bench.json").read_bytes()
    assert commands.run_bench(["torch"], runner.Config((Shape(4, 8),), ("float32",), repeats=1, bandwidth_repeats=1,
                                                       modes=("eager",)), tmp_path) == 130
    assert (tmp_path / "bench.json").read_bytes() == earlier
    assert read_bench(tmp_path / "bench.partial.json")["targets"][0]["failed"].startswith("stopped by SIGINT")


def test_sigterm_stops_the_bench_as_ctrl_c_does_and_says_so(fake_bench_run, monkeypatch):
    """SIGTERM to the command (a scheduler's, a CI limit's): the worker is stopped, the measurement taken is kept, the
    targets after are listed as not run, and the exit status is 128 + SIGTERM."""
    answers = []
    real_answer = runner.Worker._answer

    def answer(self, timeout):
        answers.append(timeout)
        if len(answers) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_answer(self, timeout)

    monkeypatch.setattr(runner.Worker, "_answer", answer)
    before = signal.getsignal(signal.SIGTERM)
    status, document, started = fake_bench_run("a,b,c", targets=("torch", "jax"))
    assert status == 128 + signal.SIGTERM and [m["api"] for m in document["measurements"]] == ["a"]
    assert started[0].process.returncode == -signal.SIGTERM
    assert [(t["name"], t["failed"] or t["skipped"]) for t in document["targets"]] == [
        ("torch", "stopped by SIGTERM after 1 measurements"), ("jax", "stopped by SIGTERM before it ran")]
    assert signal.getsignal(signal.SIGTERM) is before  # the handler lasts as long as the command


def test_apis_limits_the_run_to_the_apis_named(fake_bench_run):
    status, document, started = fake_bench_run("a,b", apis=("b",))
    assert status == 0 and [m["api"] for m in document["measurements"]] == ["b"]
    assert document["config"]["apis"] == ["b"]


def test_bad_bench_arguments_are_refused_in_one_line(tmp_path, capsys):
    for argv, message in ((["--shapes", "4096"], "a shape is N×V"), (["--repeats", "0"], "--repeats"),
                          (["--modes", "fast"], "unknown mode 'fast'"), (["--targets", "nope"], "unknown target")):
        assert cli.main(["bench", *argv, "--out", str(tmp_path)]) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and message in error
    assert not (tmp_path / "bench.json").exists()


def test_a_target_that_is_not_installed_is_listed_as_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "missing_requirement", lambda target: f"{target} is not installed")
    monkeypatch.setattr(floor, "COPY_BYTES", 1 << 20)
    config = runner.Config((Shape(4, 8),), ("float32",), repeats=1, bandwidth_repeats=1)
    document = runner.bench(["torch"], config, tmp_path)
    assert document["targets"] == [{"name": "torch", "skipped": "torch is not installed", "failed": None}]
    assert document["bandwidth"][0]["bytes_per_second"] > 0 and document["measurements"] == []
    check_bench(json.loads(json.dumps(document)), "skipped")


def test_an_apis_id_no_target_lists_is_refused_and_nothing_is_written(fake_bench_run, tmp_path):
    with pytest.raises(commands.UnknownApis, match="--apis 'torch.nn.CrossEntropyLos' is no API of torch"):
        fake_bench_run("a,b", apis=("a", "torch.nn.CrossEntropyLos"))
    assert not (tmp_path / "bench.json").exists()


def test_apis_ids_that_are_listed_measure_those_apis_alone(fake_bench_run):
    status, document, _ = fake_bench_run("a,b,c", apis=("b",))
    assert status == 0 and [m["api"] for m in document["measurements"]] == ["b"]


def test_cuda_without_a_gpu_measures_nothing_and_keeps_the_earlier_document(fake_bench_run, tmp_path):
    """--device cuda where no framework sees a GPU: one line saying so, not "no API of torch", and the earlier
    bench.json left as it was (it was replaced by one of 0 measurements)."""
    status, document, _ = fake_bench_run("a")
    earlier = (tmp_path / "bench.json").read_bytes()
    with pytest.raises(commands.NothingWritten, match=r"^nothing measured \(torch cuda: no such device visible to "
                                                      r"the framework\); nothing written$"):
        fake_bench_run("a", device="cuda")
    assert status == 0 and (tmp_path / "bench.json").read_bytes() == earlier
