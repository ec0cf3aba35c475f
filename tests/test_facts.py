"""Facts of an input (`reference.facts`) and the cause entries that select cells by them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xentcompat import expectations
from xentcompat.expectations.model import Selector
from xentcompat.reference.cases import CATALOGUE
from xentcompat.reference.facts import FACTS, input_facts
from xentcompat.reference.options import Options

INF, NAN = np.inf, np.nan


def facts(logits, labels=None, probs=None, options=Options()):
    logits = np.asarray(logits, dtype=np.float64)
    labels = None if labels is None else np.asarray(labels)
    return input_facts(logits, labels, None if probs is None else np.asarray(probs, np.float64), options)


@pytest.mark.parametrize("logits, labels, options, expected", [
    ([[0.0, 1.0, 2.0]], [0], Options(), set()),
    ([[0.0, -INF, 2.0]], [0], Options(), {"mask"}),
    ([[-INF, 1.0, 2.0]], [0], Options(), {"mask", "masked-target", "far-below-max"}),
    ([[-INF, -INF], [0.0, 1.0]], [1, 0], Options(), {"mask", "masked-row", "masked-target"}),
    ([[0.0, NAN]], [0], Options(), {"nan-logit"}),
    ([[INF, 0.0]], [1], Options(), {"pos-inf-logit"}),
    ([[40.0, 0.0, 5.0]], [0], Options(), {"confident-right"}),
    ([[0.0, 30.0, 5.0]], [0], Options(), {"confident-wrong"}),
    ([[0.0, 29.0, 5.0]], [0], Options(), set()),  # 29 apart: not yet confident
    ([[0.0, 65.0]], [0], Options(), {"confident-wrong", "far-below-max"}),
    ([[0.0, 65.0]], [0], Options(label_smoothing=0.1), {"confident-wrong", "far-below-max", "label-smoothing"}),
    ([[0.0, 1.0]], [2], Options(), {"label-out-of-range", "label-past-every-class"}),
    ([[0.0, 1.0]], [-1], Options(), {"label-out-of-range", "label-wraps-to-a-class"}),
    ([[0.0, 1.0]], [-2], Options(), {"label-out-of-range", "label-wraps-to-a-class"}),  # -C wraps to class 0
    ([[0.0, 1.0]], [-3], Options(), {"label-out-of-range", "label-past-every-class"}),
    ([[0.0, 1.0]], np.array([1], np.int32), Options(), {"int32-labels"}),
    ([[0.0, 1.0]], np.array([1], np.uint8), Options(), {"uint8-labels"}),
    ([[0.0, 1.0]], [1.0], Options(), {"float-labels"}),
    ([[0.0, 1.0]], [-100], Options(ignore_index=-100), {"ignored-rows", "mean-over-nothing"}),
    ([[0.0, 1.0]], [-100], Options(ignore_index=-100, reduction="sum"), {"ignored-rows"}),  # a sum of nothing is 0
    ([[0.0, 1.0], [0.0, 1.0]], [0, 0], Options(weight=(0.0, 2.0)), {"class-weights", "zero-total-weight"}),
    ([[0.0, 1.0], [0.0, 1.0]], [0, 1], Options(weight=(0.0, 2.0)), {"class-weights"}),
    ([[0.0, 1.0], [0.0, 1.0]], [-100, 0], Options(ignore_index=-100), {"ignored-rows"}),
    ([[NAN, 1.0], [0.0, 1.0]], [-100, 0], Options(ignore_index=-100), {"ignored-rows", "ignored-row-nonfinite",
                                                                     "nan-logit"}),
    ([[0.0, 1.0]], [0], Options(weight=(1.0, 2.0)), {"class-weights"}),
    ([[0.0, 1.0]], [0], Options(label_smoothing=0.1), {"label-smoothing"}),
    ([[0.0, 1.0], [0.0, 1.0]], [0, 1], Options(extra_dims=(2,)), {"extra-dims"}),
    (np.zeros((0, 3)), np.zeros(0, np.int64), Options(), {"empty-batch"}),
    ([[0.0, 32768.0]], [1], Options(), {"huge-logit", "confident-right"}),
    ([[0.0, -32767.0]], [0], Options(), {"confident-right"}),
    ([[0.0, 1e-40]], [0], Options(), {"subnormal-logit"}),
    ([[0.0, 2.0**-126]], [0], Options(), set()),
])
def test_each_fact(logits, labels, options, expected):
    assert facts(logits, labels, options=options) == expected


def test_a_confident_wrong_row_that_is_ignored_is_no_fact():
    assert facts([[0.0, 50.0]], [-100], options=Options(ignore_index=-100)) == {"ignored-rows", "mean-over-nothing"}


def test_probabilities_that_are_not_one_hot_are_soft_targets_and_large_vocabularies_are_a_fact():
    assert facts([[0.0, 1.0]], probs=[[0.3, 0.7]]) == {"soft-targets"}
    assert facts([[0.0, 1.0]], probs=[[0.0, 1.0]]) == set()
    assert facts([[0.0, 1.0]], probs=[[0.3, 0.6]]) == {"soft-targets", "unnormalized-targets"}
    assert facts([[0.0, 1.0]], probs=[[-0.5, 1.5]]) == {"soft-targets", "invalid-probabilities"}
    assert facts([[0.0, 1.0]], probs=[[NAN, 1.0]]) == {"soft-targets", "invalid-probabilities"}
    assert facts(np.zeros((1, 32768)), [0]) == {"large-vocab"}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-50, 50), min_size=3, max_size=3), st.integers(0, 2), st.floats(-1e3, 1e3))
def test_facts_of_differences_do_not_change_with_a_shift_of_the_row(row, label, shift):
    """Every fact but those of the logits' own magnitude (huge, subnormal) is about differences in a row."""
    of_magnitude = {"huge-logit", "subnormal-logit"}
    assert facts([row], [label]) - of_magnitude == facts([np.asarray(row) + shift], [label]) - of_magnitude


