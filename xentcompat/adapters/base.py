"""The API registry, the targets (one framework, or one Keras backend, per process), and how a call is captured.

An adapter module registers its loss APIs and offers `versions()` (framework name -> version),
`available_devices()` (device kind -> name) and `repro(api, call, logits_code)` (a copy-paste script).
An adapter function takes a `Call` (numpy logits already rounded to the dtype, targets, options, dtype, device, mode),
runs the framework's loss forward and backward, and returns (loss, d loss / d logits) as anything
`np.asarray` turns into float64. It converts, it never repairs: whatever the framework raises is captured here,
outside the framework call. Only the framework's own exceptions are outcomes (`Raised`): one raised in the adapter's
code (its conversion or option translation: the innermost frame is in the adapter's module or elsewhere in
xentcompat) is an `AdapterFailed`, which fails the cell's test with the traceback instead of counting as "raised".
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from packaging.version import Version

from xentcompat.reference.compact import float64_unless_big
from xentcompat.reference.options import Problem

ALL_OPTIONS = frozenset({"reduction", "weight", "ignore_index", "label_smoothing", "extra_dims"})
EAGER_ONLY = frozenset({"eager"})
EAGER_AND_COMPILED = frozenset({"eager", "compiled"})
WITH_FORWARD = EAGER_AND_COMPILED | {"forward"}  # mode "forward": eager, the gradient by forward-mode
# differentiation (jax.jacfwd, torch.func.jacfwd), one tangent per logit: cases of at most FORWARD_MAX_ELEMENTS logits
FORWARD_MAX_ELEMENTS = 4096


@dataclass(frozen=True)
class Call:
    problem: Problem
    dtype: str
    device: str = "cpu"
    mode: str = "eager"
    num_items: int | None = None  # a count the caller passes as the mean's denominator (transformers'
    # num_items_in_batch, when a micro-batch is divided by its batch's count); None: the call's own count


@dataclass(frozen=True)
class LossApi:
    """One loss API as users write it. `expression` is the call in the framework's own words (x, y, q).

    `framework` and `backend` go into its records (Keras APIs: framework "keras", backend the Keras backend).
    """

    id: str
    framework: str
    targets: str
    expression: str
    run: Callable[[Call], tuple] = field(compare=False)
    supports: frozenset[str] = ALL_OPTIONS
    mean_over: str = "weight"
    backend: str | None = None
    modes: frozenset[str] = EAGER_ONLY
    areas: frozenset[str] | None = None  # an API probing one behaviour runs only the cases of these areas
    since: str | None = None  # the first release of `framework` that has it (None: every release the suite runs)
    needs: str | None = None  # the dotted name the framework must have for it, e.g. "torch.nn.functional.f"
    memory_batches: float | None = None  # peak memory of forward + backward, in batches of the cell dtype
    # (measured on a 512 x 131072 float32 batch; see xentcompat.run.cell_memory); None: not measured
    loss: Callable | None = field(default=None, compare=False)  # the call itself, a plain function of the
    # framework's logits and targets returning the mean loss as a user's model would: what training runs
    no_gradient: str | None = None  # why the API offers no gradient (an inference runtime, a metric): its run
    # returns (loss, None) and every cell's gradient is `absent`; None: it offers one
    slow_above: tuple[int, str] | None = None  # (classes, why): on the CPU, a row of more classes takes it
    # seconds; such cells are not run there (the run's "not run" list says why), see `too_slow`

    def too_slow(self, num_classes: int, device: str) -> bool:
        """Whether a cell of `num_classes` classes on `device` is beyond `slow_above` (not run)."""
        return self.slow_above is not None and device == "cpu" and num_classes > self.slow_above[0]

    def too_slow_reason(self, count: int) -> str:
        """Why `count` cells of this API are not run (see `slow_above`)."""
        limit, why = self.slow_above
        return (f"{count} cells of {self.id} not run on the CPU: rows of more than {limit} classes take it seconds "
                f"each ({why})")

    @property
    def adapter(self):
        """The adapter module that registered this API."""
        return sys.modules[self.run.__module__]

    def missing_in(self, version: str) -> str | None:
        """Why release `version` of the framework has no such API (None when it has): it came later (`since`)."""
        if self.since is not None and Version(version.split("+")[0]) < Version(self.since):
            return f"{self.id} is not in {self.framework} {version} (it came in {self.since})"
        return None

    def missing_here(self, version: str) -> str | None:
        """`missing_in(version)` for the installed framework, or why its build lacks `needs`."""
        if self.missing_in(version):
            return self.missing_in(version)
        if self.needs is not None and not _has_name(self.needs):
            return f"{self.id} is not in this {self.framework} {version}: it has no {self.needs}"
        return None

    def applies_to(self, problem_options) -> bool:
        """Whether every option the case sets (away from its default) is one this API offers."""
        used = {name for name, default in DEFAULT_OPTIONS.items() if getattr(problem_options, name) != default}
        return used <= self.supports


@dataclass(frozen=True)
class Target:
    """A process-wide framework setup: `tox -e <name>` and `--framework <name>` pick one.

    `environment` is set before the adapter modules are imported (Keras reads KERAS_BACKEND at import).
    `eager_seconds`: how long its eager shard takes on 2 cores (`xentcompat run` starts the longest first; None: not
    measured, started among the longest). `training`: the family of loops and loss variants it trains with
    (`xentcompat.training.<family>_loop`, `training.variants.VARIANTS[family]`), None where it does not train.
    """

    name: str
    modules: tuple[str, ...]
    requires: tuple[str, ...]
    environment: tuple[tuple[str, str], ...] = ()
    eager_seconds: int | None = None
    training: str | None = None

    @property
    def backend(self) -> str | None:
        """The Keras backend the target sets (None: no Keras)."""
        return dict(self.environment).get("KERAS_BACKEND")


@dataclass(frozen=True)
class Returned:
    loss: np.ndarray
    grad: np.ndarray | None  # None from an API that offers no gradient (LossApi.no_gradient)
    seconds: float


@dataclass(frozen=True)
class Raised:
    type: str
    message: str
    seconds: float


@dataclass(frozen=True)
class Faulted:
    """The device faulted: the framework raised an asynchronous device error (a CUDA device-side assert, reported at
    the next synchronising call, wherever that is), after which the process's device context may be unusable
    (`context_usable`: whether a trivial device operation still ran afterwards; None where the adapter cannot say)."""

    type: str
    message: str
    seconds: float
    context_usable: bool | None


@dataclass(frozen=True)
class AdapterFailed:
    """An exception raised in xentcompat's own code while running an API: a bug to fix, never a measurement."""

    type: str
    message: str
    traceback: str
    seconds: float


