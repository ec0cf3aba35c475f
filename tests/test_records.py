"""results.json: strict JSON for non-finite numbers, atomic writes, schema refusal, order-independent merge."""

from __future__ import annotations

import json
import math
import os
import re
import stat

import pytest

from xentcompat.results import documents as records_module
from xentcompat.results.documents import (SCHEMA_VERSION, ResultsError, decode_number, encode, read_results,
                                       results_document, write_json_atomic)
from xentcompat.results.merge import merge_documents, merge_files
from xentcompat.results.record import RECORD_FIELDS, Outcome, Record, catalogue_tags


def record(case: str, loss: str = "ok", value=1.0, **overrides) -> dict:
    base = {name: None for name in RECORD_FIELDS}
    base.update(framework="torch", framework_version="2.13.0", api="torch.nn.CrossEntropyLoss", case=case,
                dtype="float32", device="cpu", mode="eager", area="extreme", seconds=0.01, options={}, tier="realistic",
                loss={"outcome": loss, "value": value, "reference": 1.0, "error_units": 0.0},
                grad={"outcome": "ok", "max_error_units": 0.1, "nan_count": 0, "inf_count": 0,
                      "elementwise_max_units": 0.2, "norm": 1.0, "reference_norm": 1.0},
                expected={"loss": "ok", "grad": "ok", "cause": None, "reason": None, "upstream": None,
                          "kernel_path": None, "varies": None}, tags=catalogue_tags(case))
    base.update(overrides)
    return base


def test_nonfinite_numbers_round_trip_as_strings():
    encoded = encode({"a": [math.nan, math.inf, -math.inf, 1.5]})
    assert encoded == {"a": ["nan", "inf", "-inf", 1.5]}
    json.dumps(encoded, allow_nan=False)
    assert math.isnan(decode_number("nan")) and decode_number("-inf") == -math.inf


def test_write_then_read(tmp_path):
    path = tmp_path / "results.json"
    write_json_atomic(path, results_document([record("a", value=math.nan)], []))
    document = read_results(path)
    assert document["records"][0]["loss"]["value"] == "nan"


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    write_json_atomic(path, results_document([record("old")], []))

    def broken_replace(source, target):
        raise KeyboardInterrupt

    monkeypatch.setattr(records_module.os, "replace", broken_replace)
    with pytest.raises(KeyboardInterrupt):
        write_json_atomic(path, results_document([record("new")], []))
    assert read_results(path)["records"][0]["case"] == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_written_files_get_ordinary_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "results.json", results_document([], []))
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "results.json").stat().st_mode) == 0o644


@pytest.mark.parametrize(
    "text, message",
    [
        pytest.param('{"schema_version": 99, "records": []}', "schema version 99", id="other-schema"),
        pytest.param("{not json", "corrupt results file", id="corrupt"),
        pytest.param('{"schema_version": ' + str(SCHEMA_VERSION) + ', "records": [{"api": "x"}]}', "lacks field",
                     id="incomplete-record"),
        pytest.param('{"schema_version": 1, "records": []}', "re-run `xentcompat run`", id="old-schema"),
    ],
)
def test_unreadable_results_refused_in_one_line(tmp_path, text, message):
    path = tmp_path / "results.json"
    path.write_text(text)
    with pytest.raises(ResultsError, match=message) as error:
        read_results(path)
    assert "\n" not in str(error.value)


def test_merge_is_order_independent_and_counts_duplicates():
    first = results_document([record("a"), record("b")], [{"target": "torch"}])
    second = results_document([record("b", loss="inaccurate"), record("c")], [{"target": "torch"}])
    forward, backward = merge_documents([first, second]), merge_documents([second, first])
    assert forward == backward
    assert [r["case"] for r in forward["records"]] == ["a", "b", "c"]
    assert forward["duplicates_dropped"] == 1


def test_merge_files_refuses_a_bad_shard(tmp_path):
    good = tmp_path / "good.json"
    write_json_atomic(good, results_document([record("a")], []))
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 0}')
    with pytest.raises(ResultsError, match="bad.json"):
        merge_files([good, bad])


def test_merge_keeps_the_records_of_two_machines_apart():
    here = results_document([record("a", machine="M-1")], [{"target": "torch", "machine": "M-1"}])
    there = results_document([record("a", loss="nan", machine="M-2")], [{"target": "torch", "machine": "M-2"}])
    merged = merge_documents([here, there])
    assert [(r["machine"], r["loss"]["outcome"]) for r in merged["records"]] == [("M-1", "ok"), ("M-2", "nan")]
    assert merged["duplicates_dropped"] == 0 and len(merged["environments"]) == 2


