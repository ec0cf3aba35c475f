"""JAX: a plain training loop, parameters as a dict, `optax.sgd(lr, momentum=0.9)`, one `jax.jit` step.

d(loss)/dz comes from JAX's own autodiff: the step differentiates loss(params, δ) = variant(z(params, x) + δ, y) at
δ = 0 with respect to both the parameters and δ; since z + 0 = z exactly, the value and the parameter gradient are
those of the unperturbed loss and the δ gradient is d(loss)/dz. A 16-bit regime holds the parameters, the inputs and
the optimizer's momentum in that dtype; the loss runs in it too.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from xentcompat.adapters import jax as adapter
from xentcompat.adapters.base import api_named
from xentcompat.training.experiment import Config, Regime
from xentcompat.training.loop import Trainer
from xentcompat.training.variants import Variant

DTYPES = {"float32": jnp.float32, "float16": jnp.float16, "bfloat16": jnp.bfloat16}


def loss_of(variant: Variant):
    """The variant's loss: the registered API's own function (every JAX variant is one the matrix runs)."""
    return _loss(variant.api)


def _loss(api: str):
    return api_named(adapter.__name__, api).loss


def versions() -> dict[str, str]:
    return {"jax": jax.__version__, "optax": optax.__version__}


def forward(params: dict, x):
    hidden = jax.nn.relu(x @ params["hidden.kernel"] + params["hidden.bias"])
    return hidden @ params["output.kernel"] + params["output.bias"]


_apply = jax.jit(forward)


@functools.cache
def _step(api: str, learning_rate: float, momentum: float):
    """The jitted step of one variant's API and optimiser (cached: one compilation per batch shape)."""
    optimizer = optax.sgd(learning_rate, momentum=momentum)
    loss = _loss(api)

    def perturbed_loss(params, delta, x, y):
        z = forward(params, x)
        return loss(z + delta, y), z

    @jax.jit
    def step(params, state, x, y):
        delta = jnp.zeros((x.shape[0], params["output.bias"].shape[0]), dtype=params["output.bias"].dtype)
        (loss, z), (grads, dz) = jax.value_and_grad(perturbed_loss, argnums=(0, 1), has_aux=True)(params, delta, x, y)
        updates, state = optimizer.update(grads, state, params)
        return loss, dz, z, optax.apply_updates(params, updates), state

    return optimizer, step


def make_trainer(variant: Variant, regime: Regime, weights: dict, config: Config) -> Trainer:
    dtype = DTYPES[regime.dtype]
    optimizer, step_fn = _step(variant.api, regime.learning_rate, config.momentum)
    params = {name: jnp.asarray(value, dtype=dtype) for name, value in weights.items()}
    box = {"params": params, "state": optimizer.init(params)}

    def step(x: np.ndarray, y: np.ndarray):
        loss, dz, z, box["params"], box["state"] = step_fn(box["params"], box["state"], jnp.asarray(x, dtype=dtype),
                                                           jnp.asarray(y, dtype=jnp.int32))
        return float(loss), np.asarray(dz, dtype=np.float32), np.asarray(z, dtype=np.float64)

    def logits(x: np.ndarray) -> np.ndarray:
        return np.asarray(_apply(box["params"], jnp.asarray(x, dtype=dtype)), dtype=np.float64)

    def current_weights() -> dict:
        return {name: np.asarray(value, dtype=np.float32) for name, value in box["params"].items()}

    return Trainer(step, logits, current_weights)