def test_every_fact_is_one_the_catalogue_shows_or_a_user_batch_can():
    shown = set().union(*(case.facts for case in CATALOGUE))
    assert shown <= set(FACTS)
    assert {"recipe-mean-of-means", "recipe-sum-over-count"} <= shown  # a case run as micro-batches: its recipe
    assert {"mask", "masked-target", "label-out-of-range", "ignored-row-nonfinite", "empty-batch"} <= shown


def cell(case: str, tags, area="user", tier="realistic"):
    return {"api": "x", "case": case, "area": area, "tier": tier, "tags": frozenset(tags), "dtype": "float32",
            "device": "cpu", "mode": "eager", "backend": None}


def test_a_selector_on_facts_selects_any_case_that_shows_one():
    selector = Selector(tags=("label-out-of-range", "empty-batch"))
    assert selector.matches(cell("my-own-batch", {"label-out-of-range", "mask"}))
    assert not selector.matches(cell("my-own-batch", {"mask"}))
    assert not selector.matches(cell("my-own-batch", set()))
    assert Selector().matches(cell("my-own-batch", set()))  # no facts asked: every input


def test_a_shipped_entry_selecting_by_fact_covers_a_users_batch_with_that_fact():
    effect = next(e for e in expectations.load("keras") if e.cause.id == "empty-batch-not-reduced")
    assert effect.selector.tags == ("empty-batch",) and effect.selector.cases == ("*",)
    mine = {**cell("my-empty-batch", {"empty-batch"}), "api": effect.apis[0], "dtype": effect.selector.dtypes[0],
            "backend": effect.selector.backends[0]}
    mine["dtype"] = "float32" if mine["dtype"] == "*" else mine["dtype"]
    mine["backend"] = "jax" if mine["backend"] == "*" else mine["backend"]
    assert effect.covers(mine, None, frozenset)
    assert not effect.covers({**mine, "tags": frozenset({"mask"})}, None, frozenset)


def test_an_entry_naming_an_unknown_fact_is_refused(tmp_path):
    (tmp_path / "kernel_paths.toml").write_text("")
    (tmp_path / "semantics.toml").write_text(
        '[c]\nkind = "semantics"\ntitle = "t"\nexplanation = "e"\nno_upstream = "searched"\n'
        '[[c.cells]]\nframework = "torch"\napis = ["a"]\ntags = ["not-a-fact"]\nloss = "nan"\ngrad = "nan"\n')
    with pytest.raises(ValueError, match="field 'tags': 'not-a-fact' matches no tag"):
        expectations.load("torch", tmp_path)
