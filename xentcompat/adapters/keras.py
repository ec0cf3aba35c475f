"""Keras 3 loss APIs on the backend chosen by KERAS_BACKEND (tensorflow, jax or torch), forward and backward.

Each API runs as users write it: the loss object with its default dtype (`keras.backend.floatx()`, float32), fed
logits, the output of a `keras.layers.Softmax` layer running in the cell's dtype (a model whose last layer is a
softmax), or probabilities from the backend's own softmax. The gradient d loss / d logits comes from the backend's
own autodiff (`tf.GradientTape`, `jax.vjp`, torch autograd), pulling back ones when the loss is one value per row.

Inputs reach Keras as a user holds them: logits in the cell dtype, labels in their own dtype and shape (int64, int32,
uint8, float; a wrong length as it is), probabilities in the cell dtype. Options, with Keras' own parameters:
`reduction` ("mean" is Keras' default "sum_over_batch_size"); class weights as users pass them, one sample weight per
position, `loss(y, x, sample_weight=keras.ops.take(w, y))` (the mean divides by the number of positions, the
reference's `mean_over="rows"`), on the Sparse APIs; `ignore_index` -> `ignore_class=` (Sparse);
`label_smoothing` -> `label_smoothing=` (Categorical; Keras smooths y * (1 - eps) + eps / C, as the reference does);
`extra_dims` channels-last: logits (N, C) -> (n, d1, ..., C), labels (N,) -> (n, d1, ...), probabilities like logits.
Loss and gradient come back as the reference's rows, (N,) and (N, C).

Mode "compiled" is Keras' `jit_compile="auto"`: XLA on TensorFlow (`tf.function(jit_compile=True)`) and on JAX
(`jax.jit`) around the same loss-and-gradient, the targets and sample weights passed in as a training step gets
them; on torch "auto" means eager, so keras-torch has no compiled cells. One compiled function per API, options and
dtype; the compiler's own cache holds one graph per shape and label dtype.
"""

from __future__ import annotations

import functools
import importlib

import keras
import numpy as np

from xentcompat.adapters.base import EAGER_AND_COMPILED, EAGER_ONLY, Call, register
from xentcompat.adapters.layout import classes_first, native, native_code, rows_of_classes_first
from xentcompat.adapters.repro import literal, probs_literal

BACKEND = keras.backend.backend()
SPARSE_OPTIONS = frozenset({"reduction", "weight", "ignore_index", "extra_dims"})
CATEGORICAL_OPTIONS = frozenset({"reduction", "label_smoothing", "extra_dims"})  # class weights: one-hot targets only
REDUCTIONS = {"mean": "sum_over_batch_size", "sum": "sum", "none": "none"}
KERAS_DEVICES = {"cpu": "cpu:0", "cuda": "gpu:0"}
MODES = EAGER_AND_COMPILED if BACKEND in ("tensorflow", "jax") else EAGER_ONLY  # jit_compile="auto"
SPARSE = "keras.losses.SparseCategoricalCrossentropy"
CATEGORICAL = "keras.losses.CategoricalCrossentropy"
CLASSES_FIRST = f"{CATEGORICAL}(from_logits=True)[axis=1]"  # the API whose arrays hold classes on axis 1
SOFTMAX_LAYER = "keras.layers.Softmax(dtype={dtype})(x)"
BACKEND_SOFTMAX = {"tensorflow": "tf.nn.softmax(x, axis=-1)", "jax": "jax.nn.softmax(x, axis=-1)",
                   "torch": "torch.softmax(x, dim=-1)"}[BACKEND]
# the bench times each API through `_run`, the helper every API's function here calls (see xentcompat.bench.steps)
BENCH_HELPER, BENCH_STEPS = "_run", "xentcompat.bench.steps_keras"


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


def device_alive(device: str) -> None:
    """A trivial operation on `device` through the backend, read back: raises when a fault left it unusable."""
    with keras.device(KERAS_DEVICES[device]):
        keras.ops.convert_to_numpy(keras.ops.add(keras.ops.ones((1,)), 1.0))


