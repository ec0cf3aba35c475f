"""JAX loss APIs (Optax, and the hand-written `jax.nn` forms), forward and backward (`jax.vjp`), one function each.

They return one loss per position; the reduction is the user's (`.mean()` / `.sum()`), so their options are
`reduction` and `extra_dims`, channels-last: logits (N, C) -> (n, d1, ..., C), labels (N,) -> (n, d1, ...),
probabilities like logits, and the user's mean is over every position. Loss and gradient come back as the reference's
rows, (N,) and (N, C). Labels reach JAX as the user holds them: their own dtype (int64, int32, uint8, float) and
length. The gradient pulls back ones through `jax.vjp` (for "none" that is `jax.grad` of the sum).

Each API is a function of the logits and its targets, `rows(x, t)`. Mode "eager" runs the loss and its `jax.vjp`
op by op, no `jax.jit` around them; mode "forward" runs the loss op by op and its gradient by forward-mode
differentiation, `jax.jacfwd` of the reduced loss (of the sum for "none"), one tangent per logit; mode "compiled"
runs the reverse-mode loss-and-gradient under `jax.jit`, as users jit a train step: one jitted function per API for
the whole process, the reduction a static argument, the targets a traced one, so XLA compiles once per API,
reduction, shape and dtype. The target sets JAX_ENABLE_X64=1 so float64 cells (and int64 labels) really are 64-bit:
a cell refuses to run without it. Each API's `loss` (its mean over positions) is the
function the JAX training loop trains with, which runs in JAX's default 32 bits.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from xentcompat.adapters.base import WITH_FORWARD, Call, register
from xentcompat.adapters.layout import native, native_code
from xentcompat.adapters.repro import array_code
from xentcompat.reference.compact import float64_unless_big, is_big

OPTIONS = frozenset({"reduction", "extra_dims"})  # no class weights, ignore_index or label smoothing
REDUCERS = {"mean": "({}).mean()", "sum": "({}).sum()", "none": "{}"}
# the bench times each API through `_loss_and_grad`, the helper every API's function here calls (see xentcompat.bench.steps)
BENCH_HELPER, BENCH_STEPS = "_loss_and_grad", "xentcompat.bench.steps_jax"


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


def device_alive(kind: str) -> None:
    """A trivial operation on the `kind` device, waited for: raises when a fault left it unusable."""
    where = _gpus()[0] if kind == "cuda" else jax.devices("cpu")[0]
    jax.device_put(np.ones(1), where).block_until_ready()


def device(call: Call):
    return _gpus()[0] if call.device == "cuda" else jax.devices("cpu")[0]


def array(values: np.ndarray, call: Call) -> jax.Array:
    """`values` (float64, already representable in the cell dtype) as a dtype array on the cell's device, in the
    user's layout: exact."""
    values = native(values, call.problem.options.extra_dims)
    values = values if is_big(values) else np.asarray(values, np.float64)  # a big batch: no float64 copy on the way
    return jax.device_put(jnp.asarray(values).astype(getattr(jnp, call.dtype)), device(call))


def _labels(call: Call) -> jax.Array:
    """The label array in its own dtype and shape (no cast), in the user's layout, on the cell's device."""
    return jax.device_put(jnp.asarray(native(call.problem.labels, call.problem.options.extra_dims)), device(call))


def _reduce(rows: jax.Array, reduction: str) -> jax.Array:
    return {"mean": jnp.mean, "sum": jnp.sum, "none": lambda rows: rows}[reduction](rows)


def loss_and_pullback(rows, x: jax.Array, t: jax.Array, reduction: str) -> tuple:
    """The reduced loss of `rows(x, t)` and its `jax.vjp` pulled back from ones: d loss / d x (of the sum for
    "none"). Un-jitted this runs op by op (eager); `compiled(rows)` is the same under `jax.jit`."""
    loss, pullback = jax.vjp(lambda x: _reduce(rows(x, t), reduction), x)
    (grad,) = pullback(jnp.ones_like(loss))
    return loss, grad


def loss_and_forward_gradient(rows, x: jax.Array, t: jax.Array, reduction: str) -> tuple:
    """The reduced loss of `rows(x, t)` and its gradient by `jax.jacfwd` (of the sum for "none"), op by op."""
    loss = _reduce(rows(x, t), reduction)
    grad = jax.jacfwd(lambda x: jnp.sum(_reduce(rows(x, t), reduction)))(x)
    return loss, grad


def compiled(rows):
    """The module-level jitted loss-and-gradient of one API: `reduction` static, logits and targets traced."""
    return jax.jit(functools.partial(loss_and_pullback, rows), static_argnames="reduction")


def _loss_and_grad(call: Call, rows, jitted, t: jax.Array) -> tuple:
    """Loss and gradient of one API in the call's mode; a per-position loss (n, d1, ...) comes back as (N,), the
    gradient as (N, C)."""
    if not jax.config.jax_enable_x64:
        raise RuntimeError("a JAX cell needs JAX_ENABLE_X64=1 set before jax is imported "
                           "(float64 would silently run in float32)")
    x = array(call.problem.logits, call)
    run = {"eager": functools.partial(loss_and_pullback, rows), "compiled": jitted,
           "forward": functools.partial(loss_and_forward_gradient, rows)}[call.mode]
    loss, grad = run(x, t, reduction=call.problem.options.reduction)
    loss = _numpy(loss)
    return (loss.reshape(-1) if loss.ndim else loss), _numpy(grad).reshape(call.problem.logits.shape)


