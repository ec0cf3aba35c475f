"""PaddlePaddle: `nn.Sequential(Linear, ReLU, Linear)`, `paddle.optimizer.Momentum(momentum=0.9)`, the loss as users
write it.

Paddle's Momentum keeps v ← μ·v + g and steps w ← w − lr·v: the update of torch's SGD with momentum, so the
frameworks follow one trajectory up to rounding. Paddle's Linear holds its weight as (inputs, outputs), the kernel's
own layout. A 16-bit regime is the whole model in that dtype (`model.to(dtype=...)`), inputs cast to it; the loss
runs in it too (Paddle's CPU build has no float16 or bfloat16 cross-entropy kernel: such a run is recorded with the
error it raises).
"""

from __future__ import annotations

import numpy as np
import paddle

from xentcompat.adapters import paddle as adapter
from xentcompat.adapters.base import api_named
from xentcompat.training.experiment import Config, Regime
from xentcompat.training.loop import Trainer
from xentcompat.training.variants import Variant

LAYERS = ((0, "hidden"), (2, "output"))


def loss_of(variant: Variant):
    """The variant's loss: the registered API's own function (every Paddle variant is one the matrix runs)."""
    return api_named(adapter.__name__, variant.api).loss


def versions() -> dict[str, str]:
    return {"paddle": paddle.__version__}


def build_model(weights: dict[str, np.ndarray], dtype: str) -> paddle.nn.Sequential:
    """The MLP holding `weights`, on the CPU, in `dtype`."""
    inputs, hidden = weights["hidden.kernel"].shape
    model = paddle.nn.Sequential(paddle.nn.Linear(inputs, hidden), paddle.nn.ReLU(),
                                 paddle.nn.Linear(hidden, weights["output.kernel"].shape[1]))
    for index, name in LAYERS:
        model[index].weight.set_value(weights[f"{name}.kernel"])
        model[index].bias.set_value(weights[f"{name}.bias"])
    return model.to(dtype=dtype) if dtype != "float32" else model


def make_trainer(variant: Variant, regime: Regime, weights: dict, config: Config) -> Trainer:
    paddle.set_device("cpu")
    dtype = regime.dtype
    model = build_model(weights, dtype)
    optimizer = paddle.optimizer.Momentum(learning_rate=regime.learning_rate, momentum=config.momentum,
                                          parameters=model.parameters())
    loss_fn = loss_of(variant)

    def step(x: np.ndarray, y: np.ndarray):
        z = model(paddle.to_tensor(x).astype(dtype))
        z.retain_grads()
        loss = loss_fn(z, paddle.to_tensor(y))
        optimizer.clear_grad()
        loss.backward()
        optimizer.step()
        return float(loss.astype("float32")), _numpy(z.grad, np.float32), _numpy(z, np.float64)

    def logits(x: np.ndarray) -> np.ndarray:
        with paddle.no_grad():
            return _numpy(model(paddle.to_tensor(x).astype(dtype)), np.float64)

    def current_weights() -> dict:
        return {f"{name}.{part}": _numpy(getattr(model[index], attribute), np.float32).copy()
                for index, name in LAYERS for part, attribute in (("kernel", "weight"), ("bias", "bias"))}

    return Trainer(step, logits, current_weights)


def _numpy(tensor: paddle.Tensor, dtype) -> np.ndarray:
    return tensor.astype("float32").numpy().astype(dtype)
