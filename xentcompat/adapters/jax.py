"""JAX loss APIs (Optax, and the hand-written `jax.nn` forms), forward and backward (`jax.vjp`), one function each.

They return one loss per row; the reduction is the user's (`.mean()` / `.sum()`), so `reduction` is the only option
they offer. The gradient pulls back ones through `jax.vjp` (for "none" that is `jax.grad` of the sum). Eager: no
`jax.jit` around the call. The target sets JAX_ENABLE_X64=1 so float64 cells really run in float64.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from xentcompat.adapters.base import Call, register
from xentcompat.adapters.repro import literal, probs_literal

if not jax.config.jax_enable_x64:
    raise RuntimeError("xentcompat.adapters.jax needs JAX_ENABLE_X64=1 set before jax is imported "
                       "(float64 would silently run in float32)")

REDUCTION_ONLY = frozenset({"reduction"})
REDUCERS = {"mean": "({}).mean()", "sum": "({}).sum()", "none": "{}"}


def versions() -> dict[str, str]:
    return {"jax": jax.__version__, "optax": optax.__version__}


def available_devices() -> dict[str, str]:
    devices = {"cpu": "cpu"}
    gpus = _gpus()
    if gpus:
        devices["cuda"] = gpus[0].device_kind
    return devices


def _gpus() -> list:
    try:
        return jax.devices("gpu")
    except RuntimeError:  # no GPU backend in this process
        return []


def device(call: Call):
    return _gpus()[0] if call.device == "cuda" else jax.devices("cpu")[0]


def array(values: np.ndarray, call: Call) -> jax.Array:
    """`values` (float64, already representable in the cell dtype) as a dtype array on the cell's device: exact."""
    return jax.device_put(jnp.asarray(values, dtype=jnp.float64).astype(getattr(jnp, call.dtype)), device(call))


def _labels(call: Call) -> jax.Array:
    return jax.device_put(jnp.asarray(call.problem.labels), device(call))


def _reduce(rows: jax.Array, reduction: str) -> jax.Array:
    return {"mean": jnp.mean, "sum": jnp.sum, "none": lambda rows: rows}[reduction](rows)


def _loss_and_grad(call: Call, rows_of) -> tuple:
    """The reduced loss of `rows_of(x)` and d loss / d x, pulling back ones (`jax.grad` of the sum for "none")."""
    x = array(call.problem.logits, call)
    loss, pullback = jax.vjp(lambda x: _reduce(rows_of(x), call.problem.options.reduction), x)
    (grad,) = pullback(jnp.ones_like(loss))
    return _numpy(loss), _numpy(grad)


def _numpy(values: jax.Array) -> np.ndarray:
    return np.asarray(values).astype(np.float64)


@register("jax", "optax.softmax_cross_entropy_with_integer_labels",
          "optax.softmax_cross_entropy_with_integer_labels(x, y)", supports=REDUCTION_ONLY)
def softmax_cross_entropy_with_integer_labels(call: Call):
    y = _labels(call)
    return _loss_and_grad(call, lambda x: optax.softmax_cross_entropy_with_integer_labels(x, y))


@register("jax", "optax.softmax_cross_entropy", "optax.softmax_cross_entropy(x, q)", targets="probs",
          supports=REDUCTION_ONLY, mean_over="rows")
def softmax_cross_entropy(call: Call):
    q = array(call.problem.probs, call)
    return _loss_and_grad(call, lambda x: optax.softmax_cross_entropy(x, q))


@register("jax", "optax.safe_softmax_cross_entropy", "optax.safe_softmax_cross_entropy(x, q)", targets="probs",
          supports=REDUCTION_ONLY, mean_over="rows")
def safe_softmax_cross_entropy(call: Call):
    q = array(call.problem.probs, call)
    return _loss_and_grad(call, lambda x: optax.safe_softmax_cross_entropy(x, q))


@register("jax", "log(jax.nn.softmax)[label]",
          "-jnp.take_along_axis(jnp.log(jax.nn.softmax(x, axis=-1)), y[:, None], axis=-1)[:, 0]",
          supports=REDUCTION_ONLY)
def log_of_softmax(call: Call):
    """The tutorial form: log of the probabilities, picked at the label."""
    y = _labels(call)
    return _loss_and_grad(call, lambda x: -jnp.take_along_axis(
        jnp.log(jax.nn.softmax(x, axis=-1)), y[:, None], axis=-1)[:, 0])


@register("jax", "jax.nn.log_softmax[label]",
          "-jnp.take_along_axis(jax.nn.log_softmax(x, axis=-1), y[:, None], axis=-1)[:, 0]",
          supports=REDUCTION_ONLY)
def log_softmax(call: Call):
    y = _labels(call)
    return _loss_and_grad(call, lambda x: -jnp.take_along_axis(
        jax.nn.log_softmax(x, axis=-1), y[:, None], axis=-1)[:, 0])


def repro(api, call: Call, logits_code: str | None) -> str:
    """A copy-paste JAX script that makes the same call."""
    problem, dtype = call.problem, f"jnp.{call.dtype}"
    source = literal(problem.logits) if logits_code is None else logits_code
    where = 'jax.devices("gpu")[0]' if call.device == "cuda" else 'jax.devices("cpu")[0]'
    lines = ["import numpy as np", "import jax", 'jax.config.update("jax_enable_x64", True)',
             "import jax.numpy as jnp", "import optax", "",
             f"device = {where}",
             f"x = jax.device_put(jnp.asarray({source}, dtype=jnp.float64).astype({dtype}), device)"]
    if problem.labels is not None:
        lines.append(f"y = jax.device_put(jnp.asarray({literal(problem.labels, 'labels')}), device)")
    if problem.probs is not None:
        lines.append(f"q = jax.device_put(jnp.asarray({probs_literal(problem.probs)}, dtype=jnp.float64)"
                     f".astype({dtype}), device)")
    loss = REDUCERS[problem.options.reduction].format(api.expression)
    lines += [f"loss, pullback = jax.vjp(lambda x: {loss}, x)",
              "print(loss, pullback(jnp.ones_like(loss))[0])"]
    return "\n".join(lines)
