"""PyTorch loss APIs, forward and backward (`loss.backward()`), one small function each.

Each API is a loss function of the logits and the other tensors (labels or probabilities, the class weights), with the
Python-constant options (reduction, ignore_index, label_smoothing) as keyword arguments. Mode "eager" calls it;
mode "forward" calls it and takes the gradient (of the sum for "none") by forward-mode differentiation,
`torch.func.jacfwd`, one tangent per logit;
mode "compiled" calls it through `torch.compile(..., dynamic=False)` (inductor, otherwise default options) and the
gradient comes from `loss.backward()` through the compiled graph (AOTAutograd). One compiled callable per API serves
every case, so dynamo's cache is reused: a graph per distinct shape, dtype and option value, not per case. Dynamo's
recompile limit is raised and hitting it is an error, so no compiled cell silently runs eagerly; errors are not
suppressed, they are the result.

Inputs reach PyTorch as a user holds them: logits in the dtype, labels in their own dtype and shape (an int32, uint8
or float label array is passed as it is), and `extra_dims` in PyTorch's own layout, the class axis second:
logits (n, C, d1, ...), labels (n, d1, ...). Loss and gradient come back as the reference's rows (N, C) and (N,).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from xentcompat.adapters.base import WITH_FORWARD, Call, register
from xentcompat.adapters.repro import array_code, literal
from xentcompat.reference.compact import float64_unless_big

TORCH_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
                "float64": torch.float64}
CLASS_INDEX_OPTIONS = frozenset({"reduction", "weight", "ignore_index", "label_smoothing", "extra_dims"})
PROBS_OPTIONS = frozenset({"reduction", "weight", "label_smoothing", "extra_dims"})  # ignore_index: class indices
NLL_OPTIONS = frozenset({"reduction", "weight", "ignore_index", "extra_dims"})  # NLLLoss has no label_smoothing
# Every compiled cell is compiled: far more recompiles than the matrix needs (a graph per shape, dtype, label dtype
# and option value), and an error, not a silent fall back to eager, if that is ever reached.
COMPILE_CONFIG = {"recompile_limit": 1024, "accumulated_recompile_limit": 4096, "fail_on_recompile_limit_hit": True,
                  "suppress_errors": False}
# the bench times each API through `_run`, the helper every API's function here calls (see xentcompat.bench.steps)
BENCH_HELPER, BENCH_STEPS = "_run", "xentcompat.bench.steps_torch"


def versions() -> dict[str, str]:
    return {"torch": torch.__version__}


def available_devices() -> dict[str, str]:
    """Device kind -> device name, for the devices this process can run on."""
    devices = {"cpu": "cpu"}
    if torch.cuda.is_available():
        devices["cuda"] = torch.cuda.get_device_name(0)
    return devices


def device_alive(device: str) -> None:
    """A trivial operation on `device`, waited for: raises when a fault left the device context unusable."""
    torch.ones(1, device=device).add(1).cpu()
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def to_native(tensor: torch.Tensor, extra_dims: tuple[int, ...]) -> torch.Tensor:
    """Rows in PyTorch's layout for `extra_dims` (d1, ...): the N rows are (n, d1, ...) positions, row-major.

    (N, C) -> (n, d1, ..., C) -> (n, C, d1, ...) (contiguous, as a conv output holds it); (N,) -> (n, d1, ...).
    No extra dims: the tensor as it is (a label array of the wrong length included).
    """
    if not extra_dims:
        return tensor
    if tensor.ndim == 1:
        return tensor.reshape(-1, *extra_dims)
    return tensor.reshape(-1, *extra_dims, tensor.shape[-1]).movedim(-1, 1).contiguous()


def from_native(tensor: torch.Tensor, extra_dims: tuple[int, ...]) -> torch.Tensor:
    """The inverse of `to_native`: a gradient (n, C, d1, ...) -> (N, C), a per-position loss (n, d1, ...) -> (N,)."""
    if not extra_dims or tensor.ndim == 0:
        return tensor
    if tensor.ndim == len(extra_dims) + 2:
        return tensor.movedim(1, -1).reshape(-1, tensor.shape[1])
    return tensor.reshape(-1)


def native_code(extra_dims: tuple[int, ...], num_classes: int | None = None) -> str:
    """`to_native` as the code a reproducer appends to the tensor (logits and probs given `num_classes`)."""
    if not extra_dims:
        return ""
    if num_classes is None:
        return f".reshape(-1, {', '.join(map(str, extra_dims))})"
    return f".reshape(-1, {', '.join(map(str, extra_dims))}, {num_classes}).movedim(-1, 1).contiguous()"


def _logits(call: Call) -> torch.Tensor:
    logits = torch.tensor(call.problem.logits, dtype=TORCH_DTYPES[call.dtype], device=call.device)
    return to_native(logits, call.problem.options.extra_dims).requires_grad_()


def _labels(call: Call) -> torch.Tensor:
    """The label array in its own dtype (int64 is long; int32, uint8 and float stay so), as a user passes it."""
    return to_native(torch.as_tensor(call.problem.labels, device=call.device), call.problem.options.extra_dims)


def _probs(call: Call) -> torch.Tensor:
    probs = torch.tensor(call.problem.probs, dtype=TORCH_DTYPES[call.dtype], device=call.device)
    return to_native(probs, call.problem.options.extra_dims)


def _options(call: Call) -> dict:
    """The constructor's keyword arguments for the options the case sets (an API gets only options it offers)."""
    options = call.problem.options
    kwargs = {"reduction": options.reduction}
    if options.weight is not None:
        kwargs["weight"] = torch.tensor(options.weight, dtype=TORCH_DTYPES[call.dtype], device=call.device)
    if options.ignore_index is not None:
        kwargs["ignore_index"] = options.ignore_index
    if options.label_smoothing:
        kwargs["label_smoothing"] = options.label_smoothing
    return kwargs