# --- TensorFlow ---------------------------------------------------------------------------------------------------

def _tf_gpu() -> str | None:
    import tensorflow as tf
    gpus = tf.config.list_logical_devices("GPU")
    return gpus[0].name if gpus else None


def _tf_tensor(values: np.ndarray, dtype: str | None, device: str):
    """`values` (float64 already representable in `dtype`) as a `dtype` tensor: the cast is exact; `dtype` None: the
    array's own dtype (labels).

    TF and JAX place it on the device of the enclosing `keras.device` scope; torch takes `device` explicitly.
    """
    import tensorflow as tf
    return tf.constant(values) if dtype is None else tf.cast(tf.constant(values), dtype)


def _tf_loss_and_grad(logits: np.ndarray, call: Call, loss_of) -> tuple:
    import tensorflow as tf
    x = _tf_tensor(logits, call.dtype, call.device)
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


def _jax_tensor(values: np.ndarray, dtype: str | None, device: str):
    import jax.numpy as jnp
    return jnp.asarray(values) if dtype is None else jnp.asarray(values).astype(dtype)


def _jax_loss_and_grad(logits: np.ndarray, call: Call, loss_of) -> tuple:
    import jax
    import jax.numpy as jnp
    loss, pullback = jax.vjp(loss_of, _jax_tensor(logits, call.dtype, call.device))
    (grad,) = pullback(jnp.ones_like(loss))
    return np.asarray(loss), np.asarray(grad)


def _jax_softmax(x):
    import jax
    return jax.nn.softmax(x, axis=-1)


# --- PyTorch ------------------------------------------------------------------------------------------------------

def _torch_gpu() -> str | None:
    import torch
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def _torch_tensor(values: np.ndarray, dtype: str | None, device: str):
    import torch
    tensor = torch.tensor(values, device=device)
    return tensor if dtype is None else tensor.to(getattr(torch, dtype))


def _torch_loss_and_grad(logits: np.ndarray, call: Call, loss_of) -> tuple:
    import torch
    x = _torch_tensor(logits, call.dtype, call.device).requires_grad_()
    loss = loss_of(x)
    loss.backward(torch.ones_like(loss))
    return tuple(tensor.detach().to(torch.float64).cpu().numpy() for tensor in (loss, x.grad))


def _torch_softmax(x):
    import torch
    return torch.softmax(x, dim=-1)


def _tf_compile(loss_of):
    import tensorflow as tf

    def loss_and_grad(x, targets, weights):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = loss_of(x, targets, weights)
        return loss, tape.gradient(loss, x)

    return tf.function(loss_and_grad, jit_compile=True)


def _jax_compile(loss_of):
    import jax
    import jax.numpy as jnp

    def loss_and_grad(x, targets, weights):
        loss, pullback = jax.vjp(lambda x: loss_of(x, targets, weights), x)
        return loss, pullback(jnp.ones_like(loss))[0]

    return jax.jit(loss_and_grad)


_GPU_NAME = {"tensorflow": _tf_gpu, "jax": _jax_gpu, "torch": _torch_gpu}
_TENSOR = {"tensorflow": _tf_tensor, "jax": _jax_tensor, "torch": _torch_tensor}[BACKEND]
_LOSS_AND_GRAD = {"tensorflow": _tf_loss_and_grad, "jax": _jax_loss_and_grad, "torch": _torch_loss_and_grad}[BACKEND]
_SOFTMAX = {"tensorflow": _tf_softmax, "jax": _jax_softmax, "torch": _torch_softmax}[BACKEND]
_COMPILE = {"tensorflow": _tf_compile, "jax": _jax_compile}.get(BACKEND)


# --- the APIs -----------------------------------------------------------------------------------------------------


