"""PyTorch: `nn.Sequential(Linear, ReLU, Linear)`, `torch.optim.SGD(momentum=0.9)`, the loss as users write it.

torch's SGD keeps b ← μ·b + g and steps w ← w − lr·b: the same update as optax's `sgd(momentum=μ)` and Keras'
m ← μ·m − lr·g, w ← w + m (m = −lr·b), so the three frameworks follow one trajectory up to rounding.
A 16-bit regime is the whole module in that dtype (`model.to(dtype)`), inputs cast to it; the loss runs in it too.
"""

from __future__ import annotations

import numpy as np
import torch

from xentcompat.adapters import torch as adapter
from xentcompat.adapters.base import api_named
from xentcompat.training.experiment import Config, Regime
from xentcompat.training.loop import Trainer
from xentcompat.training.variants import Variant

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def loss_of(variant: Variant):
    """The variant's loss: the registered API's own function (every PyTorch variant is one the matrix runs)."""
    return api_named(adapter.__name__, variant.api).loss


def versions() -> dict[str, str]:
    return {"torch": torch.__version__}


def build_model(weights: dict[str, np.ndarray], dtype: torch.dtype) -> torch.nn.Sequential:
    """The MLP holding `weights` (Linear keeps the kernel as (outputs, inputs): the transpose)."""
    inputs, hidden = weights["hidden.kernel"].shape
    model = torch.nn.Sequential(torch.nn.Linear(inputs, hidden), torch.nn.ReLU(),
                                torch.nn.Linear(hidden, weights["output.kernel"].shape[1]))
    with torch.no_grad():
        for layer, name in ((model[0], "hidden"), (model[2], "output")):
            layer.weight.copy_(torch.from_numpy(weights[f"{name}.kernel"].T.copy()))
            layer.bias.copy_(torch.from_numpy(weights[f"{name}.bias"]))
    return model.to(dtype)


def make_trainer(variant: Variant, regime: Regime, weights: dict, config: Config) -> Trainer:
    dtype = DTYPES[regime.dtype]
    model = build_model(weights, dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=regime.learning_rate, momentum=config.momentum)
    loss_fn = loss_of(variant)

    def step(x: np.ndarray, y: np.ndarray):
        z = model(torch.from_numpy(x).to(dtype))
        z.retain_grad()
        loss = loss_fn(z, torch.from_numpy(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item(), z.grad.float().numpy(), z.detach().double().numpy()

    def logits(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(x).to(dtype)).double().numpy()

    def current_weights() -> dict:
        with torch.no_grad():
            return {f"{name}.kernel": layer.weight.float().numpy().T.copy() for layer, name in
                    ((model[0], "hidden"), (model[2], "output"))} | {
                f"{name}.bias": layer.bias.float().numpy().copy() for layer, name in
                ((model[0], "hidden"), (model[2], "output"))}

    return Trainer(step, logits, current_weights)
