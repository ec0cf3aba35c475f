"""Hugging Face transformers' language-model losses (`transformers.loss.loss_utils`), forward and backward.

What the functions do (transformers 5.24.0, loss/loss_utils.py):

    ForCausalLMLoss(logits, labels, vocab_size, num_items_in_batch=None, ignore_index=-100, shift_labels=None):
        logits = logits.float()                                       # float32, whatever the dtype: float64 too
        labels = pad(labels, (0, 1), value=ignore_index); shift_labels = labels[..., 1:]   # t is scored on t + 1
        return fixed_cross_entropy(logits.view(-1, vocab_size), shift_labels.view(-1), num_items_in_batch,
                                   ignore_index)
    fixed_cross_entropy(source, target, num_items_in_batch=None, ignore_index=-100, **kwargs):
        cross_entropy(source, target, ignore_index, reduction="sum") / num_items_in_batch   # if it is not None
        cross_entropy(source, target, ignore_index, reduction="mean")                       # if it is None

`fixed_cross_entropy` computes in the input's dtype (no upcast); `**kwargs` (label_smoothing, weight) are dropped,
so those options are not offered. An int or a tensor `num_items_in_batch` both divide the sum (a tensor is moved to
the loss's device first); 0 is not None, so it divides by 0 too: the int path, not a path of its own.

The causal layout: the case's N rows of C logits are one sequence (extra dims (d1, ...): N / prod(d) sequences of
prod(d) positions) and each sequence gets one more position, last, of zero logits. The labels are the case's,
shifted right by one (a first token of 0 that no position predicts), so after ForCausalLMLoss's own shift position t
is scored against the case's label t and the extra position against the pad, `ignore_index`. The gradient returned
is that of the case's positions; `causal_run` also returns the extra positions' (zero: a test holds it so).
`num_items_in_batch` is the count of counted targets, `(labels[..., 1:] != -100).sum()` as a training loop computes
it, so that sum / count is the mean the reference computes. Mode "compiled" is the torch adapter's
(`torch.compile`, dynamic=False, a compiled callable per API), for the two forms a Trainer step calls (the mean, and
a tensor count); the int count and fixed_cross_entropy, the same kernels, run eager (a compiled graph per shape and
dtype costs seconds of inductor each).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import transformers
from transformers.loss.loss_utils import ForCausalLMLoss, fixed_cross_entropy

from xentcompat.adapters.base import EAGER_AND_COMPILED, EAGER_ONLY, Call, register
from xentcompat.adapters.repro import array_code
from xentcompat.adapters.torch import (COMPILE_CONFIG, TORCH_DTYPES, available_devices,  # noqa: F401 (the protocol)
                                      device_alive)

CAUSAL_OPTIONS = frozenset({"ignore_index", "extra_dims"})  # no reduction, weight or label_smoothing argument
FLAT_OPTIONS = frozenset({"ignore_index"})
COUNTED = frozenset({"num_items"})  # takes the mean's denominator from the caller (num_items_in_batch)
IGNORE_INDEX = -100  # the default of both functions, and what the pad and the count use when the case sets none
API = "transformers.loss.loss_utils"


def versions() -> dict[str, str]:
    return {"transformers": transformers.__version__, "torch": torch.__version__}


def sequences(problem) -> tuple[int, int]:
    """(sequences, positions per sequence) of the case's rows: one sequence, or (n, prod(d)) with extra dims."""
    rows, extra_dims = problem.logits.shape[0], problem.options.extra_dims
    positions = int(np.prod(extra_dims)) if extra_dims else rows
    return (rows // positions if positions else 1), positions


def causal_logits(problem) -> np.ndarray:
    """(n, T + 1, C): each sequence's T positions, then one of zero logits."""
    n, positions = sequences(problem)
    rows = problem.logits.reshape(n, positions, problem.num_classes)
    return np.concatenate([rows, np.zeros((n, 1, problem.num_classes))], axis=1)


def causal_labels(problem) -> np.ndarray:
    """(n, T + 1) in the labels' own dtype: a first token 0, then the case's labels (all of them, so a label array
    of the wrong length stays wrong)."""
    labels = np.asarray(problem.labels)
    n, _ = sequences(problem)
    rows = labels.reshape(n, -1)
    return np.concatenate([np.zeros((n, 1), dtype=labels.dtype), rows], axis=1)


def counted(problem) -> int:
    """The targets ForCausalLMLoss counts: the shifted labels that are not the ignore index."""
    ignore = problem.options.ignore_index if problem.options.ignore_index is not None else IGNORE_INDEX
    return int(np.sum(np.asarray(problem.labels) != ignore))


def _options(call: Call, flat: bool = False) -> dict:
    kwargs = {} if flat else {"vocab_size": call.problem.num_classes}
    if call.problem.options.ignore_index is not None:
        kwargs["ignore_index"] = call.problem.options.ignore_index
    return kwargs


def _call(call: Call, loss_fn, x: torch.Tensor, y: torch.Tensor, **kwargs) -> torch.Tensor:
    if call.mode == "compiled":
        with torch._dynamo.config.patch(COMPILE_CONFIG):
            return _compiled(loss_fn)(x, y, **kwargs)
    return loss_fn(x, y, **kwargs)


@functools.cache
def _compiled(loss_fn):
    """`torch.compile(loss_fn, dynamic=False)`, as the torch adapter compiles its APIs (see there)."""
    return torch.compile(loss_fn, dynamic=False)


def causal_run(call: Call, loss_fn, count: str | None = None):
    """The causal call: (loss, the case's gradient (N, C), the extra positions' gradient (n, C)), float64 numpy.

    `count`: None (num_items_in_batch absent), "int" or "tensor" (the counted targets, as that type)."""
    dtype, device = TORCH_DTYPES[call.dtype], call.device
    x = torch.tensor(causal_logits(call.problem), dtype=dtype, device=device).requires_grad_()
    y = torch.as_tensor(causal_labels(call.problem), device=device)
    kwargs = _options(call)
    if count is not None:
        number = counted(call.problem) if call.num_items is None else call.num_items
        kwargs["num_items_in_batch"] = number if count == "int" else torch.tensor(number, device=device)
    loss = _call(call, loss_fn, x, y, **kwargs)
    loss.backward()
    grad = x.grad.detach().to(torch.float64).cpu().numpy()
    return loss.detach().to(torch.float64).cpu().numpy(), grad[:, :-1].reshape(-1, call.problem.num_classes), grad[:, -1]


def _causal_lm(x, y, **options):
    return ForCausalLMLoss(x, y, **options)


def _causal_lm_int(x, y, **options):  # the same call, its own function: one compiled callable per API
    return ForCausalLMLoss(x, y, **options)


def _causal_lm_tensor(x, y, **options):
    return ForCausalLMLoss(x, y, **options)


def _fixed(x, y, **options):
    return fixed_cross_entropy(x, y, **options)


def _fixed_int(x, y, **options):
    return fixed_cross_entropy(x, y, **options)


@register("transformers", f"{API}.ForCausalLMLoss", "ForCausalLMLoss(logits, labels, {options})",
          supports=CAUSAL_OPTIONS, modes=EAGER_AND_COMPILED)
def causal_lm(call: Call):
    return causal_run(call, _causal_lm)[:2]


@register("transformers", f"{API}.ForCausalLMLoss(num_items_in_batch=int)",
          "ForCausalLMLoss(logits, labels, {options}, num_items_in_batch=int((labels[..., 1:] != {ignore}).sum()))",
          supports=CAUSAL_OPTIONS | COUNTED, modes=EAGER_ONLY)
def causal_lm_int(call: Call):
    return causal_run(call, _causal_lm_int, "int")[:2]


@register("transformers", f"{API}.ForCausalLMLoss(num_items_in_batch=tensor)",
          "ForCausalLMLoss(logits, labels, {options}, num_items_in_batch=(labels[..., 1:] != {ignore}).sum())",
          supports=CAUSAL_OPTIONS | COUNTED, modes=EAGER_AND_COMPILED)
def causal_lm_tensor(call: Call):
    return causal_run(call, _causal_lm_tensor, "tensor")[:2]


def flat_run(call: Call, loss_fn, count: bool = False):
    """fixed_cross_entropy on the rows as they are, (N, C) and (N,): what ForCausalLMLoss hands it, minus the upcast."""
    x = torch.tensor(call.problem.logits, dtype=TORCH_DTYPES[call.dtype], device=call.device).requires_grad_()
    y = torch.as_tensor(call.problem.labels, device=call.device)
    kwargs = _options(call, flat=True)
    if count:
        kwargs["num_items_in_batch"] = counted(call.problem) if call.num_items is None else call.num_items
    loss = _call(call, loss_fn, x, y, **kwargs)
    loss.backward()
    return loss.detach().to(torch.float64).cpu().numpy(), x.grad.detach().to(torch.float64).cpu().numpy()


@register("transformers", f"{API}.fixed_cross_entropy", "fixed_cross_entropy(x, y{options})",
          supports=FLAT_OPTIONS, modes=EAGER_ONLY)
def fixed(call: Call):
    return flat_run(call, _fixed)


@register("transformers", f"{API}.fixed_cross_entropy(num_items_in_batch=int)",
          "fixed_cross_entropy(x, y{options}, num_items_in_batch=int((y != {ignore}).sum()))",
          supports=FLAT_OPTIONS | COUNTED, modes=EAGER_ONLY)
def fixed_int(call: Call):
    return flat_run(call, _fixed_int, count=True)


def repro(api, call: Call, logits_code: str | None) -> str:
    """A copy-paste script making the same call: the causal layout built from the case's rows for ForCausalLMLoss,
    the rows as they are for fixed_cross_entropy; a compiled cell's through `torch.compile`."""
    problem, device = call.problem, repr(call.device)
    dtype, num_classes = f"torch.{call.dtype}", problem.num_classes
    source = array_code(problem.logits, "logits") if logits_code is None else logits_code
    labels = array_code(problem.labels, "labels")
    labels_dtype = np.asarray(problem.labels).dtype.name
    lines = ["import numpy as np", "import torch", f"from {API} import ForCausalLMLoss, fixed_cross_entropy", ""]
    causal = "ForCausalLMLoss" in api.id
    if causal:
        n, _ = sequences(problem)
        lines += [f"rows = np.asarray({source}, dtype=np.float64).reshape({n}, -1, {num_classes})  # the case's rows",
                  "# one more position per sequence, of zero logits: its target is the pad, ignore_index",
                  f"x = np.concatenate([rows, np.zeros(({n}, 1, {num_classes}))], axis=1)",
                  f"logits = torch.tensor(x, dtype={dtype}, device={device}).requires_grad_()",
                  f"y = np.asarray({labels}, dtype=np.{labels_dtype}).reshape({n}, -1)",
                  "# the labels shifted right by one (a first token 0): position t is scored against the case's label t",
                  f"labels = torch.as_tensor(np.concatenate([np.zeros(({n}, 1), dtype=y.dtype), y], axis=1), "
                  f"device={device})"]
        tensors, leaf = ["logits", "labels"], "logits"
    else:
        lines += [f"x = torch.tensor({source}, dtype={dtype}, device={device}).requires_grad_()",
                  f"y = torch.as_tensor(np.asarray({labels}, dtype=np.{labels_dtype}), device={device})"]
        tensors, leaf = ["x", "y"], "x"
    options = [f"{name}={value!r}" for name, value in _options(call, flat=not causal).items()]
    ignore = problem.options.ignore_index if problem.options.ignore_index is not None else IGNORE_INDEX
    text = ", ".join(options)
    loss = api.expression.format(options=(", " + text if text and not causal else text), ignore=ignore)
    if call.mode == "compiled":
        arguments = ", ".join(tensors)
        lines += [f"loss_fn = torch.compile(lambda {arguments}: {loss}, dynamic=False)", f"loss = loss_fn({arguments})"]
    else:
        lines.append(f"loss = {loss}")
    lines += ["loss.backward()", f"print(loss, {leaf}.grad)"]
    return "\n".join(lines)