def _arguments(options) -> dict:
    """The loss constructor's keyword arguments (beyond from_logits) for `options`, as a user would write them."""
    arguments = {} if options.reduction == "mean" else {"reduction": REDUCTIONS[options.reduction]}
    if options.ignore_index is not None:
        arguments["ignore_class"] = options.ignore_index
    if options.label_smoothing:
        arguments["label_smoothing"] = options.label_smoothing
    return arguments


def _run(call: Call, loss_class, from_logits: bool, predict: str = "logits", axis: int = -1) -> tuple:
    """`loss_class(from_logits=..., **options)(targets, <predict>(x), sample_weight=...)` and its gradient, on the
    cell's device, in the user's layout, in the cell's mode; loss and gradient back as the reference's rows.

    `predict`: "logits" (x itself), "layer" (a Softmax layer in the cell's dtype), "backend" (the backend's own
    softmax) or "exp" (exp(x): a row of probabilities that does not sum to 1). Targets are labels in their own dtype,
    or probabilities in the cell's dtype; class weights become one sample weight per position,
    `keras.ops.take(w, y)`. `axis=1`: logits and probabilities held classes first, `(n, C, d1, ...)`, and the loss
    given `axis=1`.
    """
    problem, options = call.problem, call.problem.options
    dims, arguments = options.extra_dims, tuple(_arguments(options).items()) + ((("axis", 1),) if axis == 1 else ())
    layout = native if axis == -1 else classes_first
    with keras.device(KERAS_DEVICES[call.device]):
        targets = (_TENSOR(native(problem.labels, dims), None, call.device) if problem.labels is not None
                   else _TENSOR(layout(problem.probs, dims), call.dtype, call.device))
        weights = None if options.weight is None else keras.ops.take(np.asarray(options.weight), targets)
        logits = layout(problem.logits, dims)
        if call.mode == "compiled":
            step = _compiled(loss_class, from_logits, predict, arguments, call.dtype)
            value, grad = (np.asarray(t) for t in step(_TENSOR(logits, call.dtype, call.device), targets, weights))
        else:
            loss_of = _loss_of(loss_class, from_logits, predict, arguments, call.dtype)
            value, grad = _LOSS_AND_GRAD(logits, call, lambda x: loss_of(x, targets, weights))
    grad = grad.reshape(problem.logits.shape) if axis == -1 else rows_of_classes_first(grad, problem.logits.shape)
    return (value.reshape(-1) if value.ndim else value), grad


def _loss_of(loss_class, from_logits: bool, predict: str, arguments: tuple, dtype: str):
    """The loss as a function of (logits, targets, sample weights)."""
    loss = loss_class(from_logits=from_logits, **dict(arguments))
    to_input = {"logits": lambda x: x, "layer": keras.layers.Softmax(dtype=dtype), "backend": _SOFTMAX,
                "exp": keras.ops.exp}[predict]
    return lambda x, targets, weights: loss(targets, to_input(x), sample_weight=weights)


@functools.cache
def _compiled(loss_class, from_logits: bool, predict: str, arguments: tuple, dtype: str):
    """The compiled loss-and-gradient of one API with these options at this dtype."""
    return _COMPILE(_loss_of(loss_class, from_logits, predict, arguments, dtype))


def _register(api_id: str, expression: str, targets: str = "labels", areas: frozenset[str] | None = None):
    """Keras' mean divides by the number of positions, sample weights or not: mean_over "rows"."""
    supports = SPARSE_OPTIONS if targets == "labels" else CATEGORICAL_OPTIONS
    return register("keras", api_id, expression, targets=targets, supports=supports, mean_over="rows",
                    backend=BACKEND, modes=MODES, areas=areas)


@_register(f"{SPARSE}(from_logits=True)", f"{SPARSE}(from_logits=True{{options}})(y, x{{weights}})")
def sparse_from_logits(call: Call):
    return _run(call, keras.losses.SparseCategoricalCrossentropy, from_logits=True)


