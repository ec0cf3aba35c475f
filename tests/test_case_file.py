"""User case files: what loads, and how. Every bad case file is in tests/test_bad_inputs.py."""

from __future__ import annotations

import json
import math

import numpy as np

from xentcompat.reference.case_file import load_cases

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


def test_labels_outside_the_classes_run_as_invalid_input(tmp_path):
    """The user's own bad labels: what would each API have done with them? A clear error is the good outcome."""
    (case,) = load_cases(write(tmp_path, {"cases": [{**GOOD, "labels": [0, 3]}]}))
    assert case.invalid == "your labels: label 3 outside [0, 3)" and case.area == "labels"


def test_a_shard_runs_the_users_cases_after_the_catalogue_or_alone_with_only_cases(tmp_path):
    from xentcompat.reference.cases import CATALOGUE
    from xentcompat.run.shard import Settings

    user = tuple(load_cases(write(tmp_path, {"cases": [GOOD]})))
    beside = Settings("torch", ("cpu",), ("float32",), ("eager",), user, None)
    alone = Settings("torch", ("cpu",), ("float32",), ("eager",), user, None, only_user_cases=True)
    assert [case.id for case in beside.cases] == [case.id for case in CATALOGUE] + ["mine"]
    assert [case.id for case in alone.cases] == ["mine"]
