"""`xentcompat train` on this env's target (`--framework`): one seed, two epochs, the standard regime. These check
that the pipeline records the numbers the framework computed, not that some accuracy is reached: the weights loaded
are numpy's, bit for bit; the first step's loss and d(loss)/dz are the variant's own, derived here in numpy; the
recorded epoch means are those of the steps; the recorded accuracy and test loss are those of the final weights,
recomputed without the framework."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import missing_tool
from xentcompat.adapters import base
from xentcompat.results.training import read_training
from xentcompat.training.data import (batches, config_digits, epoch_order, initial_weights, numpy_logits,
                                      weights_digest)
from xentcompat.training.experiment import KERAS_EPSILON, REGIMES, Config
from xentcompat.training.loop import run_seed
from xentcompat.training.measure import EpochTally, accuracy, reference_loss
from xentcompat.training.variants import FAMILIES, loop_module, variants_for

CONFIG = Config(seeds=1, epochs=2, regimes=("standard",))
STANDARD = REGIMES["standard"]


def _needs_scikit_learn() -> None:
    if importlib.util.find_spec("sklearn") is None:
        missing_tool("xentcompat train needs scikit-learn (the digits): install the `train` extra")


def _needs_a_training_loop(target: str) -> None:
    if target not in FAMILIES:
        pytest.skip(f"target {target} has no training loop (test_a_target_without_a_loop_is_skipped_by_train)")


@pytest.fixture
def loop(target):
    _needs_a_training_loop(target)
    _needs_scikit_learn()
    base.load(target)  # the target's environment (KERAS_BACKEND) before Keras is imported
    return importlib.import_module(loop_module(target))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _expected_first_step(kind: str, z: np.ndarray, y: np.ndarray, logits_behind_softmax: bool):
    """(loss, d loss / dz) of the batch mean, in float64.

    fused and softmax-then-log: p = softmax(z), loss = mean(-log p_y), dz = (p - onehot) / B (the log of a
    probability that does not underflow, and Keras' clip does not act at these logits). Double softmax:
    q = softmax(p), loss = mean(-log q_y), g = (q - onehot) / B pulled back through the softmax Jacobian,
    dz = p * (g - sum(g * p)). Keras on TensorFlow takes the logits behind a Softmax layer (`_keras_logits`):
    there the double softmax is the fused loss.
    """
    onehot = np.eye(z.shape[1])[y]
    p = _softmax(z)
    if kind == "double-softmax" and not logits_behind_softmax:
        q = _softmax(p)
        g = (q - onehot) / len(y)
        return float(np.mean(-np.log(q[np.arange(len(y)), y]))), p * (g - np.sum(g * p, axis=1, keepdims=True))
    return float(np.mean(-np.log(p[np.arange(len(y)), y]))), (p - onehot) / len(y)


def _forgotten_flag_loss(z: np.ndarray, y: np.ndarray, backend: str) -> float:
    """Keras' from_logits=False fed logits: JAX and torch normalise by the row sum, then clip to [1e-7, 1 - 1e-7];
    TensorFlow clips, then takes the log-softmax of the log."""
    rows = np.arange(len(y))
    if backend == "tensorflow":
        log_c = np.log(np.clip(z, KERAS_EPSILON, 1 - KERAS_EPSILON))
        return float(np.mean(np.log(np.exp(log_c).sum(axis=1)) - log_c[rows, y]))
    c = np.clip(z / z.sum(axis=1, keepdims=True), KERAS_EPSILON, 1 - KERAS_EPSILON)
    return float(np.mean(-np.log(c[rows, y])))


def test_initial_weights_are_numpys_bit_for_bit(loop, target):
    data = config_digits(CONFIG)
    weights = initial_weights(0, 64, 64)
    for variant in variants_for(target):
        trainer = loop.make_trainer(variant, STANDARD, weights, CONFIG)
        loaded = trainer.weights()
        for name, value in weights.items():
            np.testing.assert_array_equal(loaded[name], value, err_msg=f"{variant.api}: {name}")
        np.testing.assert_allclose(trainer.logits(data.x_test), numpy_logits(weights, data.x_test), rtol=1e-5,
                                   atol=1e-5, err_msg=variant.api)
    assert weights_digest(initial_weights(0, 64, 64)) == weights_digest(weights) != weights_digest(
        initial_weights(1, 64, 64))


def test_first_step_is_the_variants_loss_and_gradient(loop, target):
    data = config_digits(CONFIG)
    weights = initial_weights(0, 64, 64)
    rows = batches(epoch_order(0, 0, len(data.y_train)), CONFIG.batch_size)[0]
    x, y = data.x_train[rows], data.y_train[rows]
    z = numpy_logits(weights, x)
    backend = getattr(loop, "BACKEND", None)
    for variant in variants_for(target):
        loss, dz, z_framework = loop.make_trainer(variant, STANDARD, weights, CONFIG).step(x, y)
        np.testing.assert_allclose(z_framework, z, rtol=1e-5, atol=1e-5, err_msg=variant.api)
        if variant.kind == "forgotten-flag":
            assert loss == pytest.approx(_forgotten_flag_loss(z, y, backend), rel=1e-4), variant.api
            continue
        behind = backend == "tensorflow" and variant.softmax_layer
        expected_loss, expected_dz = _expected_first_step(variant.kind, z, y, behind)
        assert loss == pytest.approx(expected_loss, rel=1e-5), variant.api
        np.testing.assert_allclose(dz, expected_dz, rtol=1e-4, atol=1e-7, err_msg=variant.api)


def test_recorded_numbers_are_the_ones_computed(loop, target):
    data = config_digits(CONFIG)
    for variant in variants_for(target):
        result = run_seed(loop.make_trainer, variant, STANDARD, 0, CONFIG)
        assert all(len(values) == CONFIG.epochs for values in result.metrics.values()), variant.api
        assert result.initial_weights_sha256 == weights_digest(initial_weights(0, 64, 64))
        assert result.final_weights_sha256 == weights_digest(result.final_weights)
        final_logits = numpy_logits(result.final_weights, data.x_test)
        # the framework's float32 forward pass and numpy's float64 one may split a near-tie: one row at most
        assert abs(result.metrics["test_accuracy"][-1] - accuracy(final_logits, data.y_test)) <= 1 / len(
            data.y_test), variant.api
        assert result.metrics["test_loss"][-1] == pytest.approx(reference_loss(final_logits, data.y_test),
                                                                rel=1e-4), variant.api
        assert result.metrics["grad_norm"][0] > 0, variant.api
        # epoch 1 again, step by step: the recorded means are the means of these steps
        trainer = loop.make_trainer(variant, STANDARD, initial_weights(0, 64, 64), CONFIG)
        tally = EpochTally(STANDARD.dtype)
        for rows in batches(epoch_order(0, 0, len(data.y_train)), CONFIG.batch_size):
            tally.add(*trainer.step(data.x_train[rows], data.y_train[rows]), data.y_train[rows])
        assert result.metrics["train_loss"][0] == pytest.approx(tally.summary()["train_loss"], rel=1e-5)
        assert result.metrics["grad_norm"][0] == pytest.approx(tally.summary()["grad_norm"], rel=1e-5)
        assert result.metrics["nonfinite_steps"][0] == tally.nonfinite_steps
        assert result.metrics["logit_spread"][0] == pytest.approx(tally.summary()["logit_spread"], rel=1e-5)


def test_train_command_end_to_end(tmp_path, target):
    _needs_a_training_loop(target)
    _needs_scikit_learn()
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "xentcompat.cli", "train", "--targets", target, "--seeds", "1",
                           "--epochs", "2", "--regimes", "standard", "--out", str(out)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    training = read_training(out / "training.json")
    runs = {run["variant"]: run for run in training["runs"]}
    assert sorted(runs) == sorted(v.kind for v in variants_for(target))
    digest = weights_digest(initial_weights(0, 64, 64))
    for run in runs.values():
        assert run["target"] == target and run["regime"] == "standard" and run["seed"] == 0 and run["error"] is None
        assert run["initial_weights_sha256"] == digest
        assert all(len(values) == 2 for values in run["metrics"].values())
    double = runs["double-softmax"]["metrics"]["grad_norm"]
    assert all(np.isfinite(double)) and min(double) > 0
    entry = training["targets"][0]
    assert entry["name"] == target and entry["failed"] is None and entry["wall_seconds"] > 0
    assert training["environments"][0]["target"] == target
    section = (out / "training.md").read_text()
    assert all(run["api"] in section for run in runs.values())
    assert (out / "training-plots" / "accuracy-standard.svg").is_file() and (out / "training.html").is_file()


def test_a_target_without_a_loop_is_skipped_by_train(tmp_path, target):
    if target in FAMILIES:
        pytest.skip(f"target {target} trains (test_train_command_end_to_end)")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "xentcompat.cli", "train", "--targets", target, "--seeds", "1",
                           "--epochs", "1", "--regimes", "standard", "--out", str(out)], capture_output=True,
                          text=True)
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 2, done.stderr[-2000:]  # nothing to train: one line, nothing written
    assert last.startswith(f"xentcompat: error: nothing trained ({target}: ") and "has no training loop" in last, last
    assert last.endswith("; nothing written") and not (out / "training.json").exists()


def test_pytorch_training_runs_the_loss_the_matrix_registers(target):
    """One definition: each PyTorch variant trains with the registered API's own function, the one its cells call."""
    if target != "torch":
        pytest.skip("the PyTorch loop carries this check")
    import torch

    from xentcompat.adapters import torch as adapter
    from xentcompat.training import torch_loop

    z, y = torch.tensor([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]]), torch.tensor([0, 2])
    for variant in variants_for("torch"):
        api = base.api_named(adapter.__name__, variant.api)
        assert torch_loop.loss_of(variant) is api.loss is not None
        mean = -torch.log_softmax(torch.softmax(z, 1) if variant.kind == "double-softmax" else z, 1)[[0, 1], y].mean()
        assert float(api.loss(z, y)) == pytest.approx(float(mean), rel=1e-6)
    with pytest.raises(KeyError, match="registers no API 'torch.nn.Nothing'"):
        base.api_named(adapter.__name__, "torch.nn.Nothing")


