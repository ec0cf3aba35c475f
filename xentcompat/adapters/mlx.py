"""MLX loss APIs (`mlx.nn.losses`, `mx.fast.cross_entropy` and the hand-written forms), forward and backward
(`mx.value_and_grad`), one function each.

Layout is channels-last, as in MLX (axis=-1): logits (N, C) -> (n, d1, ..., C), labels (N,) -> (n, d1, ...),
probabilities like logits. `mlx.nn.losses.cross_entropy` takes the reduction as an argument (its default is
'none') and class weights as one weight per position (`weights=w[y]`: the mean stays over positions, mean_over
"rows"); the hand-written forms are reduced by the user (`.mean()` / `.sum()`). Loss and gradient come back as the
reference's rows, (N,) and (N, C); the gradient of "none" is that of the sum. Labels reach MLX in their own dtype.

Mode "eager" runs the loss and its gradient op by op (`mx.value_and_grad`, then `mx.eval`); mode "compiled" runs
the same function under `mx.compile`, one compiled function per API and options for the process. MLX's own
functions are C bindings: the adapter calls the ones that refuse input (and `mx.eval`, where a lazy graph runs)
through `framework_call`, so that what they raise is recorded as MLX's answer.
"""

from __future__ import annotations

import functools

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from xentcompat.adapters.base import EAGER_AND_COMPILED, Call, framework_call, register
from xentcompat.adapters.layout import native, native_code
from xentcompat.adapters.repro import array_code, target_lines

LABEL_OPTIONS = frozenset({"reduction", "weight", "label_smoothing", "extra_dims"})
PROBS_OPTIONS = frozenset({"reduction", "label_smoothing", "extra_dims"})
PLAIN_OPTIONS = frozenset({"reduction", "extra_dims"})
REDUCERS = {"mean": "({}).mean()", "sum": "({}).sum()", "none": "{}"}
DTYPES = {"float16": mx.float16, "bfloat16": mx.bfloat16, "float32": mx.float32, "float64": mx.float64}


def versions() -> dict[str, str]:
    return {"mlx": mx.__version__}


def available_devices() -> dict[str, str]:
    devices = {"cpu": "cpu"}
    if _has_gpu():
        devices["cuda"] = "gpu"
    return devices


def _has_gpu() -> bool:
    cuda = getattr(mx, "cuda", None)
    return bool(cuda is not None and cuda.is_available())


def device_alive(kind: str) -> None:
    """A trivial operation on the `kind` device, evaluated: raises when a fault left it unusable."""
    mx.eval(mx.ones(1, stream=_device(kind)) + 1)


def _device(kind: str):
    return mx.gpu if kind == "cuda" else mx.cpu


def _array(values: np.ndarray, call: Call) -> mx.array:
    """`values` (float64, representable in the cell dtype) as a dtype array in the user's layout: exact (bfloat16
    goes through float32, which holds every bfloat16 value)."""
    values = np.asarray(native(values, call.problem.options.extra_dims), np.float64)
    if call.dtype == "float64":
        return mx.array(values, dtype=mx.float64)
    return mx.array(values.astype(np.float32)).astype(DTYPES[call.dtype])


def _labels(call: Call) -> mx.array:
    return mx.array(native(call.problem.labels, call.problem.options.extra_dims))


def _numpy(values: mx.array) -> np.ndarray:
    if values.dtype == mx.bfloat16:
        values = values.astype(mx.float32)
    return np.asarray(values).astype(np.float64)


def _loss_and_grad(call: Call, loss_of, targets) -> tuple:
    """The loss `loss_of(x, targets)` (reduced as the call asks) and d loss / d x (of the sum for "none"), in the
    call's mode and on its device; back as the reference's rows."""
    x = _array(call.problem.logits, call)
    step = _compiled(loss_of) if call.mode == "compiled" else _step(loss_of)
    with mx.stream(_device(call.device)):
        loss, grad = framework_call(step, x, targets)
        framework_call(mx.eval, loss, grad)
    loss = _numpy(loss)
    return (loss.reshape(-1) if loss.ndim else loss), _numpy(grad).reshape(call.problem.logits.shape)


