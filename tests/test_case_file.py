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
        pytest.param({"cases": [{**GOOD, "labels": [0, 3]}]}, "label 3 outside [0, 3)", id="label-out-of-range"),
        pytest.param({"cases": [{**GOOD, "labels": [0]}]}, "labels shape", id="label-count"),
        pytest.param({"cases": [{**GOOD, "dtypes": ["float8"]}]}, "field 'dtypes'", id="dtype"),
        pytest.param({"cases": [{**GOOD, "options": {"smoothing": 0.1}}]}, "unknown option 'smoothing'",
                     id="option-name"),
        pytest.param({"cases": [{**GOOD, "options": {"reduction": "avg"}}]}, "reduction 'avg'", id="option-value"),
        pytest.param({"cases": [{**GOOD, "colour": 1}]}, "unknown field 'colour'", id="unknown-field"),
        pytest.param({"cases": [GOOD, GOOD]}, "duplicate id", id="duplicate"),
    ],
)
def test_malformed_case_file_one_line_error(tmp_path, document, message):
    with pytest.raises(CaseFileError) as error:
        load_cases(write(tmp_path, document))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_not_json(tmp_path):
    path = tmp_path / "cases.json"
    path.write_text("{nope")
    with pytest.raises(CaseFileError, match="not valid JSON"):
        load_cases(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(CaseFileError, match="no such case file"):
        load_cases(str(tmp_path / "absent.json"))