def test_jax_training_runs_the_loss_the_matrix_registers(target):
    """The JAX loop trains with each variant's registered function too; importing the adapter without 64-bit JAX
    (as the training worker does) is allowed, and a cell then refuses to run rather than compute float64 in float32."""
    if target != "jax":
        pytest.skip("the JAX loop carries this check")
    import jax
    import jax.numpy as jnp

    from xentcompat.adapters import jax as adapter
    from xentcompat.training import jax_loop

    z, y = jnp.array([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]]), jnp.array([0, 2])
    for variant in variants_for("jax"):
        api = base.api_named(adapter.__name__, variant.api)
        assert jax_loop.loss_of(variant) is api.loss is not None
        inner = jax.nn.softmax(z, axis=-1) if variant.kind == "double-softmax" else z
        log_p = jnp.log(jax.nn.softmax(inner, axis=-1))
        assert float(api.loss(z, y)) == pytest.approx(float(-log_p[jnp.arange(2), y].mean()), rel=1e-6)
    from xentcompat.adapters.base import Call
    from xentcompat.reference.options import Problem

    call = Call(Problem(np.zeros((1, 3)), np.array([0])), "float64", "cpu", "eager")
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(RuntimeError, match="JAX_ENABLE_X64"):
            adapter.softmax_cross_entropy_with_integer_labels(call)
    finally:
        jax.config.update("jax_enable_x64", True)