class AdapterError(RuntimeError):
    """An adapter failed (see `AdapterFailed`); the message carries its traceback."""


PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FrameworkMissing(RuntimeError):
    """The target's framework is not installed; the message says which package."""


QUIET_TENSORFLOW = ("TF_CPP_MIN_LOG_LEVEL", "2")
# eager seconds: each target's eager shard on 2 cores (`xentcompat run`, every target, two shards at a time, 2026-12)
TARGETS: dict[str, Target] = {
    "torch": Target("torch", ("xentcompat.adapters.torch", "xentcompat.adapters.torch_linear"), ("torch",),
                    eager_seconds=97, training="torch"),
    "tensorflow": Target("tensorflow", ("xentcompat.adapters.keras", "xentcompat.adapters.tf_nn"),
                         ("tensorflow", "keras"), (("KERAS_BACKEND", "tensorflow"), QUIET_TENSORFLOW),
                         eager_seconds=58, training="keras"),
    "jax": Target("jax", ("xentcompat.adapters.jax",), ("jax", "optax"), (("JAX_ENABLE_X64", "1"),),
                  eager_seconds=525, training="jax"),
    "keras-jax": Target("keras-jax", ("xentcompat.adapters.keras",), ("keras", "jax"),
                        (("KERAS_BACKEND", "jax"), ("JAX_ENABLE_X64", "1")), eager_seconds=242, training="keras"),
    "keras-torch": Target("keras-torch", ("xentcompat.adapters.keras",), ("keras", "torch"),
                          (("KERAS_BACKEND", "torch"),), eager_seconds=154, training="keras"),
    "huggingface": Target("huggingface", ("xentcompat.adapters.huggingface",), ("torch", "transformers"),
                          eager_seconds=62),
    "mlx": Target("mlx", ("xentcompat.adapters.mlx",), ("mlx",), eager_seconds=24, training="mlx"),
    "paddle": Target("paddle", ("xentcompat.adapters.paddle",), ("paddle",), eager_seconds=30, training="paddle"),
    "sklearn": Target("sklearn", ("xentcompat.adapters.scikit_learn",), ("sklearn",), eager_seconds=25),
    "onnxruntime": Target("onnxruntime", ("xentcompat.adapters.onnx_runtime",), ("onnxruntime", "onnx"),
                          eager_seconds=13),
}
DEFAULT_OPTIONS = {"reduction": "mean", "weight": None, "ignore_index": None, "label_smoothing": 0.0,
                   "extra_dims": ()}
_REGISTRY: dict[str, list[LossApi]] = {}


