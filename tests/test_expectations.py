"""Expectation files: matching by api, glob patterns and version range; malformed entries refused by name."""

from __future__ import annotations

import pytest

from xentcompat import expectations
from xentcompat.expectations import Deviation, expectation

CELL = {"api": "torch.nn.CrossEntropyLoss", "case": "neg-inf-row", "dtype": "float16", "device": "cpu",
        "mode": "eager", "backend": None}


def test_first_matching_entry_wins_and_globs_apply():
    entries = [Deviation(api=CELL["api"], loss="nan", grad="ok", reason="r1", cases=("neg-inf-*",),
                         dtypes=("float32",)),
               Deviation(api=CELL["api"], loss="inf", grad="ok", reason="r2", cases=("neg-inf-*",))]
    assert expectation(entries, CELL, "2.13.0").reason == "r2"
    assert expectation(entries, {**CELL, "case": "random-moderate"}, "2.13.0") is None


def test_version_range_and_local_version():
    entry = Deviation(api=CELL["api"], loss="nan", grad="ok", reason="r", versions=">=2.5,<3")
    assert entry.matches(CELL, "2.13.0+cpu")
    assert not entry.matches(CELL, "2.4.1")


@pytest.mark.parametrize("text, message", [
    ('[[deviation]]\napi = "a"\nloss = "ok"\ngrad = "ok"\n', "missing field 'reason'"),
    ('[[deviation]]\napi = "a"\nloss = "wrong"\ngrad = "ok"\nreason = "r"\n', "'wrong' is not an outcome"),
    ('[[deviation]]\napi = "a"\nloss = "ok"\ngrad = "ok"\nreason = "r"\ncolour = 1\n', "unknown field 'colour'"),
])
def test_malformed_entries_refused(tmp_path, text, message):
    path = tmp_path / "x.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        expectations.load("x", path)


API_PREFIXES = {"torch": ("torch.",), "keras": ("keras.",), "tensorflow": ("tf.",),
                "jax": ("optax.", "jax.", "log(jax.")}
BACKENDS = {"torch": {"*"}, "tensorflow": {"*"}, "jax": {"*"}, "keras": {"tensorflow", "jax", "torch"}}


@pytest.mark.parametrize("framework", sorted(API_PREFIXES))
def test_shipped_files_load_with_reasons(framework):
    entries = expectations.load(framework)
    assert entries, f"no expectations file for {framework}"
    for entry in entries:
        assert entry.reason and entry.api.startswith(API_PREFIXES[framework])
        assert set(entry.backends) <= BACKENDS[framework]
        assert entry.upstream is None or entry.upstream.startswith("https://github.com/")
