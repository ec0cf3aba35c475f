"""TensorFlow's `tf.nn` softmax cross-entropy ops, forward and backward (`tf.GradientTape`), one function each.

They return one loss per position; the reduction is the user's (`tf.reduce_mean` / `tf.reduce_sum`), so their
options are `reduction` and `extra_dims`, channels-last: logits (N, C) -> (n, d1, ..., C), labels (N,) -> (n, d1, ...),
probabilities like logits, and the user's mean is over every position. Loss and gradient come back as the reference's
rows, (N,) and (N, C). Labels reach TensorFlow as the user holds them: their own dtype (int64, int32, uint8, float)
and length.

Each op is a function of the logits and its targets, `rows(x, t)`. Mode "eager" runs the loss and its
`tf.GradientTape` op by op; mode "compiled" runs that same tape computation inside `tf.function(jit_compile=True)`
(XLA), as users compile a train step: one tf.function per op for the whole process (`reduce_retracing=True`, so a
new shape relaxes the trace instead of adding one; XLA still compiles per shape), the reduction a Python constant.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from xentcompat.adapters.base import EAGER_AND_COMPILED, Call, register
from xentcompat.adapters.layout import native, native_code
from xentcompat.adapters.repro import array_code

OPTIONS = frozenset({"reduction", "extra_dims"})  # no class weights, ignore_index or label smoothing
REDUCERS = {"mean": "tf.reduce_mean({})", "sum": "tf.reduce_sum({})", "none": "{}"}
# the bench times each API through `_loss_and_grad`, the helper every API's function here calls (see xentcompat.bench.steps)
BENCH_HELPER, BENCH_STEPS = "_loss_and_grad", "xentcompat.bench.steps_tf"


def versions() -> dict[str, str]:
    return {"tensorflow": tf.__version__}


def available_devices() -> dict[str, str]:
    devices = {"cpu": "cpu"}
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        devices["cuda"] = gpus[0].name
    return devices


def device_alive(device: str) -> None:
    """A trivial operation on `device`, read back: raises when a fault left it unusable."""
    with tf.device("/GPU:0" if device == "cuda" else "/CPU:0"):
        (tf.ones((1,)) + 1.0).numpy()


def tensor(values: np.ndarray, call: Call) -> tf.Tensor:
    """`values` (float64, already representable in the cell dtype) as a tensor of that dtype in the user's layout:
    the cast is exact."""
    values = native(values, call.problem.options.extra_dims)
    return tf.cast(tf.constant(values, dtype=tf.float64), getattr(tf, call.dtype))


def _labels(call: Call) -> tf.Tensor:
    """The label array in its own dtype and shape (no cast), in the user's layout."""
    return tf.constant(native(call.problem.labels, call.problem.options.extra_dims))


def device_name(call: Call) -> str:
    return "/GPU:0" if call.device == "cuda" else "/CPU:0"


def _reduce(rows: tf.Tensor, reduction: str) -> tf.Tensor:
    return {"mean": tf.reduce_mean, "sum": tf.reduce_sum, "none": tf.identity}[reduction](rows)


def loss_and_gradient(rows, x: tf.Tensor, t: tf.Tensor, reduction: str) -> tuple:
    """The reduced loss of `rows(x, t)` and d loss / d x (of the sum for "none") from a `tf.GradientTape`.
    Called as it is this runs op by op (eager); `compiled(rows)` is the same inside `tf.function(jit_compile=True)`."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = _reduce(rows(x, t), reduction)
    return loss, tape.gradient(loss, x)


def compiled(rows):
    """The module-level XLA-compiled loss-and-gradient of one op: `reduction` a Python constant (part of the trace
    key), logits and targets tensors."""
    def step(x, t, reduction):
        return loss_and_gradient(rows, x, t, reduction)

    return tf.function(step, jit_compile=True, reduce_retracing=True)


def _loss_and_grad(call: Call, rows, xla, targets) -> tuple:
    """Loss and gradient of one op in the call's mode; a per-position loss (n, d1, ...) comes back as (N,), the
    gradient as (N, C). `targets(call)` makes the labels or probabilities (on the cell's device)."""
    run = xla if call.mode == "compiled" else (lambda x, t, reduction: loss_and_gradient(rows, x, t, reduction))
    with tf.device(device_name(call)):
        loss, grad = run(tensor(call.problem.logits, call), targets(call), call.problem.options.reduction)
        loss, grad = loss.numpy(), grad.numpy()
    return (loss.reshape(-1) if loss.ndim else loss), grad.reshape(call.problem.logits.shape)


def _sparse_rows(x, y):
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x)


def _dense_rows(x, q):
    return tf.nn.softmax_cross_entropy_with_logits(labels=q, logits=x)


_sparse_xla = compiled(_sparse_rows)
_dense_xla = compiled(_dense_rows)
COMPILED = (_sparse_xla, _dense_xla)


@register("tensorflow", "tf.nn.sparse_softmax_cross_entropy_with_logits",
          "tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x)", supports=OPTIONS,
          modes=EAGER_AND_COMPILED)
def sparse_softmax_cross_entropy_with_logits(call: Call):
    return _loss_and_grad(call, _sparse_rows, _sparse_xla, _labels)


@register("tensorflow", "tf.nn.softmax_cross_entropy_with_logits",
          "tf.nn.softmax_cross_entropy_with_logits(labels=q, logits=x)", targets="probs",
          supports=OPTIONS, mean_over="rows", modes=EAGER_AND_COMPILED)
def softmax_cross_entropy_with_logits(call: Call):
    return _loss_and_grad(call, _dense_rows, _dense_xla, lambda call: tensor(call.problem.probs, call))


def repro(api, call: Call, logits_code: str | None) -> str:
    """A copy-paste TensorFlow script that makes the same call on the same device (labels in their own dtype, the
    user's layout)."""
    problem, dtype = call.problem, f"tf.{call.dtype}"
    extra_dims, num_classes = problem.options.extra_dims, problem.num_classes
    source = array_code(problem.logits, "logits") if logits_code is None else logits_code
    body = [f"x = tf.cast(tf.constant(np.asarray({source}){native_code(extra_dims, num_classes)}, "
            f"dtype=tf.float64), {dtype})"]
    if problem.labels is not None:
        labels = f"np.asarray({array_code(problem.labels, 'labels')}, dtype=np.{problem.labels.dtype.name})"
        body.append(f"y = tf.constant({labels}{native_code(extra_dims)})")
    if problem.probs is not None:
        body.append(f"q = tf.cast(tf.constant(np.asarray({array_code(problem.probs, 'probs')})"
                    f"{native_code(extra_dims, num_classes)}, dtype=tf.float64), {dtype})")
    loss = REDUCERS[problem.options.reduction].format(api.expression)
    tape = ["with tf.GradientTape() as tape:", "    tape.watch(x)", f"    loss = {loss}"]
    if call.mode != "compiled":
        body += [*tape, "print(loss, tape.gradient(loss, x))"]
        return "\n".join(["import numpy as np", "import tensorflow as tf", "",
                          f"with tf.device({device_name(call)!r}):", *("    " + line for line in body)])
    t = "y" if problem.labels is not None else "q"
    step = ["@tf.function(jit_compile=True)", f"def loss_and_grad(x, {t}):", *("    " + line for line in tape),
            "    return loss, tape.gradient(loss, x)"]
    body += [f"loss, grad = loss_and_grad(x, {t})", "print(loss, grad)"]
    return "\n".join(["import numpy as np", "import tensorflow as tf", "", "", *step, "", "",
                      f"with tf.device({device_name(call)!r}):", *("    " + line for line in body)])