@_register(f"{SPARSE}(from_logits=False)", f"{SPARSE}(from_logits=False{{options}})(y, {SOFTMAX_LAYER}{{weights}})")
def sparse_of_softmax_layer(call: Call):
    return _run(call, keras.losses.SparseCategoricalCrossentropy, from_logits=False, predict="layer")


@_register(f"{SPARSE}(from_logits=True)[after Softmax]",
           f"{SPARSE}(from_logits=True{{options}})(y, {SOFTMAX_LAYER}{{weights}})")
def sparse_from_logits_of_softmax_layer(call: Call):
    """The Keras double softmax: a model ending in a Softmax layer, compiled with from_logits=True."""
    return _run(call, keras.losses.SparseCategoricalCrossentropy, from_logits=True, predict="layer")


@_register(f"{SPARSE}(from_logits=False)[external probs]",
           f"{SPARSE}(from_logits=False{{options}})(y, {BACKEND_SOFTMAX}{{weights}})")
def sparse_of_backend_softmax(call: Call):
    return _run(call, keras.losses.SparseCategoricalCrossentropy, from_logits=False, predict="backend")


@_register(f"{SPARSE}(from_logits=False)[unnormalized probs]",
           f"{SPARSE}(from_logits=False{{options}})(y, keras.ops.exp(x){{weights}})", areas=frozenset({"unnormalized"}))
def sparse_of_unnormalized_probs(call: Call):
    """Probability rows that do not sum to 1 (exp of the logits): Keras divides by the row sum, so the loss is the
    softmax cross-entropy of x; the backends differ in whether they clip to [1e-7, 1 - 1e-7] before or after."""
    return _run(call, keras.losses.SparseCategoricalCrossentropy, from_logits=False, predict="exp")


@_register(f"{CATEGORICAL}(from_logits=True)", f"{CATEGORICAL}(from_logits=True{{options}})(q, x)", targets="probs")
def categorical_from_logits(call: Call):
    return _run(call, keras.losses.CategoricalCrossentropy, from_logits=True)


@_register(f"{CATEGORICAL}(from_logits=False)", f"{CATEGORICAL}(from_logits=False{{options}})(q, {SOFTMAX_LAYER})",
           targets="probs")
def categorical_of_softmax_layer(call: Call):
    return _run(call, keras.losses.CategoricalCrossentropy, from_logits=False, predict="layer")


@_register(f"{CATEGORICAL}(from_logits=False)[external probs]",
           f"{CATEGORICAL}(from_logits=False{{options}})(q, {BACKEND_SOFTMAX})", targets="probs")
def categorical_of_backend_softmax(call: Call):
    return _run(call, keras.losses.CategoricalCrossentropy, from_logits=False, predict="backend")


@_register(CLASSES_FIRST, f"{CATEGORICAL}(from_logits=True, axis=1{{options}})(q, x)", targets="probs",
           areas=frozenset({"options"}))
def categorical_from_logits_classes_first(call: Call):
    """Classes on axis 1, `(n, C, d1, ...)` as PyTorch and channels-first models hold them: Keras' `axis=1`. It probes
    the options (label smoothing spreads over the C classes of that axis), so it runs the option cases only."""
    return _run(call, keras.losses.CategoricalCrossentropy, from_logits=True, axis=1)


# --- reproducers --------------------------------------------------------------------------------------------------

_PIN_CPU = {"tensorflow": 'os.environ["CUDA_VISIBLE_DEVICES"] = ""', "jax": 'os.environ["JAX_PLATFORMS"] = "cpu"',
            "torch": 'os.environ["KERAS_TORCH_DEVICE"] = "cpu"'}