def test_results_hash_covers_the_measurements_not_the_timings_or_the_order():
    from xentcompat.report.markdown import results_hash

    first = results_document([record("a", seconds=0.01), record("b", seconds=0.02)], [])
    again = results_document([record("b", seconds=9.0), record("a", seconds=3.0)], [])
    other = results_document([record("a", seconds=0.01), record("b", loss="nan")], [])
    assert results_hash(first) == results_hash(again)
    assert results_hash(first) != results_hash(other)


def test_two_measurements_of_one_cell_that_disagree_are_listed_not_dropped():
    from xentcompat.report.markdown import render_markdown

    merged = merge_documents([results_document([record("a", machine="M-1")], []),
                              results_document([record("a", loss="nan", machine="M-1")], [])])
    assert len(merged["records"]) == 1 and merged["duplicates_dropped"] == 1
    [conflict] = merged["conflicts"]
    assert {conflict["kept"], conflict["other"]} == {"ok / ok", "nan / ok"} and conflict["cell"]["case"] == "a"
    assert "## Conflicting measurements" in render_markdown(merged)


def test_a_record_is_one_typed_definition_with_outcomes_from_the_vocabulary():
    typed = Record.from_json(record("a", loss="inf"))
    assert typed.observed == ("inf", "ok") and typed.to_json() == record("a", loss="inf")
    with pytest.raises(ValueError, match="field 'loss.outcome': 'good' is not an outcome"):
        Record.from_json(record("a", loss="good"))
    with pytest.raises(ValueError, match="lacks field 'options'"):
        Record.from_json({k: v for k, v in record("a").items() if k != "options"})


def test_a_records_parts_are_typed_and_written_back_as_they_were_read():
    fault = {"type": "AcceleratorError", "message": "CUDA error", "device_fault": True, "context_usable": None}
    relation = {"relation": "shift", "holds": None, "loss": 1.0, "transformed": None, "error_units": None,
                "skipped": "not checked on a batch this big"}
    written = record("a", loss="raised", error=fault, relations=[relation])
    typed = Record.from_json(written)
    assert typed.loss.outcome is Outcome.RAISED and typed.loss.value == 1.0 and typed.grad.norm == 1.0
    assert typed.error.device_fault is True and typed.error.context_usable is None
    assert typed.relations[0].holds is None and typed.relations[0].skipped.startswith("not checked")
    assert typed.to_json() == written and json.loads(json.dumps(typed.to_json())) == written
    plain = record("a", loss="raised", error={"type": "IndexError", "message": "out of range"})
    assert Record.from_json(plain).to_json()["error"] == {"type": "IndexError", "message": "out of range"}


@pytest.mark.parametrize("part, value, message", [
    ("grad", {"outcome": "ok", "speed": 1}, "field 'grad': unknown key 'speed'"),
    ("expected", {"loss": "ok"}, "field 'expected.grad': None is not an outcome"),
    ("error", "IndexError", "field 'error': expected an object"),
    ("relations", {"relation": "shift"}, "field 'relations': expected a list"),
])
def test_a_malformed_part_is_refused_with_its_field_named(part, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Record.from_json(record("a", **{part: value}))


def test_a_record_written_before_records_kept_their_tags_gets_its_catalogue_cases():
    older = {name: value for name, value in record("neg-inf-target").items() if name != "tags"}
    assert Record.from_json(older).tags == ["far-below-max", "mask", "masked-target"]
    assert Record.from_json({**older, "case": "my-own-batch"}).tags == []


def test_tags_that_are_not_a_list_of_facts_are_refused():
    with pytest.raises(ValueError, match="field 'tags': expected a list of facts"):
        Record.from_json(record("neg-inf-target", tags="mask"))


def test_a_record_is_as_promised_when_its_outcome_is_one_its_cause_allows():
    allowing = {"loss": "silent", "grad": "silent", "cause": "unchecked", "reason": None, "upstream": None,
                "kernel_path": None, "varies": None, "also": [["crashed", "crashed"]]}
    crashed = Record.from_json(record("label-huge", loss="crashed", grad={"outcome": "crashed"}, expected=allowing))
    assert crashed.as_promised and crashed.to_json()["expected"]["also"] == [["crashed", "crashed"]]
    plain = Record.from_json(record("label-huge", loss="crashed", grad={"outcome": "crashed"},
                                    expected={**allowing, "also": None}))
    assert not plain.as_promised and "also" not in plain.to_json()["expected"]
