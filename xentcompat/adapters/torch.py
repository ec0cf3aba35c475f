"""PyTorch loss APIs, forward and backward (`loss.backward()`), one small function each."""

from __future__ import annotations

import numpy as np
import torch

from xentcompat.adapters.base import Call, register
from xentcompat.adapters.repro import literal, probs_literal

TORCH_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
                "float64": torch.float64}
NO_SMOOTHING = frozenset({"reduction", "weight", "ignore_index"})


def versions() -> dict[str, str]:
    return {"torch": torch.__version__}


def available_devices() -> dict[str, str]:
    """Device kind -> device name, for the devices this process can run on."""
    devices = {"cpu": "cpu"}
    if torch.cuda.is_available():
        devices["cuda"] = torch.cuda.get_device_name(0)
    return devices


def _logits(call: Call) -> torch.Tensor:
    return torch.tensor(call.problem.logits, dtype=TORCH_DTYPES[call.dtype], device=call.device, requires_grad=True)


def _labels(call: Call) -> torch.Tensor:
    return torch.tensor(call.problem.labels, dtype=torch.long, device=call.device)


def _probs(call: Call) -> torch.Tensor:
    return torch.tensor(call.problem.probs, dtype=TORCH_DTYPES[call.dtype], device=call.device)


def _options(call: Call, smoothing: bool = True) -> dict:
    options = call.problem.options
    kwargs = {"reduction": options.reduction}
    if options.weight is not None:
        kwargs["weight"] = torch.tensor(options.weight, dtype=TORCH_DTYPES[call.dtype], device=call.device)
    if options.ignore_index is not None:
        kwargs["ignore_index"] = options.ignore_index
    if smoothing and options.label_smoothing:
        kwargs["label_smoothing"] = options.label_smoothing
    return kwargs


def _backward(x: torch.Tensor, loss: torch.Tensor):
    loss.backward(torch.ones_like(loss))
    return _numpy(loss), _numpy(x.grad)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to(torch.float64).cpu().numpy()


@register("torch", "torch.nn.CrossEntropyLoss", "torch.nn.CrossEntropyLoss({options})(x, y)")
def cross_entropy(call: Call):
    x = _logits(call)
    return _backward(x, torch.nn.CrossEntropyLoss(**_options(call))(x, _labels(call)))


@register("torch", "torch.nn.CrossEntropyLoss[probs]", "torch.nn.CrossEntropyLoss({options})(x, q)",
          targets="probs")
def cross_entropy_probs(call: Call):
    x = _logits(call)
    return _backward(x, torch.nn.CrossEntropyLoss(**_options(call))(x, _probs(call)))


@register("torch", "torch.nn.NLLLoss(log_softmax)", "torch.nn.NLLLoss({options})(torch.log_softmax(x, dim=1), y)",
          supports=NO_SMOOTHING)
def nll_log_softmax(call: Call):
    x = _logits(call)
    return _backward(x, torch.nn.NLLLoss(**_options(call, smoothing=False))(torch.log_softmax(x, dim=1), _labels(call)))


@register("torch", "torch.nn.NLLLoss(log(softmax))",
          "torch.nn.NLLLoss({options})(torch.log(torch.softmax(x, dim=1)), y)", supports=NO_SMOOTHING)
def nll_log_of_softmax(call: Call):
    x = _logits(call)
    log_p = torch.log(torch.softmax(x, dim=1))
    return _backward(x, torch.nn.NLLLoss(**_options(call, smoothing=False))(log_p, _labels(call)))


@register("torch", "torch.nn.CrossEntropyLoss(softmax)",
          "torch.nn.CrossEntropyLoss({options})(torch.softmax(x, dim=1), y)")
def cross_entropy_of_softmax(call: Call):
    """Softmax applied twice: the model's last layer is a softmax and CrossEntropyLoss applies another."""
    x = _logits(call)
    return _backward(x, torch.nn.CrossEntropyLoss(**_options(call))(torch.softmax(x, dim=1), _labels(call)))


def repro(api, call: Call, logits_code: str | None) -> str:
    """A copy-paste PyTorch script that makes the same call."""
    expression = api.expression
    dtype = f"torch.{call.dtype}"
    problem = call.problem
    source = literal(problem.logits) if logits_code is None else f"torch.from_numpy({logits_code})"
    lines = ["import numpy as np", "import torch", "",
             f"x = torch.tensor({source}, dtype={dtype}, device={call.device!r}, requires_grad=True)"]
    if problem.labels is not None:
        lines.append(f"y = torch.tensor({literal(problem.labels, 'labels')}, device={call.device!r})")
    if problem.probs is not None:
        lines.append(f"q = torch.tensor({probs_literal(problem.probs)}, dtype={dtype}, device={call.device!r})")
    options = ", ".join(f"{k}={_option_code(k, v, dtype)}" for k, v in _options_for_repro(call).items())
    lines += [f"loss = {expression.format(options=options)}", "loss.backward(torch.ones_like(loss))",
              "print(loss, x.grad)"]
    return "\n".join(lines)


def _options_for_repro(call: Call) -> dict:
    options = call.problem.options
    kwargs = {"reduction": options.reduction} if options.reduction != "mean" else {}
    if options.weight is not None:
        kwargs["weight"] = options.weight
    if options.ignore_index is not None:
        kwargs["ignore_index"] = options.ignore_index
    if options.label_smoothing:
        kwargs["label_smoothing"] = options.label_smoothing
    return kwargs


def _option_code(name: str, value, dtype: str) -> str:
    if name == "weight":
        return f"torch.tensor({literal(np.asarray(value))}, dtype={dtype})"
    return repr(value)