def repro(api, call: Call, logits_code: str | None) -> str:
    """A copy-paste script that makes the same call with this Keras backend (labels in their own dtype, the user's
    layout, the same options and sample weights), its gradient by the backend's autodiff."""
    problem, options = call.problem, call.problem.options
    dims, num_classes = options.extra_dims, problem.num_classes
    arguments = "".join(f", {name}={value!r}" for name, value in _arguments(options).items())
    weights = "" if options.weight is None else ", sample_weight=keras.ops.take(w, y)"
    loss = api.expression.format(options=arguments, weights=weights, dtype=repr(call.dtype))
    lines = ["import os", f'os.environ["KERAS_BACKEND"] = "{BACKEND}"']
    lines += ['os.environ["JAX_ENABLE_X64"] = "1"'] if BACKEND == "jax" else []
    lines += [_PIN_CPU[BACKEND]] if call.device == "cpu" else []
    lines += ["import numpy as np", *_REPRO_IMPORTS[BACKEND], "import keras", ""]
    source = literal(problem.logits) if logits_code is None else logits_code
    first = api.id == CLASSES_FIRST
    lines.append(f"x = {_repro_float(source, dims, num_classes, call.dtype, first)}")
    if problem.labels is not None:
        labels = f"np.asarray({literal(problem.labels, 'labels')}, dtype=np.{problem.labels.dtype.name})"
        lines.append(f"y = {_REPRO_ARRAY[BACKEND].format(source=labels + native_code(dims))}")
    if problem.probs is not None:
        lines.append(f"q = {_repro_float(probs_literal(problem.probs), dims, num_classes, call.dtype, first)}")
    if options.weight is not None:
        lines.append(f"w = np.asarray({list(options.weight)!r})  # class weights")
    if call.mode == "compiled":
        return "\n".join(lines + _REPRO_COMPILED[BACKEND](loss, "y" if problem.labels is not None else "q"))
    return "\n".join(lines + _REPRO_GRAD[BACKEND](loss))


def _repro_float(source: str, extra_dims: tuple[int, ...], num_classes: int, dtype: str, first: bool = False) -> str:
    array = f"np.asarray({source}, dtype=np.float64){native_code(extra_dims, num_classes)}"
    array = f"np.moveaxis({array}, -1, 1)" if first and extra_dims else array
    return _REPRO_FLOAT[BACKEND].format(source=array, dtype=dtype)


_REPRO_IMPORTS = {"tensorflow": ["import tensorflow as tf"], "jax": ["import jax", "import jax.numpy as jnp"],
                  "torch": ["import torch"]}
_REPRO_FLOAT = {"tensorflow": "tf.cast(tf.constant({source}), tf.{dtype})",
                "jax": "jnp.asarray({source}).astype(jnp.{dtype})",
                "torch": "torch.tensor({source}).to(torch.{dtype})"}
_REPRO_ARRAY = {"tensorflow": "tf.constant({source})", "jax": "jnp.asarray({source})",
                "torch": "torch.tensor({source})"}
_REPRO_GRAD = {
    "tensorflow": lambda loss: ["with tf.GradientTape() as tape:", "    tape.watch(x)", f"    loss = {loss}",
                                "print(loss, tape.gradient(loss, x))"],
    "jax": lambda loss: [f"loss, pullback = jax.vjp(lambda x: {loss}, x)",
                         "print(loss, pullback(jnp.ones_like(loss))[0])"],
    "torch": lambda loss: ["x.requires_grad_()", f"loss = {loss}", "loss.backward(torch.ones_like(loss))",
                           "print(loss, x.grad)"],
}
_REPRO_COMPILED = {
    "tensorflow": lambda loss, t: ["", "", "@tf.function(jit_compile=True)", f"def loss_and_grad(x, {t}):",
                                   "    with tf.GradientTape() as tape:", "        tape.watch(x)",
                                   f"        loss = {loss}", "    return loss, tape.gradient(loss, x)", "", "",
                                   f"loss, grad = loss_and_grad(x, {t})", "print(loss, grad)"],
    "jax": lambda loss, t: ["", "", "@jax.jit", f"def loss_and_grad(x, {t}):",
                            f"    loss, pullback = jax.vjp(lambda x: {loss}, x)",
                            "    return loss, pullback(jnp.ones_like(loss))[0]", "", "",
                            f"loss, grad = loss_and_grad(x, {t})", "print(loss, grad)"],
}
