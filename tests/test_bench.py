"""The bench pipeline without a framework: shapes, dtypes and device selection; the floor's arithmetic; the timing
summary from fake timings; bench.json written, read, refused when malformed (one line), merged beside shards; the
"Speed and memory" section rendered from a fake document, after the findings. Structure and arithmetic only: no
test here depends on how fast anything runs."""

from __future__ import annotations

import json

import pytest

from tests.test_records import record
from xentcompat.bench import floor, runner, timing
from xentcompat.bench.document import (BenchError, bench_document, check_bench, merge_bench, read_bench,
                                       write_bench)
from xentcompat.bench.grid import Shape, dtype_order, parse_dtypes, parse_shapes, select_devices
from xentcompat.report import bench as section
from xentcompat.report import cli
from xentcompat.report.html import render_html
from xentcompat.report.markdown import render_markdown
from xentcompat.report.records import read_results, results_document, write_json_atomic

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


def test_each_measurement_has_its_own_worker_and_one_that_dies_leaves_its_reason():
    listing = {"target": "torch", "environment": {"frameworks": {"torch": "2.0"}, "machine": "M-test"}}
    api = {"id": "a", "framework": "torch", "backend": None, "expression": "a(x, y)", "targets": "labels",
           "modes": ["compiled", "eager"]}
    config = runner.Config((Shape(4, 8),), ("float32", "bfloat16"), modes=("eager", "compiled"))
    assert runner.planned(api, config) == [("bfloat16", "eager"), ("bfloat16", "compiled"), ("float32", "eager"),
                                           ("float32", "compiled")]
    assert runner.planned({**api, "modes": ["eager"]}, config) == [("bfloat16", "eager"), ("float32", "eager")]
    lost = runner.lost_measurements(api, Shape(4, 8), "cpu", "float32", "compiled", "killed by signal SIGKILL (-9)",
                                    listing)
    assert [(m["dtype"], m["mode"], m["error"]["message"]) for m in lost] == [
        ("float32", "compiled", "killed by signal SIGKILL (-9)")]
    check_bench(fake_bench(lost), "lost")


def test_ctrl_c_keeps_what_was_measured_and_skips_the_targets_after(tmp_path, monkeypatch):
    listing = {"kind": "bench-list", "target": "torch", "devices": {"cpu": "cpu"}, "device_bandwidth": {},
               "environment": {"target": "torch", "frameworks": {"torch": "2.0"}, "machine": "M-test"},
               "apis": [{"id": "a", "framework": "torch", "backend": None, "expression": "a(x, y)",
                         "targets": "labels", "modes": ["eager"]}]}
    calls = []

    def worker(target, arguments, log, timeout):
        if "--list" in arguments:
            write_json_atomic(tmp_path / "bench-parts" / f"{target}-list.json", {**listing, "target": target})
            return 0
        calls.append(arguments)
        if len(calls) == 2:
            raise KeyboardInterrupt
        write_json_atomic(arguments[arguments.index("--out") + 1],
                          {"kind": "bench-part", "done": True, "measurements": [measurement("a", [0.1])]})
        return 0

    monkeypatch.setattr(runner, "_worker", worker)
    monkeypatch.setattr(runner, "missing_requirement", lambda target: None)
    monkeypatch.setattr(floor, "COPY_BYTES", 1 << 20)
    config = runner.Config((Shape(4, 8),), ("float32", "bfloat16"), repeats=1, bandwidth_repeats=1)
    assert runner.run_bench(["torch", "jax"], config, tmp_path) == 130
    assert len(calls) == 2 and all(call[call.index("--api") + 1] == "a" for call in calls)
    document = read_bench(tmp_path / "bench.json")
    assert len(document["measurements"]) == 1
    assert [(t["name"], t["failed"] or t["skipped"]) for t in document["targets"]] == [
        ("torch", "stopped by SIGINT after 1 measurements"), ("jax", "stopped by SIGINT before it ran")]


def test_apis_limits_the_run_to_the_apis_named(tmp_path, monkeypatch):
    listing = {"kind": "bench-list", "target": "torch", "devices": {"cpu": "cpu"}, "device_bandwidth": {},
               "environment": {"target": "torch", "frameworks": {"torch": "2.0"}, "machine": "M-test"},
               "apis": [{"id": name, "framework": "torch", "backend": None, "expression": name,
                         "targets": "labels", "modes": ["eager"]} for name in ("a", "b")]}
    measured = []

    def worker(target, arguments, log, timeout):
        if "--list" in arguments:
            write_json_atomic(tmp_path / "bench-parts" / "torch-list.json", listing)
        else:
            measured.append(arguments[arguments.index("--api") + 1])
        return 0

    monkeypatch.setattr(runner, "_worker", worker)
    monkeypatch.setattr(runner, "missing_requirement", lambda target: None)
    monkeypatch.setattr(floor, "COPY_BYTES", 1 << 20)
    config = runner.Config((Shape(4, 8),), ("float32",), repeats=1, bandwidth_repeats=1, apis=("b",))
    document = runner.bench(["torch"], config, tmp_path)
    assert measured == ["b"] and document["config"]["apis"] == ["b"]
    assert document["measurements"][0]["error"]["type"] == "WorkerDied"  # the fake worker wrote nothing


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