def register(framework: str, api_id: str, expression: str, targets: str = "labels",
             supports: frozenset[str] = ALL_OPTIONS, mean_over: str = "weight", backend: str | None = None,
             modes: frozenset[str] = EAGER_ONLY, areas: frozenset[str] | None = None, since: str | None = None,
             needs: str | None = None, memory_batches: float | None = None, loss: Callable | None = None,
             slow_above: tuple[int, str] | None = None, no_gradient: str | None = None):
    """Decorator: register an adapter function as the loss API `api_id` of its module.

    `modes` are the execution modes the function implements ("compiled": the framework's compiler on the call);
    `areas`, when given, the only case areas it runs (an API that probes one behaviour on a case family of its own);
    `since` and `needs`, the releases that have it (see `LossApi.missing_in`): on another, its cells are not run;
    `memory_batches`, its measured peak memory (see `LossApi`); `loss`, the call as a plain function of the
    framework's arrays (logits, targets) giving the mean loss, the one function the training loops run;
    `slow_above`, the classes beyond which it is too slow to run on the CPU, and why (see `LossApi.too_slow`);
    `no_gradient`, why the API offers no gradient (its function returns (loss, None)).
    """

    def decorate(run: Callable[[Call], tuple]) -> Callable[[Call], tuple]:
        api = LossApi(api_id, framework, targets, expression, run, supports, mean_over, backend, modes, areas,
                      since, needs, memory_batches, loss, no_gradient=no_gradient, slow_above=slow_above)
        _REGISTRY.setdefault(run.__module__, []).append(api)
        return run

    return decorate


def missing_requirement(name: str) -> str | None:
    """Why target `name` cannot run here (its package is not installed), or None."""
    target = target_named(name)
    for package in target.requires:
        if importlib.util.find_spec(package) is None:
            return f"{package} is not installed (target {name})"
    return None


