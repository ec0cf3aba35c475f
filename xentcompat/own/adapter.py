"""A user's callable as a registered loss API: `declare(spec)` registers it in this module, so its cells are run,
judged, isolated (invalid input in a child process) and recorded as any framework adapter's are.

A child process finds it again from the environment: `setup(spec)` names this module and sets XENTCOMPAT_OWN_LOSS
to the spec, which importing this module declares.
"""

from __future__ import annotations

import os

import numpy as np

from xentcompat.adapters import base
from xentcompat.adapters.base import EAGER_AND_COMPILED, EAGER_ONLY, Call
from xentcompat.adapters.repro import array_code, literal
from xentcompat.own import calls
from xentcompat.own.spec import OwnLoss, fits
from xentcompat.run.isolation import Setup

ENVIRONMENT = "XENTCOMPAT_OWN_LOSS"
_DECLARED: dict[str, tuple[OwnLoss, object]] = {}  # api id -> the spec and the callable registered under it


def declare(spec: OwnLoss, fn=None) -> base.LossApi:
    """Register the callable `fn` (default: `spec.load()`, SpecError when it cannot be loaded) as the API
    `spec.api_id`: once per spec and callable (the same id declared again with other claims, or another callable,
    replaces it)."""
    if fn is None:
        fn = spec.load()
    else:
        fits(fn, spec)
    if _DECLARED.get(spec.api_id) == (spec, fn):
        return base.api_named(__name__, spec.api_id)
    runner = calls.RUNNERS[spec.framework]

    def run(call: Call):
        return runner(fn, call, spec.options, spec.targets)

    claims = claims_only(spec)
    base.register(spec.framework, spec.api_id, claims.expression, targets=spec.targets, supports=claims.supports,
                  mean_over=claims.mean_over, modes=claims.modes)(run)
    _DECLARED[spec.api_id] = (spec, fn)
    return base.api_named(__name__, spec.api_id)


def claims_only(spec: OwnLoss) -> base.LossApi:
    """An API with the spec's claims and no callable: which cells the claims cover (it is never run)."""
    modes = EAGER_AND_COMPILED if spec.framework in calls.COMPILED else EAGER_ONLY
    name = spec.where.rpartition(":")[2]
    expression = f"{name}(x, {'q' if spec.targets == 'probs' else 'y'}{{options}})"
    return base.LossApi(spec.api_id, spec.framework, spec.targets, expression, _never_run, frozenset(spec.options),
                        "rows" if spec.targets == "probs" else "weight", modes=modes)


def _never_run(call: Call):
    raise RuntimeError("claims_only: this API only says which cells the claims cover")


def setup(spec: OwnLoss) -> Setup:
    """How a child process declares the same callable (for the cases of invalid input, run isolated)."""
    environment = [(ENVIRONMENT, spec.to_json())]
    if spec.framework == "jax":
        environment.append(("JAX_ENABLE_X64", "1"))
    return Setup(tuple(environment), (__name__,))


def versions() -> dict[str, str]:
    return {spec.framework: calls.version(spec.framework) for spec, _ in _DECLARED.values()}


def available_devices() -> dict[str, str]:
    frameworks = {spec.framework for spec, _ in _DECLARED.values()} or {"numpy"}
    found = [calls.devices(framework) for framework in frameworks]
    return {kind: name for kind, name in found[0].items() if all(kind in other for other in found)}


IMPORTS = {"torch": "import torch", "jax": "import jax\nimport jax.numpy as jnp", "tensorflow": "import tensorflow as tf",
           "numpy": ""}
ARRAYS = {"torch": "torch.tensor({}, dtype=torch.{})", "jax": "jnp.asarray({}).astype(jnp.{})",
          "tensorflow": "tf.cast(tf.constant({}), tf.{})", "numpy": "np.asarray({}).astype({!r})"}
LABELS = {"torch": "torch.as_tensor({})", "jax": "jnp.asarray({})", "tensorflow": "tf.constant({})", "numpy": "{}"}
GRADIENTS = {"torch": ["x.requires_grad_()", "loss = {call}", "loss.backward(torch.ones_like(loss))",
                       "print(loss, x.grad)"],
             "jax": ["loss, pullback = jax.vjp(lambda x: {call}, x)", "print(loss, pullback(jnp.ones_like(loss))[0])"],
             "tensorflow": ["with tf.GradientTape() as tape:", "    tape.watch(x)", "    loss = {call}",
                            "print(loss, tape.gradient(loss, x, output_gradients=tf.ones_like(loss)))"],
             "numpy": ["loss, grad = {call}", "print(loss, grad)"]}


def repro(api: base.LossApi, call: Call, logits_code: str | None) -> str:
    """A copy-paste script that makes the same call of the user's callable."""
    spec = _DECLARED[api.id][0]
    framework, problem = spec.framework, call.problem
    module, _, attribute = spec.where.rpartition(":")
    lines = ["import numpy as np", *IMPORTS[framework].splitlines(), *_import_lines(module, attribute), ""]
    source = array_code(problem.logits, "logits") if logits_code is None else logits_code
    lines.append(f"x = {ARRAYS[framework].format(source, call.dtype)}")
    if spec.targets == "labels":
        labels = np.asarray(problem.labels)
        held = f"np.asarray({array_code(labels, 'labels')}, dtype={labels.dtype.name!r})"
        lines.append(f"t = {LABELS[framework].format(held)}")
    else:
        lines.append(f"t = {ARRAYS[framework].format(array_code(problem.probs, 'probs'), call.dtype)}")
    kwargs = calls.options(call, spec.options, lambda values: values)
    if "weight" in kwargs:
        lines.append(f"weight = {ARRAYS[framework].format(literal(np.asarray(kwargs['weight'])), call.dtype)}")
    arguments = ", ".join(["x", "t", *(f"{name}=weight" if name == "weight" else f"{name}={value!r}"
                                       for name, value in kwargs.items())])
    lines += [line.format(call=f"fn({arguments})") for line in GRADIENTS[framework]]
    return "\n".join(lines)


def _import_lines(module: str, attribute: str) -> list[str]:
    instance = "()" if attribute.endswith("()") else ""
    attribute = attribute.removesuffix("()")
    if module.endswith(".py"):
        return ["import importlib.util", f"spec = importlib.util.spec_from_file_location('loss', {module!r})",
                "loss_module = importlib.util.module_from_spec(spec)", "spec.loader.exec_module(loss_module)",
                f"fn = loss_module.{attribute}{instance}"]
    return [f"import {module}", f"fn = {module}.{attribute}{instance}"]


if os.environ.get(ENVIRONMENT):
    declare(OwnLoss.from_json(os.environ[ENVIRONMENT]))
