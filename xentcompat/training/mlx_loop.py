"""MLX: a plain training loop, parameters as a dict, `mlx.optimizers.SGD(lr, momentum=0.9)`, one `mx.compile` step.

MLX's SGD keeps v ← μ·v + g and steps w ← w − lr·v (dampening 0): the update of torch's SGD with momentum, so the
frameworks follow one trajectory up to rounding. d(loss)/dz comes from MLX's own autodiff, as in the JAX loop: the
step differentiates loss(params, δ) = variant(z(params, x) + δ, y) at δ = 0 with respect to both; since z + 0 = z
exactly, the value and the parameter gradient are those of the unperturbed loss and the δ gradient is d(loss)/dz. A
16-bit regime holds the parameters, the inputs and the optimizer's momentum in that dtype; the loss runs in it too.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.optimizers as optim
import numpy as np

from xentcompat.adapters import mlx as adapter
from xentcompat.adapters.base import api_named
from xentcompat.training.experiment import Config, Regime
from xentcompat.training.loop import Trainer
from xentcompat.training.variants import Variant


def loss_of(variant: Variant):
    """The variant's loss: the registered API's own function (every MLX variant is one the matrix runs)."""
    return api_named(adapter.__name__, variant.api).loss


def versions() -> dict[str, str]:
    return {"mlx": mx.__version__}


def forward(params: dict, x):
    hidden = mx.maximum(x @ params["hidden.kernel"] + params["hidden.bias"], 0)
    return hidden @ params["output.kernel"] + params["output.bias"]


def make_trainer(variant: Variant, regime: Regime, weights: dict, config: Config) -> Trainer:
    dtype = adapter.DTYPES[regime.dtype]
    loss = loss_of(variant)
    optimizer = optim.SGD(learning_rate=regime.learning_rate, momentum=config.momentum)
    box = {"params": {name: mx.array(np.asarray(value, np.float32)).astype(dtype) for name, value in weights.items()}}
    optimizer.init(box["params"])

    def perturbed_loss(params, delta, x, y):
        z = forward(params, x)
        return loss(z + delta, y), z

    gradients = mx.value_and_grad(perturbed_loss, argnums=(0, 1))

    def step(x: np.ndarray, y: np.ndarray):
        x = mx.array(np.asarray(x, np.float32)).astype(dtype)
        delta = mx.zeros((x.shape[0], box["params"]["output.bias"].shape[0]), dtype=dtype)
        (value, z), (grads, dz) = gradients(box["params"], delta, x, mx.array(np.asarray(y, np.int32)))
        box["params"] = optimizer.apply_gradients(grads, box["params"])
        mx.eval(value, z, dz, box["params"], optimizer.state)
        return float(value.astype(mx.float32)), _numpy(dz, np.float32), _numpy(z, np.float64)

    def logits(x: np.ndarray) -> np.ndarray:
        return _numpy(forward(box["params"], mx.array(np.asarray(x, np.float32)).astype(dtype)), np.float64)

    def current_weights() -> dict:
        return {name: _numpy(value, np.float32) for name, value in box["params"].items()}

    return Trainer(step, logits, current_weights)


def _numpy(values: mx.array, dtype) -> np.ndarray:
    return np.asarray(values.astype(mx.float32)).astype(dtype)