def _numpy(values: jax.Array) -> np.ndarray:
    """float64, or a big batch's own exact container (no N × C float64 copy; see `reference.compact`)."""
    return float64_unless_big(np.asarray(values))


def _mean(rows):
    """The API as the training loop runs it: its loss averaged over positions."""
    return lambda x, t: rows(x, t).mean()


def _integer_labels_rows(x, y):
    return optax.softmax_cross_entropy_with_integer_labels(x, y)


def _softmax_rows(x, q):
    return optax.softmax_cross_entropy(x, q)


def _safe_softmax_rows(x, q):
    return optax.safe_softmax_cross_entropy(x, q)


def _log_of_softmax_rows(x, y):
    return -jnp.take_along_axis(jnp.log(jax.nn.softmax(x, axis=-1)), y[..., None], axis=-1)[..., 0]


def _log_softmax_rows(x, y):
    return -jnp.take_along_axis(jax.nn.log_softmax(x, axis=-1), y[..., None], axis=-1)[..., 0]


def _integer_labels_where_rows(x, y):
    mask = x != -jnp.inf
    return optax.softmax_cross_entropy_with_integer_labels(jnp.where(mask, x, 0), y, where=mask)


def _log_softmax_where_rows(x, y):
    mask = x != -jnp.inf
    log_p = jax.nn.log_softmax(jnp.where(mask, x, 0), axis=-1, where=mask)
    return -jnp.take_along_axis(log_p, y[..., None], axis=-1)[..., 0]


def _integer_labels_of_softmax_rows(x, y):
    return optax.softmax_cross_entropy_with_integer_labels(jax.nn.softmax(x, axis=-1), y)


def _plain_index_rows(x, y):
    return -jax.nn.log_softmax(x, axis=-1)[jnp.arange(x.shape[0]), y]


_integer_labels_jit = compiled(_integer_labels_rows)
_softmax_jit = compiled(_softmax_rows)
_safe_softmax_jit = compiled(_safe_softmax_rows)
_log_of_softmax_jit = compiled(_log_of_softmax_rows)
_log_softmax_jit = compiled(_log_softmax_rows)
_plain_index_jit = compiled(_plain_index_rows)
_integer_labels_where_jit = compiled(_integer_labels_where_rows)
_log_softmax_where_jit = compiled(_log_softmax_where_rows)
_integer_labels_of_softmax_jit = compiled(_integer_labels_of_softmax_rows)
JITTED = (_integer_labels_jit, _softmax_jit, _safe_softmax_jit, _log_of_softmax_jit, _log_softmax_jit,
          _plain_index_jit, _integer_labels_where_jit, _log_softmax_where_jit, _integer_labels_of_softmax_jit)
MASK = "x != -jnp.inf"  # the `where=` variants mask the -inf (masked) classes instead of feeding -inf


@register("jax", "optax.softmax_cross_entropy_with_integer_labels",
          "optax.softmax_cross_entropy_with_integer_labels(x, y)", supports=OPTIONS, modes=WITH_FORWARD,
          memory_batches=3.9, loss=_mean(_integer_labels_rows))
def softmax_cross_entropy_with_integer_labels(call: Call):
    return _loss_and_grad(call, _integer_labels_rows, _integer_labels_jit, _labels(call))


@register("jax", "optax.softmax_cross_entropy", "optax.softmax_cross_entropy(x, q)", targets="probs",
          supports=OPTIONS, mean_over="rows", modes=WITH_FORWARD,
          memory_batches=4.8, loss=_mean(_softmax_rows))
def softmax_cross_entropy(call: Call):
    return _loss_and_grad(call, _softmax_rows, _softmax_jit, array(call.problem.probs, call))


@register("jax", "optax.safe_softmax_cross_entropy", "optax.safe_softmax_cross_entropy(x, q)", targets="probs",
          supports=OPTIONS, mean_over="rows", modes=WITH_FORWARD,
          memory_batches=7.1, loss=_mean(_safe_softmax_rows))
def safe_softmax_cross_entropy(call: Call):
    return _loss_and_grad(call, _safe_softmax_rows, _safe_softmax_jit, array(call.problem.probs, call))


@register("jax", "log(jax.nn.softmax)[label]",
          "-jnp.take_along_axis(jnp.log(jax.nn.softmax(x, axis=-1)), y[..., None], axis=-1)[..., 0]",
          supports=OPTIONS, modes=WITH_FORWARD,
          memory_batches=4.5, loss=_mean(_log_of_softmax_rows))
def log_of_softmax(call: Call):
    """The tutorial form: log of the probabilities, picked at the label."""
    return _loss_and_grad(call, _log_of_softmax_rows, _log_of_softmax_jit, _labels(call))


