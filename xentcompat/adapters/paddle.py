"""PaddlePaddle loss APIs (`paddle.nn.functional.cross_entropy` and the hand-written forms), forward and backward
(`loss.backward()`, the gradient read from `x.grad`), one function each.

Layout is channels-last, as Paddle's default `axis=-1`: logits (N, C) -> (n, d1, ..., C), labels (N,) ->
(n, d1, ...), probabilities like logits. `cross_entropy` takes reduction, class weights, `ignore_index`,
`label_smoothing` and `soft_label` itself; the hand-written forms are reduced by the user (`.mean()` / `.sum()`).
Loss and gradient come back as the reference's rows, (N,) and (N, C); the gradient of "none" is that of the sum.
Labels reach Paddle in their own dtype.

Mode "eager" runs the call in Paddle's dynamic graph; mode "compiled" runs the same function under
`paddle.jit.to_static(full_graph=True)` (a static program per input shape and dtype, the backward built from it).
"""

from __future__ import annotations

import functools

import numpy as np
import paddle
import paddle.nn.functional as F

from xentcompat.adapters.base import EAGER_AND_COMPILED, Call, framework_call, register
from xentcompat.adapters.layout import native, native_code
from xentcompat.adapters.repro import array_code, target_lines

LABEL_OPTIONS = frozenset({"reduction", "weight", "ignore_index", "label_smoothing", "extra_dims"})
PROBS_OPTIONS = frozenset({"reduction", "label_smoothing", "extra_dims"})
PLAIN_OPTIONS = frozenset({"reduction", "extra_dims"})
LOG_SOFTMAX_TIME = ("F.log_softmax's CPU kernel, forward and backward, Paddle 3.3.1 on 2 cores: 4 x 32,768 logits "
                    "0.9 s, 1 x 65,536 7 s, 4 x 128,256 14 s (float32; float64 twice that)")
REDUCERS = {"mean": "({}).mean()", "sum": "({}).sum()", "none": "{}"}


def versions() -> dict[str, str]:
    return {"paddle": paddle.__version__}


def available_devices() -> dict[str, str]:
    devices = {"cpu": "cpu"}
    if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
        devices["cuda"] = "gpu:0"
    return devices


def device_alive(kind: str) -> None:
    """A trivial operation on the `kind` device, read back: raises when a fault left it unusable."""
    (paddle.ones([1], dtype="float32").to(_place(kind)) + 1).numpy()


def _place(kind: str) -> str:
    return "gpu:0" if kind == "cuda" else "cpu"


def _tensor(values: np.ndarray, call: Call, extra_dims) -> paddle.Tensor:
    """`values` (float64, representable in the cell dtype) as a tensor of the cell dtype in the user's layout:
    exact (float16 and bfloat16 go through float32, which holds every value of theirs)."""
    values = np.asarray(native(values, extra_dims), np.float64)
    if call.dtype == "float64":
        return paddle.to_tensor(values, dtype="float64", place=_place(call.device))
    return paddle.to_tensor(values.astype(np.float32), place=_place(call.device)).astype(call.dtype)


def _labels(call: Call) -> paddle.Tensor:
    labels = native(call.problem.labels, call.problem.options.extra_dims)
    return framework_call(paddle.to_tensor, labels, place=_place(call.device))


def _numpy(values: paddle.Tensor) -> np.ndarray:
    if values.dtype in (paddle.bfloat16, paddle.float16):
        values = values.astype("float32")
    return np.asarray(values.numpy()).astype(np.float64)


def _loss_and_grad(call: Call, loss_of, targets) -> tuple:
    """The loss `loss_of(x, *targets)` and d loss / d x (of the sum for "none"), in the call's mode and on its
    device; back as the reference's rows."""
    x = _tensor(call.problem.logits, call, call.problem.options.extra_dims)
    x.stop_gradient = False
    step = _static(loss_of) if call.mode == "compiled" else loss_of
    loss = step(x, *targets)
    framework_call(loss.sum().backward)
    grad = x.grad
    grad = np.zeros(call.problem.logits.shape) if grad is None else _numpy(grad).reshape(call.problem.logits.shape)
    loss = _numpy(loss)
    return (loss.reshape(-1) if loss.ndim else loss), grad


