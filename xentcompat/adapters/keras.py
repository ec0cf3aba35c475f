"""Keras 3 loss APIs on the backend chosen by KERAS_BACKEND (tensorflow, jax or torch), forward and backward.

Each API runs as users write it: the loss object with its default dtype (`keras.backend.floatx()`, float32), fed
logits, the output of a `keras.layers.Softmax` layer running in the cell's dtype (a model whose last layer is a
softmax), or probabilities from the backend's own softmax. The gradient d loss / d logits comes from the backend's
own autodiff (`tf.GradientTape`, `jax.vjp`, torch autograd), pulling back ones when the loss is one value per row.

Options: `reduction` only ("mean" is Keras' "sum_over_batch_size"); sample_weight, ignore_class and label_smoothing
are not mapped yet.
"""

from __future__ import annotations

import importlib

import keras
import numpy as np

from xentcompat.adapters.base import Call, register
from xentcompat.adapters.repro import literal, probs_literal

BACKEND = keras.backend.backend()
REDUCTION_ONLY = frozenset({"reduction"})
REDUCTIONS = {"mean": "sum_over_batch_size", "sum": "sum", "none": "none"}
KERAS_DEVICES = {"cpu": "cpu:0", "cuda": "gpu:0"}
SPARSE = "keras.losses.SparseCategoricalCrossentropy"
CATEGORICAL = "keras.losses.CategoricalCrossentropy"
SOFTMAX_LAYER = "keras.layers.Softmax(dtype={dtype})(x)"
BACKEND_SOFTMAX = {"tensorflow": "tf.nn.softmax(x, axis=-1)", "jax": "jax.nn.softmax(x, axis=-1)",
                   "torch": "torch.softmax(x, dim=-1)"}[BACKEND]


def versions() -> dict[str, str]:
    framework = importlib.import_module(BACKEND)
    return {"keras": keras.__version__, BACKEND: framework.__version__}


def available_devices() -> dict[str, str]:
    """Device kind -> device name, for the devices this backend sees."""
    devices = {"cpu": "cpu"}
    gpu = _GPU_NAME[BACKEND]()
    if gpu:
        devices["cuda"] = gpu
    return devices


# --- TensorFlow ---------------------------------------------------------------------------------------------------

def _tf_gpu() -> str | None:
    import tensorflow as tf
    gpus = tf.config.list_logical_devices("GPU")
    return gpus[0].name if gpus else None


def _tf_tensor(values: np.ndarray, dtype: str, device: str):
    """`values` (float64 already representable in `dtype`, or int64 labels) as a `dtype` tensor: the cast is exact.

    TF and JAX place it on the device of the enclosing `keras.device` scope; torch takes `device` explicitly.
    """
    import tensorflow as tf
    return tf.cast(tf.constant(values), dtype)


def _tf_loss_and_grad(call: Call, loss_of) -> tuple:
    import tensorflow as tf
    x = _tf_tensor(call.problem.logits, call.dtype, call.device)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = loss_of(x)
    return loss.numpy(), tape.gradient(loss, x).numpy()


def _tf_softmax(x):
    import tensorflow as tf
    return tf.nn.softmax(x, axis=-1)


# --- JAX ----------------------------------------------------------------------------------------------------------

def _jax_gpu() -> str | None:
    import jax
    gpus = [device for device in jax.devices() if device.platform == "gpu"]
    return gpus[0].device_kind if gpus else None


def _jax_tensor(values: np.ndarray, dtype: str, device: str):
    import jax.numpy as jnp
    return jnp.asarray(values).astype(dtype)


def _jax_loss_and_grad(call: Call, loss_of) -> tuple:
    import jax
    import jax.numpy as jnp
    loss, pullback = jax.vjp(loss_of, _jax_tensor(call.problem.logits, call.dtype, call.device))
    (grad,) = pullback(jnp.ones_like(loss))
    return np.asarray(loss), np.asarray(grad)


def _jax_softmax(x):
    import jax
    return jax.nn.softmax(x, axis=-1)


# --- PyTorch ------------------------------------------------------------------------------------------------------

def _torch_gpu() -> str | None:
    import torch
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def _torch_tensor(values: np.ndarray, dtype: str, device: str):
    import torch
    return torch.tensor(values, device=device).to(getattr(torch, dtype))


def _torch_loss_and_grad(call: Call, loss_of) -> tuple:
    import torch
    x = _torch_tensor(call.problem.logits, call.dtype, call.device).requires_grad_()
    loss = loss_of(x)
    loss.backward(torch.ones_like(loss))
    return tuple(tensor.detach().to(torch.float64).cpu().numpy() for tensor in (loss, x.grad))


def _torch_softmax(x):
    import torch
    return torch.softmax(x, dim=-1)


_GPU_NAME = {"tensorflow": _tf_gpu, "jax": _jax_gpu, "torch": _torch_gpu}
_TENSOR = {"tensorflow": _tf_tensor, "jax": _jax_tensor, "torch": _torch_tensor}[BACKEND]
_LOSS_AND_GRAD = {"tensorflow": _tf_loss_and_grad, "jax": _jax_loss_and_grad, "torch": _torch_loss_and_grad}[BACKEND]
_SOFTMAX = {"tensorflow": _tf_softmax, "jax": _jax_softmax, "torch": _torch_softmax}[BACKEND]


# --- the APIs -----------------------------------------------------------------------------------------------------

