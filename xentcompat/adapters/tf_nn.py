"""TensorFlow's `tf.nn` softmax cross-entropy ops, forward and backward (`tf.GradientTape`), one function each.

They return one loss per row; the reduction is the user's (`tf.reduce_mean` / `tf.reduce_sum`), so `reduction` is
the only option they offer.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from xentcompat.adapters.base import Call, register
from xentcompat.adapters.repro import literal, probs_literal

REDUCTION_ONLY = frozenset({"reduction"})
REDUCERS = {"mean": "tf.reduce_mean({})", "sum": "tf.reduce_sum({})", "none": "{}"}


def versions() -> dict[str, str]:
    return {"tensorflow": tf.__version__}


def available_devices() -> dict[str, str]:
    devices = {"cpu": "cpu"}
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        devices["cuda"] = gpus[0].name
    return devices


def tensor(values: np.ndarray, dtype: str) -> tf.Tensor:
    """`values` (float64, already representable in `dtype`) as a `dtype` tensor: the cast is exact."""
    return tf.cast(tf.constant(values, dtype=tf.float64), getattr(tf, dtype))


def device_name(call: Call) -> str:
    return "/GPU:0" if call.device == "cuda" else "/CPU:0"


def _reduce(rows: tf.Tensor, reduction: str) -> tf.Tensor:
    return {"mean": tf.reduce_mean, "sum": tf.reduce_sum, "none": tf.identity}[reduction](rows)


def _loss_and_grad(call: Call, rows_of) -> tuple:
    with tf.device(device_name(call)):
        x = tensor(call.problem.logits, call.dtype)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = _reduce(rows_of(x), call.problem.options.reduction)
        return loss.numpy(), tape.gradient(loss, x).numpy()


@register("tensorflow", "tf.nn.sparse_softmax_cross_entropy_with_logits",
          "tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x)", supports=REDUCTION_ONLY)
def sparse_softmax_cross_entropy_with_logits(call: Call):
    labels = tf.constant(call.problem.labels)
    return _loss_and_grad(call, lambda x: tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=x))


@register("tensorflow", "tf.nn.softmax_cross_entropy_with_logits",
          "tf.nn.softmax_cross_entropy_with_logits(labels=q, logits=x)", targets="probs",
          supports=REDUCTION_ONLY, mean_over="rows")
def softmax_cross_entropy_with_logits(call: Call):
    probs = call.problem.probs
    return _loss_and_grad(call, lambda x: tf.nn.softmax_cross_entropy_with_logits(
        labels=tensor(probs, call.dtype), logits=x))


def repro(api, call: Call, logits_code: str | None) -> str:
    """A copy-paste TensorFlow script that makes the same call."""
    problem, dtype = call.problem, f"tf.{call.dtype}"
    source = literal(problem.logits) if logits_code is None else logits_code
    lines = ["import numpy as np", "import tensorflow as tf", "",
             f"x = tf.cast(tf.constant({source}, dtype=tf.float64), {dtype})"]
    if problem.labels is not None:
        lines.append(f"y = tf.constant({literal(problem.labels, 'labels')})")
    if problem.probs is not None:
        lines.append(f"q = tf.cast(tf.constant({probs_literal(problem.probs)}, dtype=tf.float64), {dtype})")
    loss = REDUCERS[problem.options.reduction].format(api.expression)
    lines += ["with tf.GradientTape() as tape:", "    tape.watch(x)", f"    loss = {loss}",
              "print(loss, tape.gradient(loss, x))"]
    return "\n".join(lines)
