"""Which callable to check and what it claims: `OwnLoss`, parsed from `MODULE:CALLABLE` and the claims.

The callable is called as `fn(logits, targets, **options)`: logits (N, C) as the framework's array in the cell's
dtype, targets the labels (N,) as integers or probabilities (N, C) in the dtype, and only the options it claims, each
passed when the case sets it (`reduction` always, when claimed). It returns the loss, or a (loss, gradient) pair; a
numpy callable has no autodiff, so it returns the pair.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

FRAMEWORKS = ("torch", "jax", "tensorflow", "numpy")
OPTIONS = ("reduction", "weight", "ignore_index", "label_smoothing")
TARGETS = ("labels", "probs")


class SpecError(ValueError):
    """The callable cannot be checked as given (it does not import, is not callable, does not fit): one line."""


@dataclass(frozen=True)
class OwnLoss:
    """A user's loss: `where` is MODULE:CALLABLE (MODULE a dotted name or a .py file; CALLABLE a dotted attribute,
    ending in `()` to call it once, with no arguments, for the loss object: an `nn.Module` class)."""

    where: str
    framework: str
    targets: str = "labels"
    options: tuple[str, ...] = ()
    name: str | None = None  # the API id its records carry (default: `where`); a cause entry naming it applies

    def __post_init__(self):
        if self.framework not in FRAMEWORKS:
            raise SpecError(f"--framework {self.framework!r}: expected one of {', '.join(FRAMEWORKS)}")
        if self.targets not in TARGETS:
            raise SpecError(f"--targets {self.targets!r}: expected one of {', '.join(TARGETS)}")
        unknown = [name for name in self.options if name not in OPTIONS]
        if unknown:
            raise SpecError(f"--options {unknown[0]!r}: expected among {', '.join(OPTIONS)}")
        if self.targets == "probs" and "ignore_index" in self.options:
            raise SpecError("--options ignore_index takes class-index targets, not --targets probs")
        if ":" not in self.where:
            raise SpecError(f"{self.where!r}: expected MODULE:CALLABLE (a module or .py file, a colon, a name)")

    @property
    def api_id(self) -> str:
        suffix = "[probs]" if self.targets == "probs" and not self.name else ""
        return f"{self.name or self.where}{suffix}"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> OwnLoss:
        fields = json.loads(text)
        return cls(fields["where"], fields["framework"], fields["targets"], tuple(fields["options"]), fields["name"])

    def load(self):
        """The callable; SpecError naming what is wrong when it does not import or is not callable."""
        module_name, _, attribute = self.where.rpartition(":")
        module = _module(module_name)
        instantiate = attribute.endswith("()")
        found = module
        for part in attribute.removesuffix("()").split("."):
            if not hasattr(found, part):
                raise SpecError(f"{self.where}: {module_name} has no attribute {attribute.removesuffix('()')!r}")
            found = getattr(found, part)
        if instantiate:
            try:
                found = found()
            except Exception as error:
                raise SpecError(f"{self.where}: calling {attribute} raised {type(error).__name__}: {error}") from None
        if not callable(found):
            raise SpecError(f"{self.where}: {type(found).__name__} object is not callable")
        fits(found, self)
        return found


def _module(name: str):
    """The module `name` (a dotted name, importable from the current directory too, or a path to a .py file)."""
    try:
        if name.endswith(".py"):
            path = Path(name)
            if not path.is_file():
                raise SpecError(f"{name}: no such file")
            spec = importlib.util.spec_from_file_location(f"xentcompat_own_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            return module
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        return importlib.import_module(name)
    except SpecError:
        raise
    except Exception as error:  # any failure of the user's module to import
        raise SpecError(f"cannot import {name}: {type(error).__name__}: {error}") from None


def fits(fn, spec: OwnLoss) -> None:
    """SpecError when `fn` cannot be called as fn(logits, targets, **claimed options)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: the first call will tell
        return
    options = {name: None for name in spec.options}
    try:
        signature.bind(object(), object(), **options)
    except TypeError as error:
        claimed = f" and keyword arguments {', '.join(spec.options)}" if spec.options else ""
        raise SpecError(f"{spec.where}{signature} does not take (logits, targets){claimed}: {error}") from None