@register("jax", "optax.softmax_cross_entropy_with_integer_labels(softmax)",
          "optax.softmax_cross_entropy_with_integer_labels(jax.nn.softmax(x, axis=-1), y)", supports=OPTIONS,
          modes=WITH_FORWARD, loss=_mean(_integer_labels_of_softmax_rows))
def integer_labels_of_softmax(call: Call):
    """The double softmax: a model ending in a softmax, fed to the fused loss, which applies its own."""
    return _loss_and_grad(call, _integer_labels_of_softmax_rows, _integer_labels_of_softmax_jit, _labels(call))


@register("jax", "jax.nn.log_softmax[label]",
          "-jnp.take_along_axis(jax.nn.log_softmax(x, axis=-1), y[..., None], axis=-1)[..., 0]",
          supports=OPTIONS, modes=WITH_FORWARD,
          memory_batches=2.8, loss=_mean(_log_softmax_rows))
def log_softmax(call: Call):
    return _loss_and_grad(call, _log_softmax_rows, _log_softmax_jit, _labels(call))


@register("jax", "jax.nn.log_softmax[arange(n), label]", "-jax.nn.log_softmax(x, axis=-1)[jnp.arange(x.shape[0]), y]",
          supports=frozenset({"reduction"}), modes=WITH_FORWARD, loss=_mean(_plain_index_rows))
def log_softmax_plain_index(call: Call):
    """The hand-written form with NumPy-style indexing, which JAX clamps out of range instead of raising."""
    return _loss_and_grad(call, _plain_index_rows, _plain_index_jit, _labels(call))


@register("jax", "optax.softmax_cross_entropy_with_integer_labels(where=mask)",
          f"optax.softmax_cross_entropy_with_integer_labels(jnp.where({MASK}, x, 0), y, where={MASK})",
          supports=OPTIONS, modes=WITH_FORWARD,
          memory_batches=7.2, loss=_mean(_integer_labels_where_rows))
def integer_labels_where(call: Call):
    """A mask instead of -inf logits: `where=` marks the classes that count (a row of only masked classes has
    none)."""
    return _loss_and_grad(call, _integer_labels_where_rows, _integer_labels_where_jit, _labels(call))


@register("jax", "jax.nn.log_softmax(where=mask)[label]",
          f"-jnp.take_along_axis(jax.nn.log_softmax(jnp.where({MASK}, x, 0), axis=-1, where={MASK}), "
          "y[..., None], axis=-1)[..., 0]", supports=OPTIONS, modes=WITH_FORWARD,
          memory_batches=7.1, loss=_mean(_log_softmax_where_rows))
def log_softmax_where(call: Call):
    return _loss_and_grad(call, _log_softmax_where_rows, _log_softmax_where_jit, _labels(call))


def repro(api, call: Call, logits_code: str | None) -> str:
    """A copy-paste JAX script that makes the same call (labels in their own dtype, the user's layout)."""
    problem, dtype = call.problem, f"jnp.{call.dtype}"
    extra_dims = problem.options.extra_dims
    source = array_code(problem.logits, "logits") if logits_code is None else logits_code
    where = 'jax.devices("gpu")[0]' if call.device == "cuda" else 'jax.devices("cpu")[0]'
    lines = ["import numpy as np", "import jax", 'jax.config.update("jax_enable_x64", True)',
             "import jax.numpy as jnp", "import optax", "",
             f"device = {where}",
             f"x = jax.device_put(jnp.asarray({source}, dtype=jnp.float64).astype({dtype})"
             f"{native_code(extra_dims, problem.num_classes)}, device)"]
    if problem.labels is not None:
        labels = f"np.asarray({array_code(problem.labels, 'labels')}, dtype=np.{problem.labels.dtype.name})"
        lines.append(f"y = jax.device_put(jnp.asarray({labels}){native_code(extra_dims)}, device)")
    if problem.probs is not None:
        lines.append(f"q = jax.device_put(jnp.asarray({array_code(problem.probs, 'probs')}, dtype=jnp.float64)"
                     f".astype({dtype}){native_code(extra_dims, problem.num_classes)}, device)")
    loss = REDUCERS[problem.options.reduction].format(api.expression)
    if call.mode == "forward":
        lines += [f"loss = {loss}", f"grad = jax.jacfwd(lambda x: jnp.sum({loss}))(x)", "print(loss, grad)"]
        return "\n".join(lines)
    if call.mode != "compiled":
        lines += [f"loss, pullback = jax.vjp(lambda x: {loss}, x)",
                  "print(loss, pullback(jnp.ones_like(loss))[0])"]
        return "\n".join(lines)
    t = "y" if problem.labels is not None else "q"
    lines += ["", "", "@jax.jit", f"def loss_and_grad(x, {t}):",
              f"    loss, pullback = jax.vjp(lambda x: {loss}, x)",
              "    return loss, pullback(jnp.ones_like(loss))[0]", "", "",
              f"loss, grad = loss_and_grad(x, {t})", "print(loss, grad)"]
    return "\n".join(lines)