@functools.cache
def _static(loss_of):
    return paddle.jit.to_static(loss_of, full_graph=True)


@functools.cache
def _cross_entropy(reduction: str, label_smoothing: float, ignore_index: int | None, soft_label: bool,
                   use_softmax: bool = True, softmax_first: bool = False):
    """F.cross_entropy with these options, as a function of (logits, targets) or (logits, labels, weight)."""
    def loss_of(x, labels, weight=None):
        inputs = F.softmax(x, axis=-1) if softmax_first else x
        return F.cross_entropy(inputs, labels, weight=weight, reduction=reduction, soft_label=soft_label,
                               label_smoothing=label_smoothing, use_softmax=use_softmax,
                               **({} if ignore_index is None else {"ignore_index": ignore_index}))
    return loss_of


def _user_reduced(rows, reduction: str):
    """A loss of one value per position, reduced as the user writes it (one plain function per reduction, as
    to_static traces it)."""
    def mean_of(x, y):
        return rows(x, y).mean()

    def sum_of(x, y):
        return rows(x, y).sum()

    return {"mean": mean_of, "sum": sum_of, "none": rows}[reduction]


def _nll_log_softmax_rows(x, y):
    return F.nll_loss(_classes_second(F.log_softmax(x, axis=-1)), y, reduction="none")


def _nll_log_of_softmax_rows(x, y):
    return F.nll_loss(_classes_second(paddle.log(F.softmax(x, axis=-1))), y, reduction="none")


def _classes_second(log_probabilities):
    """F.nll_loss takes classes on axis 1: a channels-last (n, d1, ..., C) batch has its class axis moved there, as
    a user of nll_loss does (a no-op on (N, C), as the expression shows it)."""
    return paddle.moveaxis(log_probabilities, -1, 1) if log_probabilities.ndim > 2 else log_probabilities


_USER_REDUCED = {rows.__name__: {reduction: _user_reduced(rows, reduction) for reduction in REDUCERS}
                 for rows in (_nll_log_softmax_rows, _nll_log_of_softmax_rows)}


# the calls as a model's training step makes them (the mean over the batch): what `xentcompat train` runs
def _mean_cross_entropy(z, y):
    return F.cross_entropy(z, y)


def _mean_cross_entropy_of_softmax(z, y):
    return F.cross_entropy(F.softmax(z, axis=-1), y)


def _mean_nll_log_of_softmax(z, y):
    return F.nll_loss(paddle.log(F.softmax(z, axis=-1)), y)


def _weight(call: Call) -> paddle.Tensor:
    return paddle.to_tensor(np.asarray(call.problem.options.weight, np.float64),
                            place=_place(call.device)).astype(call.dtype)


def _ignore_index(call: Call) -> int | None:
    return call.problem.options.ignore_index


@register("paddle", "paddle.nn.functional.cross_entropy", "F.cross_entropy(x, y{options})",
          supports=LABEL_OPTIONS, modes=EAGER_AND_COMPILED, loss=_mean_cross_entropy)
def cross_entropy(call: Call):
    options = call.problem.options
    labels = _labels(call)
    targets = (labels, _weight(call)) if options.weight is not None else (labels,)
    return _loss_and_grad(call, _cross_entropy(options.reduction, options.label_smoothing, _ignore_index(call),
                                               False), targets)


@register("paddle", "paddle.nn.functional.cross_entropy[probs]", "F.cross_entropy(x, q, soft_label=True{options})",
          targets="probs", supports=PROBS_OPTIONS, mean_over="rows", modes=EAGER_AND_COMPILED)
def cross_entropy_probs(call: Call):
    options = call.problem.options
    probs = _tensor(call.problem.probs, call, options.extra_dims)
    return _loss_and_grad(call, _cross_entropy(options.reduction, options.label_smoothing, None, True), (probs,))


@register("paddle", "paddle.nn.functional.cross_entropy(softmax, use_softmax=False)",
          "F.cross_entropy(F.softmax(x), y, use_softmax=False{options})", supports=LABEL_OPTIONS,
          modes=EAGER_AND_COMPILED)
