"""Causes on a user's own batch, end to end through `xentcompat run` (PyTorch): a batch whose target probability
underflows gets the catalogue's cause through its input conditions, and a batch fed to the double softmax gets
softmax-twice through its mechanism, whose outcomes are computed from that batch; `--strict` exits 0 when every
deviation is explained. Mechanisms a cause states, checked on the framework directly (near-max rows under torch,
JAX's out-of-range indexing)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from xentcompat.results.documents import read_results

CASES = {"cases": [
    {"id": "mine-confident-wrong", "logits": [[200.0, 0.0, 0.0]], "labels": [1], "dtypes": ["float32"]},
    {"id": "mine-moderate", "logits": np.random.default_rng(0).normal(0, 3, (8, 10)).tolist(),
     "labels": list(range(8)), "dtypes": ["bfloat16"]},
]}


def test_a_users_batch_is_explained_by_conditions_and_by_a_mechanism(tmp_path, target):
    if target != "torch":
        pytest.skip("the PyTorch APIs carry this check")
    cases = tmp_path / "mine.json"
    cases.write_text(json.dumps(CASES))
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "xentcompat.cli", "run", "--targets", "torch", "--cases",
                           str(cases), "--only-cases", "--strict", "-n", "1", "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    records = {(r["api"], r["case"]): r for r in read_results(out / "results.json")["records"]}
    underflow = records[("torch.nn.NLLLoss(log(softmax))", "mine-confident-wrong")]
    assert (underflow["loss"]["outcome"], underflow["grad"]["outcome"]) == ("inf", "nan")
    assert underflow["finding"] == "XC-log-of-underflowed-softmax"
    twice = records[("torch.nn.CrossEntropyLoss(softmax)", "mine-moderate")]
    assert (twice["loss"]["outcome"], twice["grad"]["outcome"]) == ("inaccurate", "inaccurate")
    assert twice["finding"] == "XC-softmax-twice"
    assert "outcomes computed by the mechanism 'softmax-twice'" in twice["expected"]["reason"]
    assert not any(r["finding"].startswith("XC-unexplained") for r in records.values() if r["finding"])


def test_jax_indexing_clamps_a_label_past_the_last_class_forward_and_drops_it_backward(target):
    """What index-clamps-out-of-range says: label C reads class C-1's loss, its row's gradient is 0; -1 wraps."""
    if target != "jax":
        pytest.skip("the JAX APIs carry this check")
    import jax
    import jax.numpy as jnp
    x = jnp.array([[1.0, 2.0, 3.0], [0.5, 0.1, -1.0]])
    log_p = jax.nn.log_softmax(x)

    def loss(logits, labels):
        return -jax.nn.log_softmax(logits)[jnp.arange(2), labels].mean()

    for grad_of in (jax.grad(loss), jax.jit(jax.grad(loss))):
        past, wrapped = jnp.array([0, 3]), jnp.array([0, -1])
        assert float(loss(x, past)) == pytest.approx(-float(log_p[0, 0] + log_p[1, 2]) / 2)
        assert not bool(grad_of(x, past)[1].any())  # the clamped class gets no gradient back
        assert grad_of(x, wrapped)[1].tolist() == pytest.approx(grad_of(x, jnp.array([0, 2]))[1].tolist())


@pytest.mark.parametrize("dtype_name, top", [("float16", 65504.0), ("bfloat16", 3e38), ("float32", 3e38)])
def test_near_max_rows_fit_and_their_sum_does_not(target, dtype_name, top):
    """Why near-max cells are sum-overflows-before-mean: reduction='none' gives every row finite, the mean inf."""
    if target != "torch":
        pytest.skip("the PyTorch APIs carry this check")
    import torch
    dtype = getattr(torch, dtype_name)
    logits = torch.tensor([[top, 0.0, -top, 1.0], [top, top, 0.0, -1.0], [-top, 0.0, 1.0, 2.0]]).to(dtype)
    labels = torch.tensor([0, 2, 0])
    rows = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    assert bool(torch.isfinite(rows).all()) and float(rows.max()) > 0.9 * top
    assert torch.isinf(torch.nn.functional.cross_entropy(logits, labels))
