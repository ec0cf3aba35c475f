"""What one training run records, per step and per epoch, computed in float64 from what the framework returned.

Per step the framework hands back its loss value, d(loss)/dz and z for the batch (z: the output layer's
pre-activation, as the step's forward pass computed it, before the update). After the epoch's last step its forward
pass gives z for the test rows. Everything else is computed here:

- `test_accuracy`: the fraction of test rows whose largest logit is the label's; a row with a non-finite logit counts
  as wrong (it predicts nothing).
- `train_loss`: the mean of the variant's own loss values over the epoch's steps (what a progress bar shows); NaN or
  inf when any step's was.
- `grad_norm`: the mean over the epoch's steps of ||d(loss)/dz||₂ (all batch elements); non-finite when any was.
- `nonfinite_steps`: steps whose loss or d(loss)/dz held a NaN or an infinity.
- `test_loss`: the true cross-entropy of the test rows, mean of lse(z) - z_y in float64 whatever the variant
  optimised, so every variant is judged on one scale.
- `logit_spread`: the largest max(z) - min(z) of a training row at the step that used it: the softmax's smallest
  probability is about exp(-spread), so it says how saturated the outputs were.
- `below_clip`: the fraction of the epoch's training rows whose target probability p_y = exp(z_y - lse(z)), at the
  step that used them, is below 1e-7, where Keras' from_logits=False clips it (the row's loss is then capped and its
  gradient zero).
- `prob_underflow`: the fraction of the epoch's training rows with a class probability p_j = exp(z_j - lse(z)), at
  the step that used them, that rounds to 0 in the regime's dtype (below half its smallest subnormal): there
  log(softmax) is -inf, and its backward divides by p_j: 0 / 0 = NaN for a non-target class, whose gradient into the
  log is 0, and an infinite loss for the target.

Rows whose logits are not finite count in neither fraction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import ml_dtypes
import numpy as np

from xentcompat.training.experiment import KERAS_EPSILON

_DTYPES = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32, "float64": np.float64}


def grad_norm(grad) -> float:
    """||g||₂ over every element, in float64 (NaN or inf when an element is)."""
    values = np.asarray(grad, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sqrt(np.sum(values * values)))


def finite_step(loss: float, grad) -> bool:
    return math.isfinite(loss) and bool(np.all(np.isfinite(np.asarray(grad, dtype=np.float64))))


def log_probabilities(logits) -> np.ndarray:
    """log p = z - lse(z) per row, in float64 (NaN for a row with a non-finite logit)."""
    logits = np.asarray(logits, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        top = np.max(logits, axis=1, keepdims=True)
        return logits - (top + np.log(np.sum(np.exp(logits - top), axis=1, keepdims=True)))


def log_target_probability(logits, labels) -> np.ndarray:
    """log p_y = z_y - lse(z) per row, in float64 (NaN for a row with a non-finite logit)."""
    logits = np.asarray(logits, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        top = np.max(logits, axis=1, keepdims=True)
        lse = top[:, 0] + np.log(np.sum(np.exp(logits - top), axis=1))
        return logits[np.arange(len(logits)), np.asarray(labels)] - lse


def underflow_log(dtype: str) -> float:
    """log of the largest probability that rounds to 0 in `dtype` (half its smallest subnormal)."""
    return math.log(float(ml_dtypes.finfo(_DTYPES[dtype]).smallest_subnormal) / 2)


@dataclass
class Saturation:
    """How confident a set of rows' outputs were: the widest row, and how many rows had the target below the clip
    or a probability that rounds to 0, of how many."""

    spread: float = math.nan
    below_clip: int = 0
    underflow: int = 0
    rows: int = 0

    def add(self, logits, labels, dtype: str) -> None:
        logits = np.asarray(logits, dtype=np.float64)
        finite = np.all(np.isfinite(logits), axis=1)
        log_p = log_target_probability(logits, labels)
        smallest = np.min(log_probabilities(logits), axis=1)
        if finite.any():
            widest = float(np.max(np.max(logits[finite], axis=1) - np.min(logits[finite], axis=1)))
            self.spread = widest if math.isnan(self.spread) else max(self.spread, widest)
        with np.errstate(invalid="ignore"):
            self.below_clip += int(np.sum(finite & (log_p < math.log(KERAS_EPSILON))))
            self.underflow += int(np.sum(finite & (smallest < underflow_log(dtype))))
        self.rows += len(logits)

    def summary(self) -> dict:
        rows = max(self.rows, 1)
        return {"logit_spread": self.spread, "below_clip": self.below_clip / rows,
                "prob_underflow": self.underflow / rows}


def saturation(logits, labels, dtype: str) -> dict:
    """`logit_spread`, `below_clip` and `prob_underflow` of one set of rows."""
    found = Saturation()
    found.add(logits, labels, dtype)
    return found.summary()


@dataclass
class EpochTally:
    """The steps of one epoch: their loss values, gradient norms, how many were not finite, and how saturated the
    rows were at their step."""

    dtype: str = "float32"
    losses: list[float] = field(default_factory=list)
    norms: list[float] = field(default_factory=list)
    nonfinite_steps: int = 0
    saturation: Saturation = field(default_factory=Saturation)

    def add(self, loss, grad, logits, labels) -> bool:
        """Record one step (its loss, d loss / dz, and z of its rows with their labels); whether it was finite."""
        loss = float(loss)
        finite = finite_step(loss, grad)
        self.losses.append(loss)
        self.norms.append(grad_norm(grad))
        self.nonfinite_steps += not finite
        self.saturation.add(logits, labels, self.dtype)
        return finite

    def summary(self) -> dict:
        return {"train_loss": _mean(self.losses), "grad_norm": _mean(self.norms),
                "nonfinite_steps": self.nonfinite_steps, **self.saturation.summary()}


def _mean(values: list[float]) -> float:
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.mean(np.asarray(values, dtype=np.float64))) if values else math.nan


def accuracy(logits, labels) -> float:
    """The fraction of rows whose largest logit is the label's; a row with a non-finite logit is wrong."""
    logits = np.asarray(logits, dtype=np.float64)
    finite = np.all(np.isfinite(logits), axis=1)
    predicted = np.argmax(np.where(finite[:, None], logits, 0.0), axis=1)
    return float(np.mean(finite & (predicted == np.asarray(labels))))


def reference_loss(logits, labels) -> float:
    """The mean cross-entropy of the rows, -mean(log p_y), in float64."""
    with np.errstate(invalid="ignore"):
        return float(-np.mean(log_target_probability(logits, labels)))


def epoch_metrics(tally: EpochTally, test_logits, y_test) -> dict:
    """Every `EPOCH_METRICS` entry of one epoch."""
    return {"test_accuracy": accuracy(test_logits, y_test), **tally.summary(),
            "test_loss": reference_loss(test_logits, y_test)}
