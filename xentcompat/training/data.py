"""The numbers every framework shares: the digits split, the batch order, the initial weights.

Everything random is drawn here, in numpy, from the seed, and handed to the frameworks as arrays: the same seed gives
every framework the same initial weights (bit for bit) and the same batches in the same order.

Glorot-uniform (Glorot & Bengio 2010): a kernel of shape (fan_in, fan_out) is drawn from U(-l, l) with
l = sqrt(6 / (fan_in + fan_out)), which keeps the variance of activations and of gradients about equal across layers;
biases start at zero. Kernels are stored (inputs, outputs), as Keras and `x @ w` have them; PyTorch's Linear holds the
transpose.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np

from xentcompat.training.experiment import CLASSES, Config

PARAMETERS = ("hidden.kernel", "hidden.bias", "output.kernel", "output.bias")


@dataclass(frozen=True)
class Digits:
    """The split: inputs in [0, 1] (pixel / 16) as float32, labels as int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@functools.cache
def digits(test_fraction: float, split_seed: int) -> Digits:
    """scikit-learn's bundled digits, split once: stratified by label, seeded, the same for every seed and run."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    inputs = (bunch.data / 16.0).astype(np.float32)
    labels = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(inputs, labels, test_size=test_fraction, stratify=labels,
                                                        random_state=split_seed)
    return Digits(*(np.ascontiguousarray(a) for a in (x_train, y_train, x_test, y_test)))


def config_digits(config: Config) -> Digits:
    return digits(config.test_fraction, config.split_seed)


def epoch_order(seed: int, epoch: int, rows: int) -> np.ndarray:
    """The order of the training rows in epoch `epoch` (0-based) of seed `seed`."""
    return np.random.default_rng([seed, epoch + 1]).permutation(rows)


def batches(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Consecutive slices of `order`; the last one holds the remainder."""
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def glorot_uniform(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)


def initial_weights(seed: int, inputs: int, hidden: int, classes: int = CLASSES) -> dict[str, np.ndarray]:
    """The MLP's starting point for `seed`, float32, in `PARAMETERS` order."""
    rng = np.random.default_rng(seed)
    hidden_kernel = glorot_uniform(rng, inputs, hidden)
    output_kernel = glorot_uniform(rng, hidden, classes)
    return {"hidden.kernel": hidden_kernel, "hidden.bias": np.zeros(hidden, np.float32),
            "output.kernel": output_kernel, "output.bias": np.zeros(classes, np.float32)}


def weights_digest(weights: dict[str, np.ndarray]) -> str:
    """A short SHA-256 of the weights as float32 (a 16-bit weight is exact in float32), in `PARAMETERS` order."""
    digest = hashlib.sha256()
    for name in PARAMETERS:
        digest.update(np.ascontiguousarray(np.asarray(weights[name], dtype=np.float32)).astype("<f4").tobytes())
    return digest.hexdigest()[:16]


def numpy_logits(weights: dict[str, np.ndarray], inputs: np.ndarray) -> np.ndarray:
    """z = relu(x W1 + b1) W2 + b2 in float64: an independent forward pass to check what a framework reports."""
    w = {name: np.asarray(value, dtype=np.float64) for name, value in weights.items()}
    hidden = np.maximum(np.asarray(inputs, np.float64) @ w["hidden.kernel"] + w["hidden.bias"], 0.0)
    return hidden @ w["output.kernel"] + w["output.bias"]