def _step(loss_of):
    def total(x, targets):
        loss = loss_of(x, targets)
        return loss.sum(), loss

    def step(x, targets):
        (_, loss), grad = mx.value_and_grad(total)(x, targets)
        return loss, grad

    return step


@functools.cache
def _compiled(loss_of):
    return mx.compile(_step(loss_of))


@functools.cache
def _cross_entropy(reduction: str, label_smoothing: float, weighted: bool):
    """nn.losses.cross_entropy with these options, as a function of (logits, targets) or (logits, (labels,
    weights)) when class weights are given."""
    def loss_of(x, targets):
        labels, weights = targets if weighted else (targets, None)
        return nn.losses.cross_entropy(x, labels, weights=weights, label_smoothing=label_smoothing,
                                       reduction=reduction)
    return loss_of


def _user_reduced(rows, reduction: str):
    """A loss of one value per position, reduced as the user writes it."""
    reduce = {"mean": mx.mean, "sum": mx.sum, "none": lambda values: values}[reduction]

    @functools.wraps(rows)
    def loss_of(x, targets):
        return reduce(rows(x, targets))
    return loss_of


def _fast_rows(x, y):
    return framework_call(mx.fast.cross_entropy, x, y)


def _nll_log_softmax_rows(x, y):
    return nn.losses.nll_loss(x - framework_call(mx.logsumexp, x, axis=-1, keepdims=True), y)


def _nll_log_of_softmax_rows(x, y):
    return nn.losses.nll_loss(mx.log(framework_call(mx.softmax, x, axis=-1)), y)


def _cross_entropy_of_softmax_rows(x, y):
    return nn.losses.cross_entropy(framework_call(mx.softmax, x, axis=-1), y)


_USER_REDUCED = {rows: {reduction: _user_reduced(rows, reduction) for reduction in REDUCERS}
                 for rows in (_fast_rows, _nll_log_softmax_rows, _nll_log_of_softmax_rows,
                              _cross_entropy_of_softmax_rows)}


# the calls as a model's training step makes them (the mean over the batch): what `xentcompat train` runs
def _mean_cross_entropy(z, y):
    return nn.losses.cross_entropy(z, y, reduction="mean")


def _mean_cross_entropy_of_softmax(z, y):
    return nn.losses.cross_entropy(mx.softmax(z, axis=-1), y, reduction="mean")


def _mean_nll_log_of_softmax(z, y):
    return nn.losses.nll_loss(mx.log(mx.softmax(z, axis=-1)), y, reduction="mean")


def _options_code(options, weighted: bool) -> str:
    parts = ([", weights=mx.take(w, y)"] if weighted else []) + \
        ([f", label_smoothing={options.label_smoothing}"] if options.label_smoothing else [])
    return "".join(parts) + f", reduction={options.reduction!r}"


@register("mlx", "mlx.nn.losses.cross_entropy", "nn.losses.cross_entropy(x, y{options})", supports=LABEL_OPTIONS,
          mean_over="rows", modes=EAGER_AND_COMPILED, loss=_mean_cross_entropy)
def cross_entropy(call: Call):
    options = call.problem.options
    weighted = options.weight is not None
    labels = _labels(call)
    targets = (labels, mx.take(mx.array(np.asarray(options.weight, np.float64)).astype(DTYPES[call.dtype]), labels)) \
        if weighted else labels
    return _loss_and_grad(call, _cross_entropy(options.reduction, options.label_smoothing, weighted), targets)


@register("mlx", "mlx.nn.losses.cross_entropy[probs]", "nn.losses.cross_entropy(x, q{options})", targets="probs",
          supports=PROBS_OPTIONS, mean_over="rows", modes=EAGER_AND_COMPILED)
