"""PyTorch linear cross-entropy APIs: the loss of the logits h @ W.T (+ b) from the hidden states h and the weight W,
forward and backward (`loss.backward()`), judged on dL/dh (API id as written) or dL/dW (the id's `[dW]` twin).

Three ways a user computes it:

* `torch.nn.functional.linear_cross_entropy(h, W, y)`: with `options=None` the reference path, `linear` then
  `cross_entropy` (the N × V logits materialised in the dtype);
* `linear_cross_entropy(..., options=LinearCrossEntropyOptions())`: the chunked path (the custom op
  `torch_nn::_linear_cross_entropy_batch_chunked`), which loops over row chunks (CPU default: `acc_policy
  "accurate"`, chunk rows sized so a chunk's logits match h in memory), computes the gradients in the forward pass
  and, for 16-bit inputs, keeps logits and the weight gradient's per-chunk product in float32. It takes no label
  smoothing (it falls back to the reference path with a warning), so that option is not offered here;
* `torch.nn.functional.cross_entropy(h @ W.T, y)`: the materialised form written out.

Modes as in `adapters.torch`: eager, and compiled through `torch.compile(..., dynamic=False)` (one compiled callable
per loss function, shared by the dL/dh and dL/dW ids, so the second finds the graph compiled). The chunked op runs
eagerly inside a compiled graph (it is opaque to dynamo) and, compiled, keeps its gradient buffers for a second
backward (`allow_retain_graph`, forced with a warning).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from xentcompat.adapters.base import EAGER_AND_COMPILED, EAGER_ONLY, Call, register
from xentcompat.adapters.repro import literal
from xentcompat.adapters.torch import COMPILE_CONFIG, TORCH_DTYPES, _compiled, _options, available_devices, versions

__all__ = ["available_devices", "repro", "versions"]

LINEAR_OPTIONS = frozenset({"reduction", "weight", "ignore_index", "label_smoothing"})
CHUNKED_OPTIONS = frozenset({"reduction", "weight", "ignore_index"})
LINEAR_AREAS = frozenset({"linear"})
CHUNKED = "options=torch.nn.LinearCrossEntropyOptions()"
LINEAR_SINCE = "2.13"  # torch.nn.functional.linear_cross_entropy and LinearCrossEntropyOptions (not in 2.12.0)


def _fused(h, w, y, b, **options):
    return F.linear_cross_entropy(h, w, y, linear_bias=b, **options)


def _chunked(h, w, y, b, **options):
    return F.linear_cross_entropy(h, w, y, linear_bias=b, options=torch.nn.LinearCrossEntropyOptions(), **options)


def _materialised(h, w, y, b, **options):
    logits = h @ w.T if b is None else h @ w.T + b
    return F.cross_entropy(logits, y, **options)


def _tensor(values: np.ndarray, call: Call) -> torch.Tensor:
    return torch.tensor(values, dtype=TORCH_DTYPES[call.dtype], device=call.device, requires_grad=True)


def _run(call: Call, loss_fn):
    """Forward in the call's mode, backward of the (summed) loss; the loss and the gradient the problem judges."""
    problem = call.problem
    h, w = _tensor(problem.hidden, call), _tensor(problem.weight, call)
    b = None if problem.bias is None else _tensor(problem.bias, call)
    y = torch.as_tensor(problem.labels, device=call.device)
    if call.mode == "compiled":
        with torch._dynamo.config.patch(COMPILE_CONFIG):
            loss = _compiled(loss_fn)(h, w, y, b, **_options(call))
    else:
        loss = loss_fn(h, w, y, b, **_options(call))
    loss.backward(torch.ones_like(loss))
    grad = w.grad if problem.wrt == "weight" else h.grad
    return _numpy(loss), _numpy(grad)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to(torch.float64).cpu().numpy()


