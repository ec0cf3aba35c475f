"""`xentcompat check` on a callable of this env's framework (torch, jax, tensorflow): the naive log(softmax) is caught
with its cause named, eager and compiled; the framework's own fused loss deviates only where the framework's API does."""

from __future__ import annotations

from pathlib import Path

import pytest

from xentcompat import cli
from xentcompat.results.documents import read_results

ROOT = Path(__file__).resolve().parents[2]
NAIVE = {
    "torch": ("examples/naive_torch.py", None),
    "jax": ("naive_jax.py", "import jax, jax.numpy as jnp\n\n"
            "def cross_entropy(logits, labels, reduction='mean'):\n"
            "    p = jax.nn.softmax(logits, axis=1)\n"
            "    losses = -jnp.log(jnp.take_along_axis(p, labels[:, None], axis=1)[:, 0])\n"
            "    return {'mean': jnp.mean, 'sum': jnp.sum, 'none': lambda v: v}[reduction](losses)\n"),
    "tensorflow": ("naive_tf.py", "import tensorflow as tf\n\n"
                   "def cross_entropy(logits, labels, reduction='mean'):\n"
                   "    p = tf.nn.softmax(logits, axis=1)\n"
                   "    losses = -tf.math.log(tf.gather(p, labels, axis=1, batch_dims=1))\n"
                   "    return {'mean': tf.reduce_mean, 'sum': tf.reduce_sum, 'none': tf.identity}[reduction](losses)\n"),
}
FRAMEWORK = {"torch": "torch", "jax": "jax", "tensorflow": "tensorflow"}


@pytest.fixture
def naive(target, tmp_path) -> tuple[str, str]:
    if target not in NAIVE:
        pytest.skip(f"check's callables run in torch, jax, tensorflow or numpy; this env is {target}")
    path, source = NAIVE[target]
    if source is None:
        return f"{ROOT / path}:cross_entropy", FRAMEWORK[target]
    (tmp_path / path).write_text(source)
    return f"{tmp_path / path}:cross_entropy", FRAMEWORK[target]


def test_the_naive_example_is_caught_with_its_cause_eager_and_compiled(naive, tmp_path, capsys):
    where, framework = naive
    modes = ["--mode", "all"] if framework in ("torch", "jax") else []
    status = cli.main(["check", where, "--framework", framework, "--options", "reduction", "--dtypes", "float32",
                       *modes, "--out", str(tmp_path / "out")])
    assert status == 1
    records = read_results(tmp_path / "out" / "results.json")["records"]
    caught = {(r["case"], r["dtype"], r["mode"]) for r in records if r["finding"] == "XC-log-of-underflowed-softmax"}
    assert ("confident-wrong-gap10000", "float32", "eager") in caught
    if modes:
        assert {r["mode"] for r in records} == {"eager", "compiled"}
    summary = capsys.readouterr().out
    assert "XC-log-of-underflowed-softmax" in summary and "exit 1:" in summary


THIRD_PARTY = ROOT / "examples" / "third_party" / "losses.py"
# callable, its claims (and its API id, which cause entries name), and cells that must deviate with the finding (case,
# dtype, loss outcome, finding)
THIRD_PARTY_FINDINGS = {
    "timm_label_smoothing": (["--options", "label_smoothing", "--name", "timm.loss.LabelSmoothingCrossEntropy"], [
        ("neg-inf-nontarget", "float32", "nan", "XC-zero-times-neg-inf"),
        ("neg-inf-target", "float32", "nan", "XC-zero-times-neg-inf")]),
    "timm_soft_target": (["--targets", "probs", "--name", "timm.loss.SoftTargetCrossEntropy"], [
        ("neg-inf-nontarget", "float32", "nan", "XC-zero-times-neg-inf"),
        ("probs-nan", "float32", "silent", "XC-unchecked-probability-targets")]),
    "torchtune_chunked": (["--options", "ignore_index", "--name", "torchtune.modules.loss.CEWithChunkedOutputLoss"], [
        ("labels-too-many", "float32", "silent", "XC-chunk-pairs-zipped"),
        ("labels-too-few", "float32", "silent", "XC-chunk-pairs-zipped"),
        ("random-moderate", "float64", "inaccurate", "XC-floatx-downcast")]),
}


@pytest.mark.parametrize("name", THIRD_PARTY_FINDINGS)
def test_third_party_losses_deviate_with_their_causes(name, target, tmp_path):
    """timm and torchtune (installed --no-deps in the torch env): what `check` finds on them, by cause."""
    import importlib.util

    if target != "torch" or not all(importlib.util.find_spec(p) for p in ("timm", "torchtune")):
        pytest.skip("timm and torchtune are installed in the torch env (tox -e torch)")
    claims, expected = THIRD_PARTY_FINDINGS[name]
    status = cli.main(["check", f"{THIRD_PARTY}:{name}", "--framework", "torch", *claims, "--out", str(tmp_path)])
    assert status == 1
    records = {(r["case"], r["dtype"]): r for r in read_results(tmp_path / "results.json")["records"]}
    for case, dtype, loss, finding in expected:
        record = records[(case, dtype)]
        assert (record["loss"]["outcome"], record["finding"]) == (loss, finding), (case, dtype)
