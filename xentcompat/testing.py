"""Test your own cross-entropy from your own tests: the catalogue as test parameters, one call per case.

Stable API (kept across releases): `cases`, `CaseInDtype.check`, `CheckFailed`, `assert_cross_entropy_close`, and
the pytest plugin's `xentcompat_case` fixture with its `xentcompat` marker (`xentcompat.pytest_plugin`).

What a check guarantees: the callable's loss and gradient on the case, in the dtype, are judged against a float64
reference (itself checked against mpmath) with the error model calibrated for that dtype, exactly as the suite
judges every framework's API; a deviation fails with the known cause whose outcome it shares (when one does), both
values and a copy-paste repro, unless it is declared expected (`expect=`: a TOML file of `[[expected]]` tables,
or `Declared` objects).

    from xentcompat.testing import cases

    @pytest.mark.parametrize("case", cases(framework="torch", options=["reduction"]), ids=str)
    def test_my_loss(case):
        case.check(my_cross_entropy)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xentcompat.expectations import good
from xentcompat.own import adapter
from xentcompat.own.check import outside_claims
from xentcompat.own.declared import Declared, read
from xentcompat.own.resemblance import resembling
from xentcompat.own.spec import OwnLoss
from xentcompat.reference.case import Case
from xentcompat.reference.cases import CATALOGUE
from xentcompat.reference.dtypes import DTYPE_NAMES
from xentcompat.reference.options import Options
from xentcompat.own.summary import cell_words
from xentcompat.run.harness import Cell, cells, check

__all__ = ["CaseInDtype", "CheckFailed", "Declared", "assert_cross_entropy_close", "cases"]


class CheckFailed(AssertionError):
    """A callable deviated from the reference on a case, and no declaration expects it."""


@dataclass(frozen=True)
class CaseInDtype:
    """One catalogue case in one dtype, for one framework and the options a callable claims."""

    case: Case
    dtype: str
    framework: str
    targets: str = "labels"
    options: tuple[str, ...] = ()
    mode: str = "eager"
    device: str = "cpu"
    declared: tuple[Declared, ...] = ()

    def __str__(self) -> str:
        return f"{self.case.id}-{self.dtype}" + ("" if self.mode == "eager" else f"-{self.mode}")

    def check(self, fn) -> dict:
        """Run `fn` on this case; its record (loss, gradient, verdicts, cause) when it agrees with the reference
        or deviates as declared; CheckFailed with the cause, both values and a repro otherwise."""
        spec = OwnLoss(_where(fn), self.framework, self.targets, self.options)
        api = adapter.declare(spec, fn)
        checked = check(Cell(api, self.case, self.dtype, self.device, self.mode), [], _isolation(spec, fn),
                        explain=resembling, isolate_valid=True)
        record = checked.record
        if checked.observed == good(self.case.invalid is not None, api.no_gradient is None):
            return record
        declared = next((item for item in self.declared if item.explains(record)), None)
        if declared is not None:
            return record
        raise CheckFailed(_message(checked))


def cases(framework: str, targets: str = "labels", options=(), dtypes=DTYPE_NAMES, modes=("eager",),
          device: str = "cpu", expect: str | Path | tuple[Declared, ...] = ()) -> list[CaseInDtype]:
    """Every catalogue case in every dtype the claims cover (`targets`, `options`), as test parameters."""
    declared = read(Path(expect)) if isinstance(expect, (str, Path)) else tuple(expect)
    spec = OwnLoss("claims:only", framework, targets, tuple(options))
    probe = adapter.claims_only(spec)
    return [CaseInDtype(cell.case, cell.dtype, framework, targets, tuple(options), cell.mode, device, declared)
            for cell in cells([probe], CATALOGUE, dtypes, (device,), modes) if not outside_claims(probe, cell.case)]


def assert_cross_entropy_close(fn, logits, labels=None, *, probs=None, framework: str, dtype: str | None = None,
                               **options) -> dict:
    """Check `fn` on one batch of your own (float logits; class labels or probability targets), in `dtype` (default:
    the logits' own); the keyword options are passed to `fn` and define the reference (reduction, weight,
    ignore_index, label_smoothing). Its record; CheckFailed with the cause, both values and a repro otherwise."""
    logits = np.asarray(logits)
    dtype = dtype or _dtype_name(logits.dtype)
    weight = options.get("weight")
    given = Options(reduction=options.get("reduction", "mean"),
                    weight=None if weight is None else tuple(np.asarray(weight, np.float64).tolist()),
                    ignore_index=options.get("ignore_index"), label_smoothing=options.get("label_smoothing", 0.0))
    case = Case("your-batch", "user", np.asarray(logits, np.float64),
                None if labels is None else np.asarray(labels), None if probs is None else np.asarray(probs, np.float64),
                given, dtypes=(dtype,), tier="realistic")
    targets = "labels" if probs is None else "probs"
    return CaseInDtype(case, dtype, framework, targets, tuple(options)).check(fn)


def _where(fn) -> str:
    module = getattr(fn, "__module__", None) or "__main__"
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}:{name}"


def _isolation(spec: OwnLoss, fn):
    """A child process for the calls when it can import `fn` by its name (a crash is then a `crashed` cell, not the
    end of the test session); else None (it runs in this process)."""
    try:
        return adapter.setup(spec) if spec.load() is fn else None
    except Exception:  # a local function, a lambda, a module not importable by name: no child
        return None


def _dtype_name(dtype) -> str:
    name = np.dtype(dtype).name
    if name not in DTYPE_NAMES:
        raise ValueError(f"logits of dtype {name}: give dtype= one of {', '.join(DTYPE_NAMES)}")
    return name


def _message(checked) -> str:
    record = checked.record
    expected = record.get("expected") or {}
    head = (f"deviates as XC-{expected['cause']}: {expected['reason']}" if expected.get("cause")
            else "deviates from the float64 reference, and no known cause gives this outcome here")
    repro = "\n".join("    " + line for line in checked.repro.splitlines())
    return f"{head}\n  {cell_words(record)}\n  reproduce with:\n{repro}"