def cross_entropy_probs(call: Call):
    options = call.problem.options
    return _loss_and_grad(call, _cross_entropy(options.reduction, options.label_smoothing, False),
                          _array(call.problem.probs, call))


@register("mlx", "mx.fast.cross_entropy", "mx.fast.cross_entropy(x, y)", supports=PLAIN_OPTIONS,
          mean_over="rows", modes=EAGER_AND_COMPILED)
def fast_cross_entropy(call: Call):
    """The fused kernel on Metal and CUDA; on the CPU the unfused fallback, which reduces in the logits' dtype."""
    return _loss_and_grad(call, _USER_REDUCED[_fast_rows][call.problem.options.reduction], _labels(call))


@register("mlx", "mlx.nn.losses.nll_loss(log_softmax)", "nn.losses.nll_loss(x - mx.logsumexp(x, axis=-1, "
          "keepdims=True), y)", supports=PLAIN_OPTIONS, mean_over="rows", modes=EAGER_AND_COMPILED)
def nll_log_softmax(call: Call):
    return _loss_and_grad(call, _USER_REDUCED[_nll_log_softmax_rows][call.problem.options.reduction],
                          _labels(call))


@register("mlx", "mlx.nn.losses.nll_loss(log(softmax))", "nn.losses.nll_loss(mx.log(mx.softmax(x, axis=-1)), y)",
          supports=PLAIN_OPTIONS, mean_over="rows", modes=EAGER_AND_COMPILED, loss=_mean_nll_log_of_softmax)
def nll_log_of_softmax(call: Call):
    """The tutorial form: log of the probabilities."""
    return _loss_and_grad(call, _USER_REDUCED[_nll_log_of_softmax_rows][call.problem.options.reduction],
                          _labels(call))


@register("mlx", "mlx.nn.losses.cross_entropy(softmax)", "nn.losses.cross_entropy(mx.softmax(x, axis=-1), y)",
          supports=PLAIN_OPTIONS, mean_over="rows", modes=EAGER_AND_COMPILED, loss=_mean_cross_entropy_of_softmax)
def cross_entropy_of_softmax(call: Call):
    """The double softmax: a model ending in a softmax, fed to a loss that applies its own."""
    return _loss_and_grad(call, _USER_REDUCED[_cross_entropy_of_softmax_rows][call.problem.options.reduction],
                          _labels(call))


def repro(api, call: Call, logits_code: str | None) -> str:
    """A copy-paste MLX script that makes the same call (labels in their own dtype, the user's layout)."""
    problem, options = call.problem, call.problem.options
    extra_dims, dtype = options.extra_dims, f"mx.{call.dtype}"
    source = array_code(problem.logits, "logits") if logits_code is None else logits_code
    lines = ["import numpy as np", "import mlx.core as mx", "import mlx.nn as nn", "",
             f"mx.set_default_device(mx.{'gpu' if call.device == 'cuda' else 'cpu'})",
             f"x = mx.array(np.asarray({source}, dtype=np.float64){native_code(extra_dims, problem.num_classes)}"
             f".astype(np.float32)).astype({dtype})"]
    lines += target_lines(problem, lambda code: f"mx.array({code})",
                          lambda code: f"mx.array({code}.astype(np.float32)).astype({dtype})")
    if options.weight is not None:
        lines.append(f"w = mx.array(np.asarray({list(options.weight)}, dtype=np.float32)).astype({dtype})")
    if "{options}" in api.expression:
        loss = api.expression.format(options=_options_code(options, options.weight is not None))
    else:
        loss = REDUCERS[options.reduction].format(api.expression)
    lines += ["", "", "def loss_and_grad(x):", f"    loss = {loss}", "    return loss.sum(), loss", "",
              "", "step = mx.value_and_grad(loss_and_grad)" if call.mode != "compiled"
              else "step = mx.compile(mx.value_and_grad(loss_and_grad))",
              "(_, loss), grad = step(x)", "print(loss, grad)"]
    return "\n".join(lines)
