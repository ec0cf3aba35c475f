"""Every bad input to `xentcompat run / merge / render`, table-driven, through the command line itself: each one
exits 2 with one line on stderr naming what is wrong (the case and field, the argument, the file and record), never a
traceback, and writes nothing (an earlier results.json stays as it was)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_records import record
from xentcompat import cli
from xentcompat.results.documents import SCHEMA_VERSION, results_document, write_json_atomic

GOOD = {"id": "mine", "logits": [[1.0, "-inf", 0.5], [0, 1, "nan"]], "labels": [0, 2]}
OPTION_PROBES = (
    ("ignore_index", "1", "string"), ("ignore_index", 1.0, "float"), ("ignore_index", True, "bool"),
    ("ignore_index", 2**70, "huge"), ("extra_dims", [2.0], "float"), ("extra_dims", [0], "zero"),
    ("extra_dims", 2, "not-a-list"), ("weight", ["1", "2", "3"], "strings"), ("weight", [True, 1, 1], "bools"),
    ("weight", 1.0, "not-a-list"), ("weight", [1, 2], "wrong-length"), ("weight", [1, "nan", 1], "nan"),
    ("label_smoothing", True, "bool"), ("label_smoothing", "0.1", "string"), ("label_smoothing", 1.5, "above-1"),
    ("label_smoothing", -0.1, "negative"), ("reduction", None, "null"), ("reduction", "avg", "word"),
    ("mean_over", "batch", "word"), ("mean_over", 1, "number"), ("mean_over", "rows", "set-by-the-api"),
)
JSON_CASES = [
    pytest.param({"cases": []}, "at least one case", id="no-cases"),
    pytest.param({"cases": {}}, "at least one case", id="cases-not-a-list"),
    pytest.param([GOOD], "at least one case", id="top-level-list"),
    pytest.param({"cases": [7]}, "case #0: expected an object", id="case-not-an-object"),
    pytest.param({"cases": [{**GOOD, "id": ""}]}, "case #0: field 'id'", id="empty-id"),
    pytest.param({"cases": [{**GOOD, "id": 3}]}, "case #0: field 'id'", id="id-a-number"),
    pytest.param({"cases": [{k: v for k, v in GOOD.items() if k != "logits"}]}, "field 'logits'", id="no-logits"),
    pytest.param({"cases": [{**GOOD, "logits": []}]}, "field 'logits'", id="empty-logits"),
    pytest.param({"cases": [{**GOOD, "logits": [1, 2]}]}, "field 'logits'", id="logits-1d"),
    pytest.param({"cases": [{**GOOD, "logits": [[]]}]}, "field 'logits'", id="empty-row"),
    pytest.param({"cases": [{**GOOD, "logits": [[1, 2], [3]]}]}, "case 'mine': field 'logits'", id="ragged"),
    pytest.param({"cases": [{**GOOD, "logits": [[1, "big", 0]]}]}, "field 'logits'", id="word-in-logits"),
    pytest.param({"cases": [{**GOOD, "logits": [[1, None, 0]]}]}, "field 'logits'", id="null-in-logits"),
    pytest.param({"cases": [{**GOOD, "logits": [[1, True, 0]]}]}, "field 'logits'", id="bool-in-logits"),
    pytest.param({"cases": [{**GOOD, "logits": [[1, [2], 0]]}]}, "field 'logits'", id="nested-logit"),
    pytest.param({"cases": [{**GOOD, "logits": [[1, 10**400, 0], [0, 1, 2]]}]}, "beyond float64's range",
                 id="integer-logit-beyond-float64"),
    pytest.param({"cases": [{**GOOD, "labels": [0, "a"]}]}, "field 'labels'", id="labels-not-ints"),
    pytest.param({"cases": [{**GOOD, "labels": [0, 1.0]}]}, "field 'labels'", id="label-float"),
    pytest.param({"cases": [{**GOOD, "labels": [0, True]}]}, "field 'labels'", id="label-bool"),
    pytest.param({"cases": [{**GOOD, "labels": 0}]}, "field 'labels'", id="labels-not-a-list"),
    pytest.param({"cases": [{**GOOD, "labels": [0]}]}, "labels shape", id="label-count"),
    pytest.param({"cases": [{**GOOD, "labels": [0, 2**70]}]}, "does not fit a 64-bit integer", id="label-huge"),
    pytest.param({"cases": [{**GOOD, "probs": [[1, 0, 0], [0, 1, 0]]}]}, "case 'mine'", id="labels-and-probs"),
    pytest.param({"cases": [{"id": "p", "logits": [[1, 2]], "probs": [[0.5, "nan"]]}]}, "field 'probs'",
                 id="probs-nan"),
    pytest.param({"cases": [{"id": "p", "logits": [[1, 2]]}]}, "case 'p'", id="no-targets"),
    pytest.param({"cases": [{**GOOD, "dtypes": ["float8"]}]}, "field 'dtypes'", id="dtype"),
    pytest.param({"cases": [{**GOOD, "dtypes": []}]}, "field 'dtypes'", id="no-dtypes"),
    pytest.param({"cases": [{**GOOD, "dtypes": "float32"}]}, "field 'dtypes'", id="dtypes-a-string"),
    pytest.param({"cases": [{**GOOD, "description": 3}]}, "field 'description'", id="description-a-number"),
    pytest.param({"cases": [{**GOOD, "options": []}]}, "field 'options'", id="options-a-list"),
    pytest.param({"cases": [{**GOOD, "options": {"smoothing": 0.1}}]}, "unknown option 'smoothing'",
                 id="option-name"),
    *(pytest.param({"cases": [{**GOOD, "options": {name: value}}]}, f"field 'options.{name}'" if tag not in (
        "wrong-length", "above-1", "negative") else name, id=f"{name}-{tag}") for name, value, tag in OPTION_PROBES),
    pytest.param({"cases": [{**GOOD, "id": "random-moderate"}]}, "the id of a catalogue case", id="catalogue-id"),
    pytest.param({"cases": [{**GOOD, "colour": 1}]}, "unknown field 'colour'", id="unknown-field"),
    pytest.param({"cases": [GOOD, GOOD]}, "duplicate id", id="duplicate"),
]
TEXT_CASES = [
    pytest.param('{"cases": [{"id": "a", "logits": [[1e400, 0]], "labels": [0]}]}', "not a finite number",
                 id="1e400"),
    pytest.param('{"cases": [{"id": "a", "logits": [[NaN, 0]], "labels": [0]}]}', "not a finite number", id="NaN"),
    pytest.param('{"cases": [{"id": "a", "logits": [[Infinity, 0]], "labels": [0]}]}', "not a finite number",
                 id="Infinity"),
    pytest.param("[" * 100_000 + "]" * 100_000, "nested too deeply", id="deep-nesting"),
    pytest.param("{nope", "not valid JSON", id="not-json"),
    pytest.param("", "not valid JSON", id="empty-file"),
]
NPZ_CASES = [
    pytest.param({"logits": np.zeros(3), "labels": np.zeros(1, int)}, "array 'logits'", id="logits-1d"),
    pytest.param({"logits": np.zeros((0, 3)), "labels": np.zeros(0, int)}, "array 'logits'", id="no-rows"),
    pytest.param({"logits": np.array([["a", "b"]]), "labels": np.zeros(1, int)}, "array 'logits'", id="strings"),
    pytest.param({"logits": np.zeros((1, 3)), "labels": np.zeros(1)}, "array 'labels'", id="labels-float"),
    pytest.param({"logits": np.zeros((1, 3)), "labels": np.zeros((1, 1), int)}, "array 'labels'", id="labels-2d"),
    pytest.param({"logits": np.zeros((1, 3)), "labels": np.array([2**64 - 1], np.uint64)}, "64-bit",
                 id="label-uint64-huge"),
    pytest.param({"logits": np.zeros((1, 2)), "probs": np.array([[0.5, np.nan]])}, "array 'probs'", id="probs-nan"),
    pytest.param({"logits": np.zeros((1, 3)), "labels": np.zeros(1, int), "extra": np.zeros(1)}, "array 'extra'",
                 id="unknown-array"),
    pytest.param({"logits": np.zeros((2, 3)), "labels": np.zeros(1, int)}, "labels shape", id="label-count"),
]
RUN_ARGUMENTS = [
    pytest.param(["--targets", "mxnet"], "unknown target 'mxnet'", id="target"),
    pytest.param(["--dtypes", "float8"], "unknown dtype 'float8'", id="dtype"),
    pytest.param(["-n", "0"], "-n must be", id="no-workers"),
    pytest.param(["-n", "two"], "-n must be", id="workers-word"),
    pytest.param(["--only-cases"], "--only-cases needs --cases", id="only-cases-alone"),
    pytest.param(["--cell-timeout", "-1"], "--cell-timeout", id="negative-cell-timeout"),
    pytest.param(["--cell-timeout", "inf"], "--cell-timeout", id="infinite-cell-timeout"),
    pytest.param(["--cell-timeout", "nan"], "--cell-timeout", id="nan-cell-timeout"),
    pytest.param(["--memory-budget", "inf"], "--memory-budget", id="infinite-memory-budget"),
    pytest.param(["--idle-timeout", "inf"], "--idle-timeout", id="infinite-idle-timeout"),
    pytest.param(["-n", "²"], "-n must be", id="superscript-workers"),
    pytest.param(["--idle-timeout", "0"], "--idle-timeout", id="zero-idle-timeout"),
    pytest.param(["--idle-timeout", "soon"], "--idle-timeout", id="idle-timeout-word"),
    pytest.param(["--mode", "lazy"], "--mode", id="mode"),
    pytest.param(["--device", "tpu"], "--device", id="device"),
    pytest.param(["--cases", "absent.json"], "no such case file", id="case-file-missing"),
    pytest.param(["--colour"], "unrecognized arguments: --colour", id="unknown-flag"),
]


def _one_line_exit_2(capsys, argv: list[str], message: str) -> str:
    status = cli.main(argv)
    error = capsys.readouterr().err.strip()
    assert status == 2, error
    assert "\n" not in error and "Traceback" not in error, error
    assert message in error, error
    return error


@pytest.fixture
def earlier(tmp_path):
    """An --out that already holds a results.json; the fixture checks it is unchanged after the test."""
    out = tmp_path / "out"
    write_json_atomic(out / "results.json", results_document([record("earlier")], []))
    before = (out / "results.json").read_text()
    yield out
    assert (out / "results.json").read_text() == before
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]


@pytest.mark.parametrize("document, message", JSON_CASES)
def test_bad_json_case_file(tmp_path, capsys, earlier, document, message):
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps(document))
    error = _one_line_exit_2(capsys, ["run", "--targets", "torch", "--cases", str(cases), "--out", str(earlier)],
                             message)
    assert "cases.json" in error


@pytest.mark.parametrize("text, message", TEXT_CASES)
def test_bad_json_text(tmp_path, capsys, earlier, text, message):
    cases = tmp_path / "cases.json"
    cases.write_text(text)
    _one_line_exit_2(capsys, ["run", "--cases", str(cases), "--out", str(earlier)], message)


@pytest.mark.parametrize("arrays, message", NPZ_CASES)
def test_bad_npz_case_file(tmp_path, capsys, earlier, arrays, message):
    cases = tmp_path / "batch.npz"
    np.savez(cases, **arrays)
    error = _one_line_exit_2(capsys, ["run", "--cases", str(cases), "--out", str(earlier)], message)
    assert "case 'batch'" in error or "batch.npz" in error


def test_npz_that_is_not_an_archive(tmp_path, capsys, earlier):
    cases = tmp_path / "batch.npz"
    cases.write_bytes(b"PK\x03\x04 not really")
    _one_line_exit_2(capsys, ["run", "--cases", str(cases), "--out", str(earlier)], "not a readable .npz file")


def test_compressed_npz_whose_header_claims_more_than_it_holds(tmp_path, capsys, earlier):
    """A (1e7, 1e7) float64 header over a few bytes, deflated: refused before anything is allocated."""
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**7, 10**7)})
    cases = tmp_path / "batch.npz"
    with zipfile.ZipFile(cases, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("logits.npy", header.getvalue() + bytes(64))
        archive.writestr("labels.npy", _npy(np.zeros(2, int)))
    _one_line_exit_2(capsys, ["run", "--cases", str(cases), "--out", str(earlier)], "its header claims a "
                     "10000000x10000000 float64 array (800000000000000 bytes)")


def _npy(array: np.ndarray) -> bytes:
    import io

    stream = io.BytesIO()
    np.save(stream, array)
    return stream.getvalue()


def test_npz_named_after_a_catalogue_case_is_refused(tmp_path, capsys, earlier):
    """Its id is the file's name: its records would be dropped at merge as duplicates of the catalogue's."""
    cases = tmp_path / "random-moderate.npz"
    np.savez(cases, logits=np.zeros((2, 3)), labels=np.zeros(2, int))
    _one_line_exit_2(capsys, ["run", "--cases", str(cases), "--out", str(earlier)], "the id of a catalogue case")


def test_npz_with_a_pickled_array_is_refused(tmp_path, capsys, earlier):
    cases = tmp_path / "batch.npz"
    np.savez(cases, logits=np.array([[1.0, 2.0]], dtype=object), labels=np.zeros(1, int))
    _one_line_exit_2(capsys, ["run", "--cases", str(cases), "--out", str(earlier)], "batch.npz")


@pytest.mark.parametrize("argument, message", RUN_ARGUMENTS)
def test_bad_run_argument(tmp_path, capsys, earlier, monkeypatch, argument, message):
    monkeypatch.chdir(tmp_path)
    _one_line_exit_2(capsys, ["run", *argument, "--out", str(earlier)], message)


COUNT_ARGUMENTS = [
    pytest.param(["train", "--seeds", "²"], "--seeds must be a positive whole number", id="superscript-seeds"),
    pytest.param(["train", "--epochs", "²"], "--epochs must be a positive whole number", id="superscript-epochs"),
    pytest.param(["train", "--seeds", "0"], "--seeds must be a positive whole number", id="no-seeds"),
    pytest.param(["train", "--seeds", "20000000"], "--seeds must be at most 1000", id="seeds-beyond-reason"),
    pytest.param(["train", "--epochs", "1e3"], "--epochs must be a positive whole number", id="epochs-float"),
    pytest.param(["bench", "--repeats", "²"], "--repeats must be a positive whole number", id="superscript-repeats"),
    pytest.param(["bench", "--repeats", "100000"], "--repeats must be at most 10000", id="repeats-beyond-reason"),
]


@pytest.mark.parametrize("argument, message", COUNT_ARGUMENTS)
def test_bad_count_argument_leaves_the_out_as_it_was(tmp_path, capsys, earlier, argument, message):
    _one_line_exit_2(capsys, [*argument, "--out", str(earlier)], message)


def test_missing_out(capsys):
    _one_line_exit_2(capsys, ["run"], "--out")


def test_no_command(capsys):
    _one_line_exit_2(capsys, [], "COMMAND")


def _shard(tmp_path, document) -> str:
    path = tmp_path / "shard.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


BAD_RECORD = {"schema_version": SCHEMA_VERSION, "environments": [], "records": [{**record("a"), "loss": "ok"}]}
RESULTS_FILES = [
    pytest.param("garbage", "corrupt results file", id="garbage"),
    pytest.param("", "corrupt results file", id="empty"),
    pytest.param([], "schema version None", id="a-list"),
    pytest.param({"schema_version": 2, "records": []}, "schema version 2", id="old-schema"),
    pytest.param({"schema_version": SCHEMA_VERSION, "records": [{"api": "x"}]}, "record #0 lacks field",
                 id="thin-record"),
    pytest.param({"schema_version": SCHEMA_VERSION, "records": {}}, "field 'records'", id="records-not-a-list"),
    pytest.param({"schema_version": SCHEMA_VERSION, "records": [7]}, "record #0", id="record-not-an-object"),
    pytest.param(BAD_RECORD, "record #0: field 'loss'", id="loss-a-string"),
    pytest.param({**BAD_RECORD, "records": [{**record("a"), "expected": None}]}, "record #0: field 'expected'",
                 id="expected-null"),
    pytest.param({**BAD_RECORD, "records": [record("a", loss="good")]}, "record #0: field 'loss.outcome'",
                 id="outcome-not-in-the-vocabulary"),
    pytest.param({**BAD_RECORD, "records": [{**record("a"), "options": None}]}, "record #0: field 'options'",
                 id="options-null"),
    pytest.param({"schema_version": SCHEMA_VERSION, "environments": {}, "records": []}, "field 'environments'",
                 id="environments-not-a-list"),
]


@pytest.mark.parametrize("command", ["merge", "render"])
@pytest.mark.parametrize("document, message", RESULTS_FILES)
def test_bad_results_file(tmp_path, capsys, earlier, command, document, message):
    error = _one_line_exit_2(capsys, [command, _shard(tmp_path, document), "--out", str(earlier)], message)
    assert "shard.json" in error


@pytest.mark.parametrize("command", ["merge", "render"])
def test_results_file_missing_or_a_directory(tmp_path, capsys, earlier, command):
    _one_line_exit_2(capsys, [command, str(tmp_path / "absent.json"), "--out", str(earlier)], "no such results file")
    _one_line_exit_2(capsys, [command, str(tmp_path), "--out", str(earlier)], "not a results file")


@pytest.mark.parametrize("command", ["merge", "render"])
def test_out_at_a_file(tmp_path, capsys, command):
    shard = tmp_path / "shard.json"
    write_json_atomic(shard, results_document([record("a")], []))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    _one_line_exit_2(capsys, [command, str(shard), "--out", str(blocker)], "cannot write")


def test_render_takes_one_file(tmp_path, capsys):
    _one_line_exit_2(capsys, ["render", "a.json", "b.json", "--out", str(tmp_path)], "unrecognized arguments")


@pytest.mark.parametrize("command", [["run"], ["merge", "a.json"], ["render", "a.json"], ["rejudge", "a.json"],
                                     ["train"], ["bench"], ["check", "mod:fn", "--framework", "numpy"]])
def test_an_empty_out_is_refused_before_anything_runs(tmp_path, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    _one_line_exit_2(capsys, [*command, "--out", ""], "--out needs a directory")
    assert list(tmp_path.iterdir()) == []


def test_repeated_targets_and_dtypes_run_once(tmp_path, monkeypatch):
    """`--targets torch torch --dtypes float32 float32`: one shard, each cell once."""
    seen = []
    monkeypatch.setattr(cli, "missing_requirement", lambda target: f"{target} is not installed")
    monkeypatch.setattr(cli, "_check_run_args", _recording(cli._check_run_args, seen))
    assert cli.main(["run", "--targets", "torch", "torch", "--dtypes", "float32", "float32",
                     "--out", str(tmp_path / "out")]) == 0
    targets, dtypes = seen[0]
    assert targets == ["torch"] and dtypes == ["float32"]


def _recording(check_run_args, seen):
    def recorded(args):
        targets = check_run_args(args)
        seen.append((targets, args.dtypes))
        return targets
    return recorded