def target_named(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown target {name!r}; known: {', '.join(TARGETS)}") from None


def load(name: str) -> list:
    """Set target `name`'s environment, import its adapter modules (registering their APIs) and return them.

    FrameworkMissing if a package is absent; ValueError if the environment clashes with one already imported.
    """
    reason = missing_requirement(name)
    if reason:
        raise FrameworkMissing(reason)
    target = target_named(name)
    for variable, value in target.environment:
        if os.environ.get(variable, value) != value and "keras" in sys.modules:
            raise ValueError(f"target {name} needs {variable}={value}, but keras was imported with "
                             f"{variable}={os.environ[variable]}: run each target in its own process")
        os.environ[variable] = value
    return [importlib.import_module(module) for module in target.modules]


def apis(name: str) -> list[LossApi]:
    """The registered APIs of target `name` (its modules loaded first)."""
    return [api for module in load(name) for api in registered(module.__name__)]


def registered(module_name: str) -> list[LossApi]:
    """The APIs an (imported) adapter module registered."""
    return list(_REGISTRY.get(module_name, []))


def versions(name: str) -> dict[str, str]:
    """Framework name -> version for every framework target `name` runs."""
    return {framework: version for module in load(name) for framework, version in module.versions().items()}


def devices(name: str) -> dict[str, str]:
    """Device kind -> device name, for the devices every adapter module of target `name` can run on here."""
    found = [module.available_devices() for module in load(name)]
    return {kind: device for kind, device in found[0].items() if all(kind in other for other in found)}


# torch.compile reports an op's failure as "RuntimeError when making fake tensor call", the op's own error further down
# ("... got RuntimeError('gather(): Expected dtype int32/int64 for index, ...')"); inductor's kernel asserts name a
# generated file whose path changes from run to run.
_WRAPPED = re.compile(r'''\): got (\w+)\((['"])(.+?)\2\)''')
_INDUCTOR_KERNEL = re.compile(r"kernel, /\S*torchinductor\S*?\.cpp:\d+, ")


def first_line(error: BaseException) -> str:
    """The exception's first line (at most 300 characters): without TensorFlow's `{{function_node ...}}` prefix, with
    the wrapped error a compiler reports further down, with no generated file's path."""
    text = str(error).strip()
    line = re.sub(r"^(\{\{[^}]*\}\}\s*)+", "", (text.splitlines() or [""])[0])
    wrapped = _WRAPPED.search(text)
    if wrapped:
        line += f" ({wrapped.group(1)}: {wrapped.group(3)})"
    return _INDUCTOR_KERNEL.sub("kernel: ", line)[:300]


def capture(api: LossApi, call: Call) -> Returned | Raised | Faulted | AdapterFailed:
    """Run the API; its result as float64 numpy, the exception the framework raised (type and first line), the
    device fault it reported, or the exception xentcompat's own code raised (with its traceback)."""
    start = time.perf_counter()
    try:
        loss, grad = api.run(call)
        loss, grad = np.asarray(loss, dtype=np.float64), _gradient(api, grad)
    except Exception as error:  # the API's own failure is the measurement; the adapter's is a bug
        seconds = time.perf_counter() - start
        if is_device_fault(error):  # the framework's, from whichever frame happened to synchronise
            return Faulted(type(error).__name__, first_line(error), seconds, context_usable(api, call.device))
        if raised_by_adapter(error, api):
            text = "".join(traceback.format_exception(error))
            return AdapterFailed(type(error).__name__, first_line(error), text, seconds)
        return Raised(type(error).__name__, first_line(error), seconds)
    return Returned(loss, grad, time.perf_counter() - start)


def _gradient(api: LossApi, grad) -> np.ndarray | None:
    """The returned gradient as float64 numpy; None from an API that offers none (a gradient from one, or none from
    one that offers it, is the adapter's bug)."""
    if (grad is None) != (api.no_gradient is not None):
        raise TypeError(f"{api.id} returned {'no' if grad is None else 'a'} gradient, and it "
                        f"{'offers one' if grad is None else 'offers none'}")
    return None if grad is None else float64_unless_big(np.asarray(grad))


# How frameworks report an asynchronous device error: torch >= 2.8 raises `torch.AcceleratorError` (a RuntimeError),
# older releases a RuntimeError whose text starts "CUDA error"; XLA a runtime error naming the CUDA error.
DEVICE_FAULT_TYPES = frozenset({"AcceleratorError"})
_DEVICE_FAULT_TEXT = re.compile(r"CUDA error|device-side assert|CUDA_ERROR_|cudaError|an illegal memory access")


def is_device_fault(error: BaseException) -> bool:
    """Whether `error` is a device's asynchronous fault rather than an error raised where the call is made."""
    if any(kind.__name__ in DEVICE_FAULT_TYPES for kind in type(error).__mro__):
        return True
    return isinstance(error, RuntimeError) and bool(_DEVICE_FAULT_TEXT.search(str(error)))


def reads_as_device_fault(type_name: str, message: str) -> bool:
    """`is_device_fault` from a record's error (its type name and first line), for records written before the
    fault was told apart (a compiler's wrapper, e.g. InductorError, naming the device error in its message)."""
    return type_name in DEVICE_FAULT_TYPES or bool(_DEVICE_FAULT_TEXT.search(message))


def context_usable(api: LossApi, device: str) -> bool | None:
    """Whether the adapter module's `device_alive(device)` still runs a trivial operation on `device` after a
    fault (None when the module offers no such check)."""
    alive = getattr(api.adapter, "device_alive", None)
    if alive is None:
        return None
    try:
        alive(device)
    except Exception:  # any failure at all: the context is gone
        return False
    return True


def _has_name(dotted: str) -> bool:
    """Whether the imported module path of `dotted` has its last attribute, e.g. torch.nn.functional.f."""
    module, _, name = dotted.rpartition(".")
    found = sys.modules.get(module)
    if found is None:
        try:
            found = importlib.import_module(module)
        except ImportError:
            return False
    return hasattr(found, name)


def framework_call(function: Callable, *args, **kwargs):
    """`function(*args, **kwargs)`, for an adapter calling a framework's native function (a C binding) directly: an
    exception raised from it has no frame of the framework's, and from here it reads as the framework's, not the
    adapter's (see `raised_by_adapter`)."""
    return function(*args, **kwargs)


def raised_by_adapter(error: BaseException, api: LossApi) -> bool:
    """Whether the innermost frame of `error`'s traceback is the adapter's: in the module that registered `api` or
    elsewhere in xentcompat (a framework's Python code raises from its own frames; a C function the adapter calls
    directly, from the adapter's, unless the adapter calls it through `framework_call`)."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return False
    if frames[-1].name == framework_call.__name__ and os.path.abspath(frames[-1].filename) == os.path.abspath(__file__):
        return False
    where = os.path.abspath(frames[-1].filename)
    module_file = getattr(sys.modules.get(api.run.__module__), "__file__", None)
    return where.startswith(PACKAGE_DIR + os.sep) or (module_file is not None and where == os.path.abspath(module_file))


def api_named(module_name: str, api_id: str) -> LossApi:
    """The API `api_id` an (imported) adapter module registered; KeyError naming it when there is none."""
    found = {api.id: api for api in registered(module_name)}
    if api_id not in found:
        raise KeyError(f"{module_name} registers no API {api_id!r}")
    return found[api_id]
