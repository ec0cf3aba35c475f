"""Keras 3 on the backend KERAS_BACKEND names: a `keras.Sequential` MLP, `keras.optimizers.SGD(momentum=0.9)`,
`keras.losses.SparseCategoricalCrossentropy` as users compile it, trained by the backend's own autodiff.

The step is the one `model.fit` runs, written out so that d(loss)/dz can be kept (z: the last Dense layer's output,
the input of the Softmax layer where the variant has one): on TensorFlow a `tf.function` around `tf.GradientTape`
(as `fit` traces its step; graph mode is where Keras looks behind a Softmax op for its logits); on JAX a `jax.jit`
of the stateless step (`keras.StatelessScope`, `optimizer.stateless_apply`), d(loss)/dz as the gradient at δ = 0 of
the loss with z + δ in place of z; on torch eager autograd (Keras' `jit_compile="auto"` is eager there), z's
gradient kept by `retain_grad`. A 16-bit regime is the layers' dtype policy (weights and computation in that dtype,
as `keras.config.set_dtype_policy` would make them); the loss object keeps its default dtype, float32.

One model, optimizer and compiled step per variant and regime; each seed loads its weights into them and zeroes the
optimizer's momentum and iteration count, so a seed starts as a freshly built model would.
"""

from __future__ import annotations

import functools
import importlib

import keras
import numpy as np

from xentcompat.training.data import PARAMETERS
from xentcompat.training.experiment import CLASSES, Config, Regime
from xentcompat.training.loop import Trainer
from xentcompat.training.variants import Variant

BACKEND = keras.backend.backend()


def versions() -> dict[str, str]:
    return {"keras": keras.__version__, BACKEND: importlib.import_module(BACKEND).__version__}


def build_model(variant: Variant, regime: Regime, inputs: int, hidden: int) -> keras.Sequential:
    layers = [keras.Input((inputs,)), keras.layers.Dense(hidden, activation="relu", dtype=regime.dtype),
              keras.layers.Dense(CLASSES, dtype=regime.dtype)]
    if variant.softmax_layer:
        layers.append(keras.layers.Softmax(dtype=regime.dtype))
    return keras.Sequential(layers)


def forward(model: keras.Sequential, x, delta=None):
    """(z, the model's output): the layers of `model(x)` one by one, z kept (plus `delta`, when given)."""
    hidden_layer, output_layer, *softmax = model.layers
    z = output_layer(hidden_layer(x))
    if delta is not None:
        z = z + delta
    return z, (softmax[0](z) if softmax else z)


@functools.cache
def _parts(variant: Variant, regime: Regime, inputs: int, hidden: int, momentum: float):
    """(model, optimizer, step, logits, weights, restart) of one variant in one regime, built once."""
    model = build_model(variant, regime, inputs, hidden)
    optimizer = keras.optimizers.SGD(learning_rate=regime.learning_rate, momentum=momentum)
    optimizer.build(model.trainable_variables)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=variant.from_logits)
    return (model, optimizer, *BACKEND_STEPS[BACKEND](model, optimizer, loss))


def make_trainer(variant: Variant, regime: Regime, weights: dict, config: Config) -> Trainer:
    inputs, hidden = weights["hidden.kernel"].shape
    model, optimizer, step, logits, current, restart = _parts(variant, regime, inputs, hidden, config.momentum)
    _reset(model, optimizer, weights)
    restart()
    return Trainer(step, logits, current)


def _reset(model, optimizer, weights: dict) -> None:
    for variable, name in zip(model.trainable_variables, PARAMETERS, strict=True):
        variable.assign(weights[name])
    for slot in optimizer.momentums:
        slot.assign(np.zeros(slot.shape, dtype=np.float32))
    optimizer.iterations.assign(0)


def _numpy(value) -> np.ndarray:
    return keras.ops.convert_to_numpy(keras.ops.cast(value, "float32"))


def _variables_as_numpy(model) -> dict:
    return {name: _numpy(v.value) for v, name in zip(model.trainable_variables, PARAMETERS, strict=True)}


def _no_restart() -> None:
    """The step works on the model's own variables: nothing to take from them."""


def _tensorflow_step(model, optimizer, loss_of):
    import tensorflow as tf

    variables = model.trainable_variables

    @tf.function(reduce_retracing=True)
    def compiled(x, y):
        with tf.GradientTape() as tape:
            z, output = forward(model, x)
            loss = loss_of(y, output)
        grads = tape.gradient(loss, [z, *variables])
        optimizer.apply(grads[1:], variables)
        return loss, tf.cast(grads[0], tf.float32), tf.cast(z, tf.float64)

    def step(x, y):
        loss, dz, z = compiled(tf.constant(x), tf.constant(y))
        return float(loss), dz.numpy(), z.numpy()

    def logits(x):
        return np.asarray(_numpy(forward(model, tf.constant(x))[0]), dtype=np.float64)

    return step, logits, lambda: _variables_as_numpy(model), _no_restart


def _torch_step(model, optimizer, loss_of):
    import torch

    variables = model.trainable_variables

    def step(x, y):
        z, output = forward(model, torch.from_numpy(x))
        z.retain_grad()
        loss = loss_of(torch.from_numpy(y), output)
        for variable in variables:
            variable.value.grad = None
        loss.backward()
        with torch.no_grad():
            optimizer.apply([v.value.grad for v in variables], variables)
        return loss.item(), z.grad.float().numpy(), z.detach().double().numpy()

    def logits(x):
        with torch.no_grad():
            return forward(model, torch.from_numpy(x))[0].double().numpy()

    return step, logits, lambda: _variables_as_numpy(model), _no_restart


def _jax_step(model, optimizer, loss_of):
    import jax
    import jax.numpy as jnp

    variables = model.trainable_variables
    z_dtype = model.layers[1].compute_dtype

    def stateless_forward(values, x, delta=None):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return forward(model, x, delta)

    def perturbed_loss(values, delta, x, y):
        z, output = stateless_forward(values, x, delta)
        return loss_of(y, output), z

    @jax.jit
    def compiled(values, optimizer_values, x, y):
        delta = jnp.zeros((x.shape[0], CLASSES), dtype=z_dtype)
        (loss, z), (grads, dz) = jax.value_and_grad(perturbed_loss, argnums=(0, 1), has_aux=True)(values, delta, x, y)
        values, optimizer_values = optimizer.stateless_apply(optimizer_values, grads, values)
        return loss, dz, z, values, optimizer_values

    apply = jax.jit(lambda values, x: stateless_forward(values, x)[0])
    state = {}

    def restart():
        """Take the seed's weights and the zeroed optimizer from the variables `_reset` assigned."""
        state["values"] = [v.value for v in variables]
        state["optimizer"] = [v.value for v in optimizer.variables]

    def step(x, y):
        loss, dz, z, state["values"], state["optimizer"] = compiled(state["values"], state["optimizer"], x, y)
        return float(loss), np.asarray(dz, dtype=np.float32), np.asarray(z, dtype=np.float64)

    def logits(x):
        return np.asarray(apply(state["values"], x), dtype=np.float64)

    def current():
        return {name: np.asarray(value, dtype=np.float32)
                for value, name in zip(state["values"], PARAMETERS, strict=True)}

    return step, logits, current, restart


BACKEND_STEPS = {"tensorflow": _tensorflow_step, "torch": _torch_step, "jax": _jax_step}