def cross_entropy_of_probabilities(call: Call):
    """The softmax-first form Paddle documents: the model ends in a softmax, the loss takes probabilities."""
    options = call.problem.options
    labels = _labels(call)
    targets = (labels, _weight(call)) if options.weight is not None else (labels,)
    return _loss_and_grad(call, _cross_entropy(options.reduction, options.label_smoothing, _ignore_index(call),
                                               False, use_softmax=False, softmax_first=True), targets)


@register("paddle", "paddle.nn.functional.cross_entropy(softmax)", "F.cross_entropy(F.softmax(x), y{options})",
          supports=PLAIN_OPTIONS, modes=EAGER_AND_COMPILED, loss=_mean_cross_entropy_of_softmax)
def cross_entropy_of_softmax(call: Call):
    """The double softmax: a model ending in a softmax, fed to a loss that applies its own."""
    options = call.problem.options
    return _loss_and_grad(call, _cross_entropy(options.reduction, 0.0, None, False, softmax_first=True),
                          (_labels(call),))


@register("paddle", "paddle.nn.functional.nll_loss(log_softmax)",
          "F.nll_loss(paddle.moveaxis(F.log_softmax(x), -1, 1), y, reduction='none')",
          supports=PLAIN_OPTIONS, mean_over="rows", modes=EAGER_AND_COMPILED, slow_above=(32768, LOG_SOFTMAX_TIME))
def nll_log_softmax(call: Call):
    return _loss_and_grad(call, _USER_REDUCED["_nll_log_softmax_rows"][call.problem.options.reduction],
                          (_labels(call),))


@register("paddle", "paddle.nn.functional.nll_loss(log(softmax))",
          "F.nll_loss(paddle.moveaxis(paddle.log(F.softmax(x)), -1, 1), y, reduction='none')",
          supports=PLAIN_OPTIONS, mean_over="rows", modes=EAGER_AND_COMPILED,
          loss=_mean_nll_log_of_softmax)
def nll_log_of_softmax(call: Call):
    """The tutorial form: log of the probabilities."""
    return _loss_and_grad(call, _USER_REDUCED["_nll_log_of_softmax_rows"][call.problem.options.reduction],
                          (_labels(call),))


def _options_code(options) -> str:
    parts = ([", weight=w"] if options.weight is not None else []) + \
        ([f", ignore_index={options.ignore_index}"] if options.ignore_index is not None else []) + \
        ([f", label_smoothing={options.label_smoothing}"] if options.label_smoothing else [])
    return "".join(parts) + f", reduction={options.reduction!r}"


def repro(api, call: Call, logits_code: str | None) -> str:
    """A copy-paste Paddle script that makes the same call (labels in their own dtype, the user's layout)."""
    problem, options = call.problem, call.problem.options
    extra_dims = options.extra_dims
    source = array_code(problem.logits, "logits") if logits_code is None else logits_code
    layout = native_code(extra_dims, problem.num_classes)
    lines = ["import numpy as np", "import paddle", "import paddle.nn.functional as F", "",
             f"paddle.set_device({_place(call.device)!r})",
             f"x = paddle.to_tensor(np.asarray({source}, dtype=np.float64){layout}"
             f"{'' if call.dtype == 'float64' else '.astype(np.float32)'}).astype({call.dtype!r})",
             "x.stop_gradient = False"]
    lines += target_lines(problem, lambda code: f"paddle.to_tensor({code})",
                          lambda code: f"paddle.to_tensor({code}).astype({call.dtype!r})")
    if options.weight is not None:
        lines.append(f"w = paddle.to_tensor(np.asarray({list(options.weight)}, dtype=np.float64))"
                     f".astype({call.dtype!r})")
    if "{options}" in api.expression:
        loss = api.expression.format(options=_options_code(options))
    else:
        loss = REDUCERS[options.reduction].format(api.expression)
    if call.mode == "compiled":
        lines += ["", "", "@paddle.jit.to_static(full_graph=True)", "def loss_of(x):", f"    return {loss}", "",
                  "", "loss = loss_of(x)"]
    else:
        lines.append(f"loss = {loss}")
    lines += ["loss.sum().backward()", "print(loss.numpy(), x.grad.numpy())"]
    return "\n".join(lines)