def _register_pair(api_id: str, expression: str, loss_fn, supports: frozenset[str], modes=EAGER_ONLY,
                   since: str | None = None, needs: str | None = None):
    """Register `api_id` (judged on dL/dh) and `api_id[dW]` (judged on dL/dW), both running `loss_fn`."""
    for suffix, targets in (("", "linear"), ("[dW]", "linear-weight")):
        register("torch", api_id + suffix, expression, targets=targets, supports=supports, modes=modes,
                 areas=LINEAR_AREAS, since=since, needs=needs)(_runner(loss_fn, targets))


def _runner(loss_fn, targets: str):
    def run(call: Call):
        return _run(call, loss_fn)

    run.__name__ = f"{loss_fn.__name__.lstrip('_')}_{targets.replace('-', '_')}"
    return run


_register_pair("torch.nn.functional.linear_cross_entropy",
               "torch.nn.functional.linear_cross_entropy(h, W, y{options})", _fused, LINEAR_OPTIONS,
               EAGER_AND_COMPILED,  # compiled for the default path only: each compile costs seconds on CPU
               since=LINEAR_SINCE, needs="torch.nn.functional.linear_cross_entropy")
_register_pair(f"torch.nn.functional.linear_cross_entropy({CHUNKED})",
               f"torch.nn.functional.linear_cross_entropy(h, W, y{{options}}, {CHUNKED})", _chunked, CHUNKED_OPTIONS,
               since=LINEAR_SINCE, needs="torch.nn.LinearCrossEntropyOptions")
_register_pair("torch.nn.functional.cross_entropy(h @ W.T)", "torch.nn.functional.cross_entropy(h @ W.T{bias}, y{options})",
               _materialised, LINEAR_OPTIONS)


def repro(api, call: Call, logits_code: str | None) -> str:
    """A copy-paste PyTorch script making the same call on the same h, W (and b): from the case's code when it has
    some, else as literals (or the case's .npz when large)."""
    problem, dtype, device = call.problem, f"torch.{call.dtype}", repr(call.device)
    lines = ["import numpy as np", "import torch", ""]
    if logits_code is not None:
        lines.append(logits_code)
    else:
        lines += [f"h = np.array({literal(problem.hidden, 'hidden')})", f"W = np.array({literal(problem.weight, 'weight')})"]
    lines += [f"h = torch.tensor(h, dtype={dtype}, device={device}, requires_grad=True)",
              f"W = torch.tensor(W, dtype={dtype}, device={device}, requires_grad=True)",
              f"y = torch.tensor({literal(problem.labels, 'labels')}, device={device})"]
    bias = ""
    if problem.bias is not None:
        lines.append(f"b = torch.tensor({literal(problem.bias, 'bias')}, dtype={dtype}, device={device}, "
                     "requires_grad=True)")
        bias = " + b"
    options = _constant_options(call)
    if problem.options.weight is not None:
        lines.append(f"weight = torch.tensor({literal(np.asarray(problem.options.weight), 'class_weight')}, dtype={dtype}, "
                     f"device={device})")
        options.insert(0, "weight=weight")
    if bias and "linear_cross_entropy" in api.id:
        options.insert(0, "linear_bias=b")
    loss = api.expression.format(options="".join(f", {option}" for option in options), bias=bias)
    if call.mode == "compiled":
        lines += [f"loss_fn = torch.compile(lambda h, W, y: {loss}, dynamic=False)", "loss = loss_fn(h, W, y)"]
    else:
        lines.append(f"loss = {loss}")
    grad = "W.grad" if problem.wrt == "weight" else "h.grad"
    lines += ["loss.backward(torch.ones_like(loss))", f"print(loss, {grad})"]
    return "\n".join(lines)


def _constant_options(call: Call) -> list[str]:
    options = call.problem.options
    found = [f"reduction={options.reduction!r}"] if options.reduction != "mean" else []
    if options.ignore_index is not None:
        found.append(f"ignore_index={options.ignore_index!r}")
    if options.label_smoothing:
        found.append(f"label_smoothing={options.label_smoothing!r}")
    return found
