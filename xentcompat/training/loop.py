"""The training loop every framework shares. A framework supplies a `Trainer`: three functions over its own state.

    step(x, y)  -> (loss, d loss / dz, z)   one SGD step on a batch, as users write it; z from its forward pass
    logits(x)   -> z                        the forward pass, no update
    weights()   -> {name: array}            the current weights, `data.PARAMETERS` names, kernels (inputs, outputs)

Everything else (the batches and their order, what is measured, when) is here, so the frameworks differ only where
they must.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from xentcompat.results.training import EPOCH_METRICS
from xentcompat.training.data import batches, config_digits, epoch_order, initial_weights, weights_digest
from xentcompat.training.experiment import Config, Regime
from xentcompat.training.measure import EpochTally, accuracy, epoch_metrics


@dataclass(frozen=True)
class Trainer:
    step: Callable[[np.ndarray, np.ndarray], tuple]
    logits: Callable[[np.ndarray], np.ndarray]
    weights: Callable[[], dict]


@dataclass(frozen=True)
class RunResult:
    """One seed of one variant in one regime: the per-epoch metrics and what identifies the run's weights."""

    metrics: dict[str, list]
    initial_test_accuracy: float
    first_nonfinite_step: int | None
    initial_weights_sha256: str
    final_weights_sha256: str
    final_weights: dict[str, np.ndarray]
    seconds: float

    def to_json(self) -> dict:
        return {"metrics": self.metrics, "initial_test_accuracy": self.initial_test_accuracy,
                "first_nonfinite_step": self.first_nonfinite_step,
                "initial_weights_sha256": self.initial_weights_sha256,
                "final_weights_sha256": self.final_weights_sha256, "seconds": round(self.seconds, 3)}


MakeTrainer = Callable[[object, Regime, dict, Config], Trainer]


def run_seed(make_trainer: MakeTrainer, variant, regime: Regime, seed: int, config: Config) -> RunResult:
    """Train from seed `seed`'s weights for `config.epochs` epochs and measure each epoch."""
    start = time.perf_counter()
    data = config_digits(config)
    weights = initial_weights(seed, data.x_train.shape[1], config.hidden_units)
    trainer = make_trainer(variant, regime, weights, config)
    initial = accuracy(trainer.logits(data.x_test), data.y_test)
    metrics: dict[str, list] = {name: [] for name in EPOCH_METRICS}
    first_nonfinite, step_index = None, 0
    for epoch in range(config.epochs):
        tally = EpochTally(regime.dtype)
        for rows in batches(epoch_order(seed, epoch, len(data.y_train)), config.batch_size):
            loss, grad, logits = trainer.step(data.x_train[rows], data.y_train[rows])
            if not tally.add(loss, grad, logits, data.y_train[rows]) and first_nonfinite is None:
                first_nonfinite = step_index
            step_index += 1
        measured = epoch_metrics(tally, trainer.logits(data.x_test), data.y_test)
        for name in EPOCH_METRICS:
            metrics[name].append(measured[name])
    final = {name: np.asarray(value, dtype=np.float32) for name, value in trainer.weights().items()}
    return RunResult(metrics, initial, first_nonfinite, weights_digest(weights), weights_digest(final), final,
                     time.perf_counter() - start)