def _run(call: Call, loss_class, from_logits: bool, predict=lambda x: x) -> tuple:
    """`loss_class(from_logits=..., reduction=...)(targets, predict(x))` and its gradient, on the cell's device.

    Targets are integer labels, or one-hot probabilities in the cell's dtype.
    """
    loss = loss_class(from_logits=from_logits, reduction=REDUCTIONS[call.problem.options.reduction])
    problem = call.problem
    with keras.device(KERAS_DEVICES[call.device]):
        targets = (_TENSOR(problem.labels, "int64", call.device) if problem.labels is not None
                   else _TENSOR(problem.probs, call.dtype, call.device))
        return _LOSS_AND_GRAD(call, lambda x: loss(targets, predict(x)))


def _softmax_layer(call: Call):
    """A model's softmax last layer, computing in the cell's dtype."""
    return keras.layers.Softmax(dtype=call.dtype)


def _register(api_id: str, expression: str, targets: str = "labels"):
    mean_over = "rows" if targets == "probs" else "weight"
    return register("keras", api_id, expression, targets=targets, supports=REDUCTION_ONLY, mean_over=mean_over,
                    backend=BACKEND)


@_register(f"{SPARSE}(from_logits=True)", f"{SPARSE}(from_logits=True{{options}})(y, x)")
def sparse_from_logits(call: Call):
    return _run(call, keras.losses.SparseCategoricalCrossentropy, from_logits=True)


@_register(f"{SPARSE}(from_logits=False)", f"{SPARSE}(from_logits=False{{options}})(y, {SOFTMAX_LAYER})")
def sparse_of_softmax_layer(call: Call):
    return _run(call, keras.losses.SparseCategoricalCrossentropy, from_logits=False, predict=_softmax_layer(call))


@_register(f"{SPARSE}(from_logits=False)[external probs]",
           f"{SPARSE}(from_logits=False{{options}})(y, {BACKEND_SOFTMAX})")
def sparse_of_backend_softmax(call: Call):
    return _run(call, keras.losses.SparseCategoricalCrossentropy, from_logits=False, predict=_SOFTMAX)


@_register(f"{CATEGORICAL}(from_logits=True)", f"{CATEGORICAL}(from_logits=True{{options}})(q, x)", targets="probs")
def categorical_from_logits(call: Call):
    return _run(call, keras.losses.CategoricalCrossentropy, from_logits=True)


@_register(f"{CATEGORICAL}(from_logits=False)", f"{CATEGORICAL}(from_logits=False{{options}})(q, {SOFTMAX_LAYER})",
           targets="probs")
def categorical_of_softmax_layer(call: Call):
    return _run(call, keras.losses.CategoricalCrossentropy, from_logits=False, predict=_softmax_layer(call))


@_register(f"{CATEGORICAL}(from_logits=False)[external probs]",
           f"{CATEGORICAL}(from_logits=False{{options}})(q, {BACKEND_SOFTMAX})", targets="probs")
def categorical_of_backend_softmax(call: Call):
    return _run(call, keras.losses.CategoricalCrossentropy, from_logits=False, predict=_SOFTMAX)


# --- reproducers --------------------------------------------------------------------------------------------------

_PIN_CPU = {"tensorflow": 'os.environ["CUDA_VISIBLE_DEVICES"] = ""', "jax": 'os.environ["JAX_PLATFORMS"] = "cpu"',
            "torch": 'os.environ["KERAS_TORCH_DEVICE"] = "cpu"'}


def repro(api, call: Call, logits_code: str | None) -> str:
    """A copy-paste script that makes the same call with this Keras backend, its gradient by the backend's autodiff."""
    problem = call.problem
    reduction = problem.options.reduction
    options = "" if reduction == "mean" else f", reduction={REDUCTIONS[reduction]!r}"
    loss = api.expression.format(options=options, dtype=repr(call.dtype))
    lines = ["import os", f'os.environ["KERAS_BACKEND"] = "{BACKEND}"']
    lines += ['os.environ["JAX_ENABLE_X64"] = "1"'] if BACKEND == "jax" else []
    lines += [_PIN_CPU[BACKEND]] if call.device == "cpu" else []
    lines += ["import numpy as np", *_REPRO_IMPORTS[BACKEND], "import keras", ""]
    source = literal(problem.logits) if logits_code is None else logits_code
    lines.append(f"x = {_REPRO_FLOAT[BACKEND].format(source=source, dtype=call.dtype)}")
    if problem.labels is not None:
        lines.append(f"y = {_REPRO_INT[BACKEND].format(source=literal(problem.labels, 'labels'))}")
    if problem.probs is not None:
        lines.append(f"q = {_REPRO_FLOAT[BACKEND].format(source=probs_literal(problem.probs), dtype=call.dtype)}")
    return "\n".join(lines + _REPRO_GRAD[BACKEND](loss))


_REPRO_IMPORTS = {"tensorflow": ["import tensorflow as tf"], "jax": ["import jax", "import jax.numpy as jnp"],
                  "torch": ["import torch"]}
_REPRO_FLOAT = {"tensorflow": "tf.cast(tf.constant({source}, dtype=tf.float64), tf.{dtype})",
                "jax": "jnp.asarray({source}, dtype=jnp.float64).astype(jnp.{dtype})",
                "torch": "torch.tensor({source}, dtype=torch.float64).to(torch.{dtype})"}
_REPRO_INT = {"tensorflow": "tf.constant({source})", "jax": "jnp.asarray({source})", "torch": "torch.tensor({source})"}
_REPRO_GRAD = {
    "tensorflow": lambda loss: ["with tf.GradientTape() as tape:", "    tape.watch(x)", f"    loss = {loss}",
                                "print(loss, tape.gradient(loss, x))"],
    "jax": lambda loss: [f"loss, pullback = jax.vjp(lambda x: {loss}, x)",
                         "print(loss, pullback(jnp.ones_like(loss))[0])"],
    "torch": lambda loss: ["x.requires_grad_()", f"loss = {loss}", "loss.backward(torch.ones_like(loss))",
                           "print(loss, x.grad)"],
}
