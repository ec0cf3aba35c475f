"""One call of a user's loss in its framework: the cell's arrays in, the loss and its gradient out (float64 numpy).

The gradient is the callable's own when it returns (loss, gradient); otherwise the framework's autodiff pulls back ones
through the loss (for reduction "none", the gradient of the sum), as the framework adapters do. Compiled mode wraps
the callable in the framework's compiler (`torch.compile(dynamic=False)`, `jax.jit`).
"""

from __future__ import annotations

import functools

import numpy as np

from xentcompat.adapters.base import Call
from xentcompat.reference.compact import float64_unless_big


class NoGradient(TypeError):
    """A callable without autodiff (numpy) returned a loss alone: there is no gradient to judge."""


def options(call: Call, claimed: tuple[str, ...], to_array) -> dict:
    """The keyword arguments of the claimed options the case sets (`reduction` always, when claimed)."""
    given = call.problem.options
    kwargs = {}
    if "reduction" in claimed:
        kwargs["reduction"] = given.reduction
    if "weight" in claimed and given.weight is not None:
        kwargs["weight"] = to_array(np.asarray(given.weight, np.float64))
    if "ignore_index" in claimed and given.ignore_index is not None:
        kwargs["ignore_index"] = given.ignore_index
    if "label_smoothing" in claimed and given.label_smoothing:
        kwargs["label_smoothing"] = given.label_smoothing
    return kwargs


def _pair(result):
    """(loss, gradient) when the callable returned both, else (loss, None)."""
    if isinstance(result, (tuple, list)) and len(result) == 2:
        return result[0], result[1]
    return result, None


def run_torch(fn, call: Call, claimed: tuple[str, ...], targets: str):
    import torch

    dtype = getattr(torch, call.dtype)
    x = torch.tensor(call.problem.logits, dtype=dtype, device=call.device).requires_grad_()
    t = (torch.as_tensor(call.problem.labels, device=call.device) if targets == "labels"
         else torch.tensor(call.problem.probs, dtype=dtype, device=call.device))
    kwargs = options(call, claimed, lambda values: torch.tensor(values, dtype=dtype, device=call.device))
    run = _torch_compiled(fn) if call.mode == "compiled" else fn
    loss, grad = _pair(run(x, t, **kwargs))
    if grad is None:
        loss.backward(torch.ones_like(loss))
        grad = x.grad
    return _torch_numpy(loss), _torch_numpy(grad)


@functools.cache
def _torch_compiled(fn):
    import torch

    return torch.compile(fn, dynamic=False)


def _torch_numpy(tensor):
    import torch

    tensor = torch.as_tensor(tensor).detach().cpu()
    return float64_unless_big((tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy())


def run_jax(fn, call: Call, claimed: tuple[str, ...], targets: str):
    import jax
    import jax.numpy as jnp

    dtype = getattr(jnp, call.dtype)
    where = jax.devices("gpu" if call.device == "cuda" else "cpu")[0]

    def array(values, as_dtype=None):
        moved = jax.device_put(np.asarray(values) if as_dtype is None else np.asarray(values, np.float64), where)
        return moved if as_dtype is None else moved.astype(as_dtype)

    x = array(call.problem.logits, dtype)
    t = array(call.problem.labels) if targets == "labels" else array(call.problem.probs, dtype)
    kwargs = options(call, claimed, lambda values: array(values, dtype))
    weight = kwargs.pop("weight", None)  # the one array option: traced; the others are Python constants

    def loss_and_grad(x, t, weight):
        """One call of the callable: its loss pulled back through `jax.vjp`, its own gradient kept beside (as aux)."""
        def call(x):
            return _pair(fn(x, t, **kwargs, **({} if weight is None else {"weight": weight})))

        value, pullback, returned = jax.vjp(call, x, has_aux=True)
        return value, returned if returned is not None else pullback(jnp.ones_like(value))[0]

    run = jax.jit(loss_and_grad) if call.mode == "compiled" else loss_and_grad
    value, grad = run(x, t, weight)
    return float64_unless_big(np.asarray(value)), float64_unless_big(np.asarray(grad))


def run_tensorflow(fn, call: Call, claimed: tuple[str, ...], targets: str):
    import tensorflow as tf

    dtype = getattr(tf, call.dtype)
    with tf.device("/GPU:0" if call.device == "cuda" else "/CPU:0"):
        x = tf.cast(tf.constant(np.asarray(call.problem.logits, np.float64)), dtype)
        t = (tf.constant(call.problem.labels) if targets == "labels"
             else tf.cast(tf.constant(np.asarray(call.problem.probs, np.float64)), dtype))
        kwargs = options(call, claimed, lambda values: tf.cast(tf.constant(values), dtype))
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss, grad = _pair(fn(x, t, **kwargs))
        if grad is None:
            grad = tape.gradient(loss, x, output_gradients=tf.ones_like(loss))
    return _tf_numpy(loss), _tf_numpy(grad)


def _tf_numpy(tensor):
    import tensorflow as tf

    return np.asarray(tf.cast(tensor, tf.float64).numpy() if tensor is not None else np.nan)


def run_numpy(fn, call: Call, claimed: tuple[str, ...], targets: str):
    dtype = _numpy_dtype(call.dtype)
    x = np.asarray(call.problem.logits, np.float64).astype(dtype)
    t = np.asarray(call.problem.labels) if targets == "labels" else np.asarray(call.problem.probs).astype(dtype)
    kwargs = options(call, claimed, lambda values: values.astype(dtype))
    loss, grad = _pair(fn(x, t, **kwargs))
    if grad is None:
        raise NoGradient("a numpy loss returns (loss, gradient): numpy has no autodiff to take the gradient")
    return _float64(loss), _float64(grad)


def _numpy_dtype(name: str):
    if name == "bfloat16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    return np.dtype(name)


def _float64(values) -> np.ndarray:
    return np.asarray(values).astype(np.float64)


RUNNERS = {"torch": run_torch, "jax": run_jax, "tensorflow": run_tensorflow, "numpy": run_numpy}
COMPILED = frozenset({"torch", "jax"})  # frameworks whose compiler a check can put around the callable


def version(framework: str) -> str:
    """The installed version of the framework the callable runs in."""
    module = __import__(framework)
    return module.__version__


def devices(framework: str) -> dict[str, str]:
    """Device kind -> name where the framework sees one (cpu always)."""
    found = {"cpu": "cpu"}
    if framework == "torch":
        import torch

        if torch.cuda.is_available():
            found["cuda"] = torch.cuda.get_device_name(0)
    if framework == "jax":
        import jax

        try:
            found["cuda"] = jax.devices("gpu")[0].device_kind
        except RuntimeError:  # no GPU backend in this process
            pass
    if framework == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            found["cuda"] = gpus[0].name
    return found

