"""APIs by release, on the installed framework: an API the installed build lacks (hidden here) is not run, listed
with the release; one that it has runs."""

from __future__ import annotations

import pytest

from xentcompat.adapters import base
from xentcompat.run.shard import Settings, shard_document

LINEAR = "torch.nn.functional.linear_cross_entropy"


def _settings() -> Settings:
    return Settings("torch", ("cpu",), ("float32",), ("eager",), (), None)


def test_a_hidden_api_is_not_run_and_listed_with_its_release(target, monkeypatch):
    if target != "torch":
        pytest.skip("the torch env hides torch's linear_cross_entropy")
    import torch

    monkeypatch.delattr(torch.nn.functional, "linear_cross_entropy")
    settings = _settings()
    missing = {api.id: reason for api, reason in settings.missing}
    assert set(missing) == {LINEAR, f"{LINEAR}[dW]"}  # the chunked path needs LinearCrossEntropyOptions, still here
    assert missing[LINEAR] == f"{LINEAR} is not in this torch {torch.__version__}: it has no {LINEAR}"
    assert LINEAR not in {api.id for api in settings.apis}
    assert "torch.nn.functional.cross_entropy(h @ W.T)" in {api.id for api in settings.apis}
    entries = [entry for entry in shard_document(settings, [])["not_run"] if "api" in entry]
    assert {entry["api"] for entry in entries} == set(missing)
    assert all(entry["release"] == f"torch {torch.__version__}" for entry in entries)


def test_an_installed_api_runs_and_an_older_release_lacks_it(target):
    if target != "torch":
        pytest.skip("torch's linear_cross_entropy")
    import torch

    linear = {api.id: api for api in base.apis("torch")}[LINEAR]
    assert linear.missing_here(torch.__version__) is None
    assert linear.missing_in("2.11.0+cu130") == f"{LINEAR} is not in torch 2.11.0+cu130 (it came in 2.13)"
    assert linear.missing_in("2.13.0") is None
    assert {api.id for api, _ in _settings().missing} == set()