def _run(call: Call, loss_fn, x: torch.Tensor, target: torch.Tensor):
    """Forward in the call's mode, backward (of the sum of a per-position loss) through the same graph; loss and
    gradient in the reference's rows."""
    extra_dims = call.problem.options.extra_dims
    if call.mode == "forward":
        loss, grad = _forward(call, loss_fn, x, target)
        return _numpy(from_native(loss, extra_dims)), _numpy(from_native(grad, extra_dims))
    if call.mode == "compiled":
        with torch._dynamo.config.patch(COMPILE_CONFIG):
            loss = _compiled(loss_fn)(x, target, **_options(call))
    else:
        loss = loss_fn(x, target, **_options(call))
    loss.backward(torch.ones_like(loss))
    return _numpy(from_native(loss, extra_dims)), _numpy(from_native(x.grad, extra_dims))


def _forward(call: Call, loss_fn, x: torch.Tensor, target: torch.Tensor) -> tuple:
    """The loss, and its gradient (of the sum for "none") by `torch.func.jacfwd`."""
    x = x.detach()
    options = _options(call)
    loss = loss_fn(x, target, **options)
    grad = torch.func.jacfwd(lambda x: loss_fn(x, target, **options).sum())(x)
    return loss, grad


@functools.cache
def _compiled(loss_fn):
    """`torch.compile(loss_fn, dynamic=False)`: inductor, and a static-shape graph for each shape, the graph a user's
    `torch.compile(loss_fn)` builds on its first call.

    Not the default's automatic dynamic shapes: its dynamic graph is compiled at the shape of whichever case first
    changed a size, and inductor's choices at that shape (fuse softmax into log in float32, or store it in float16 for
    the backward) change float16/bfloat16 verdicts, so a cell's verdict would depend on the cells its process ran
    before it (and xdist's order). A static graph depends only on the cell's own shape, dtype and options.
    """
    return torch.compile(loss_fn, dynamic=False)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """float64, or a big batch's own exact container (no N × C float64 copy; see `reference.compact`)."""
    tensor = tensor.detach().cpu()
    return float64_unless_big((tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy())


def _cross_entropy(x, y, **options):
    return torch.nn.CrossEntropyLoss(**options)(x, y)


def _cross_entropy_probs(x, q, **options):  # the same call, its own function: one compiled callable per API
    return torch.nn.CrossEntropyLoss(**options)(x, q)


def _nll_log_softmax(x, y, **options):
    return torch.nn.NLLLoss(**options)(torch.log_softmax(x, dim=1), y)


def _nll_log_of_softmax(x, y, **options):
    return torch.nn.NLLLoss(**options)(torch.log(torch.softmax(x, dim=1)), y)


def _cross_entropy_of_softmax(x, y, **options):
    return torch.nn.CrossEntropyLoss(**options)(torch.softmax(x, dim=1), y)


@register("torch", "torch.nn.CrossEntropyLoss", "torch.nn.CrossEntropyLoss({options})(x, y)",
          supports=CLASS_INDEX_OPTIONS, modes=WITH_FORWARD,
          memory_batches=2.9, loss=_cross_entropy)
def cross_entropy(call: Call):
    return _run(call, _cross_entropy, _logits(call), _labels(call))


@register("torch", "torch.nn.CrossEntropyLoss[probs]", "torch.nn.CrossEntropyLoss({options})(x, q)",
          targets="probs", supports=PROBS_OPTIONS, mean_over="rows", modes=WITH_FORWARD,
          memory_batches=4.9, loss=_cross_entropy_probs)
def cross_entropy_probs(call: Call):
    return _run(call, _cross_entropy_probs, _logits(call), _probs(call))


@register("torch", "torch.nn.NLLLoss(log_softmax)", "torch.nn.NLLLoss({options})(torch.log_softmax(x, dim=1), y)",
          supports=NLL_OPTIONS, modes=WITH_FORWARD,
          memory_batches=2.9, loss=_nll_log_softmax)
def nll_log_softmax(call: Call):
    return _run(call, _nll_log_softmax, _logits(call), _labels(call))


@register("torch", "torch.nn.NLLLoss(log(softmax))",
          "torch.nn.NLLLoss({options})(torch.log(torch.softmax(x, dim=1)), y)", supports=NLL_OPTIONS,
          modes=WITH_FORWARD,
          memory_batches=2.9, loss=_nll_log_of_softmax)
def nll_log_of_softmax(call: Call):
    return _run(call, _nll_log_of_softmax, _logits(call), _labels(call))


@register("torch", "torch.nn.CrossEntropyLoss(softmax)",
          "torch.nn.CrossEntropyLoss({options})(torch.softmax(x, dim=1), y)", supports=CLASS_INDEX_OPTIONS,
          modes=WITH_FORWARD,
          memory_batches=3.9, loss=_cross_entropy_of_softmax)
def cross_entropy_of_softmax(call: Call):
    """Softmax applied twice: the model's last layer is a softmax and CrossEntropyLoss applies another."""
    return _run(call, _cross_entropy_of_softmax, _logits(call), _labels(call))


def repro(api, call: Call, logits_code: str | None) -> str:
    """A copy-paste PyTorch script that makes the same call (in PyTorch's layout when the case has extra dims);
    a compiled cell's makes it through `torch.compile`, as a function of the tensors."""
    dtype = f"torch.{call.dtype}"
    problem = call.problem
    extra_dims, num_classes = problem.options.extra_dims, problem.num_classes
    source = array_code(problem.logits, "logits") if logits_code is None else logits_code
    lines = ["import numpy as np", "import torch", "",
             f"x = torch.tensor({source}, dtype={dtype}, device={call.device!r})"
             f"{native_code(extra_dims, num_classes)}.requires_grad_()"]
    if problem.labels is not None:
        labels_dtype = f"torch.{np.asarray(problem.labels).dtype.name}"
        lines.append(f"y = torch.tensor({array_code(problem.labels, 'labels')}, dtype={labels_dtype}, "
                     f"device={call.device!r}){native_code(extra_dims)}")
    if problem.probs is not None:
        lines.append(f"q = torch.tensor({array_code(problem.probs, 'probs')}, dtype={dtype}, device={call.device!r})"
                     f"{native_code(extra_dims, num_classes)}")
    tensors = ["x", "q" if problem.probs is not None else "y"]
    options = [f"{name}={value!r}" for name, value in _constant_options(call).items()]
    if problem.options.weight is not None:
        lines.append(f"weight = torch.tensor({literal(np.asarray(problem.options.weight))}, dtype={dtype}, "
                     f"device={call.device!r})")
        tensors.append("weight")
        options.insert(0, "weight=weight")
    loss = api.expression.format(options=", ".join(options))
    if call.mode == "forward":
        arguments = ", ".join(tensors)
        lines += [f"loss = {loss}", f"grad = torch.func.jacfwd(lambda {arguments}: ({loss}).sum())({arguments})",
                  "print(loss, grad)"]
        return "\n".join(lines)
    if call.mode == "compiled":
        arguments = ", ".join(tensors)
        lines += [f"loss_fn = torch.compile(lambda {arguments}: {loss}, dynamic=False)",
                  f"loss = loss_fn({arguments})"]
    else:
        lines.append(f"loss = {loss}")
    lines += ["loss.backward(torch.ones_like(loss))", "print(loss, x.grad)"]
    return "\n".join(lines)


def _constant_options(call: Call) -> dict:
    """The options a reproducer writes as Python constants (those the case sets away from their defaults)."""
    options = call.problem.options
    kwargs = {"reduction": options.reduction} if options.reduction != "mean" else {}
    if options.ignore_index is not None:
        kwargs["ignore_index"] = options.ignore_index
    if options.label_smoothing:
        kwargs["label_smoothing"] = options.label_smoothing
    return kwargs
