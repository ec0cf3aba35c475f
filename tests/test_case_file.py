"""User case files: what loads, and the one-line error for everything that does not."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from xentcompat.reference.case_file import CaseFileError, load_cases

GOOD = {"id": "mine", "logits": [[1.0, "-inf", 0.5], [0, 1, "nan"]], "labels": [0, 2]}


def write(tmp_path, document) -> str:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(document))
    return str(path)


def test_loads_json_with_nonfinite_strings_and_options(tmp_path):
    entry = {**GOOD, "dtypes": ["float32"], "options": {"reduction": "sum", "weight": [1, 2, 3]},
             "description": "my batch"}
    (case,) = load_cases(write(tmp_path, {"cases": [entry]}))
    assert case.id == "mine" and case.area == "user" and case.dtypes == ("float32",)
    assert case.logits[0, 1] == -math.inf and math.isnan(case.logits[1, 2])
    assert case.options.reduction == "sum" and case.options.weight == (1, 2, 3)


def test_loads_npz(tmp_path):
    path = tmp_path / "batch.npz"
    np.savez(path, logits=np.zeros((2, 3)), labels=np.array([0, 2]))
    (case,) = load_cases(str(path))
    assert case.id == "batch" and case.logits.shape == (2, 3)


@pytest.mark.parametrize(
    "document, message",
    [
        pytest.param({"cases": []}, "at least one case", id="no-cases"),
        pytest.param({"cases": [{**GOOD, "id": ""}]}, "case #0: field 'id'", id="empty-id"),
        pytest.param({"cases": [{**GOOD, "logits": [[1, 2], [3]]}]}, "case 'mine': field 'logits'", id="ragged"),
        pytest.param({"cases": [{**GOOD, "logits": [[1, "big", 0]]}]}, "field 'logits'", id="word-in-logits"),
        pytest.param({"cases": [{**GOOD, "labels": [0, "a"]}]}, "field 'labels'", id="labels-not-ints"),
        pytest.param({"cases": [{**GOOD, "labels": [0]}]}, "labels shape", id="label-count"),
        pytest.param({"cases": [{**GOOD, "dtypes": ["float8"]}]}, "field 'dtypes'", id="dtype"),
        pytest.param({"cases": [{**GOOD, "options": {"smoothing": 0.1}}]}, "unknown option 'smoothing'",
                     id="option-name"),
        pytest.param({"cases": [{**GOOD, "options": {"reduction": "avg"}}]}, "field 'options.reduction'",
                     id="option-value"),
        *(pytest.param({"cases": [{**GOOD, "options": {name: value}}]}, f"field 'options.{name}'", id=f"{name}-{tag}")
          for name, value, tag in (
              ("ignore_index", "1", "string"), ("ignore_index", 1.0, "float"), ("ignore_index", True, "bool"),
              ("ignore_index", 2**70, "huge"), ("extra_dims", [2.0], "float"), ("extra_dims", [0], "zero"),
              ("extra_dims", 2, "not-a-list"), ("weight", ["1", "2", "3"], "strings"),
              ("weight", [True, 1, 1], "bools"), ("weight", 1.0, "not-a-list"), ("label_smoothing", True, "bool"),
              ("label_smoothing", "0.1", "string"), ("reduction", None, "null"), ("mean_over", "batch", "word"))),
        pytest.param({"cases": [{**GOOD, "labels": [0, 2**70]}]}, "does not fit a 64-bit integer", id="label-huge"),
        pytest.param({"cases": [{**GOOD, "logits": [[1, 10**400, 0], [0, 1, 2]]}]}, "beyond float64's range",
                     id="integer-logit-beyond-float64"),
        pytest.param({"cases": [{**GOOD, "id": "random-moderate"}]}, "the id of a catalogue case",
                     id="catalogue-id"),
        pytest.param({"cases": [{**GOOD, "colour": 1}]}, "unknown field 'colour'", id="unknown-field"),
        pytest.param({"cases": [GOOD, GOOD]}, "duplicate id", id="duplicate"),
    ],
)
def test_malformed_case_file_one_line_error(tmp_path, document, message):
    with pytest.raises(CaseFileError) as error:
        load_cases(write(tmp_path, document))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("text, message", [
    ('{"cases": [{"id": "a", "logits": [[1e400, 0]], "labels": [0]}]}', "not a finite number"),
    ('{"cases": [{"id": "a", "logits": [[NaN, 0]], "labels": [0]}]}', "not a finite number"),
    ('{"cases": [{"id": "a", "logits": [[Infinity, 0]], "labels": [0]}]}', "not a finite number"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_nonfinite_literals_and_deep_nesting_refused(tmp_path, text, message):
    path = tmp_path / "cases.json"
    path.write_text(text)
    with pytest.raises(CaseFileError, match=message) as error:
        load_cases(str(path))
    assert "\n" not in str(error.value)


def test_labels_outside_the_classes_run_as_invalid_input(tmp_path):
    """The user's own bad labels: what would each API have done with them? A clear error is the good outcome."""
    (case,) = load_cases(write(tmp_path, {"cases": [{**GOOD, "labels": [0, 3]}]}))
    assert case.invalid == "your labels: label 3 outside [0, 3)" and case.area == "labels"


def test_not_json(tmp_path):
    path = tmp_path / "cases.json"
    path.write_text("{nope")
    with pytest.raises(CaseFileError, match="not valid JSON"):
        load_cases(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(CaseFileError, match="no such case file"):
        load_cases(str(tmp_path / "absent.json"))
