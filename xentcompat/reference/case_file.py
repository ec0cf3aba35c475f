"""User case files (bring your own batch), validated in full before anything runs.

JSON: {"cases": [{"id", "logits": [[...]], "labels": [...] | "probs": [[...]], "dtypes"?: [...],
"options"?: {...}, "description"?}]} with "inf", "-inf", "nan" strings allowed in logits.
NPZ: arrays `logits` and `labels` (or `probs`); the case id is the file's stem.
Every problem is reported as one line naming the file, the case and the field (`CaseFileError`).
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np

from xentcompat.reference.cases import Case
from xentcompat.reference.dtypes import DTYPE_NAMES
from xentcompat.reference.npz_map import npz_arrays
from xentcompat.reference.options import Options, Problem, validate

CASE_FIELDS = {"id", "logits", "labels", "probs", "dtypes", "options", "description"}
OPTION_FIELDS = {"reduction", "weight", "ignore_index", "label_smoothing", "extra_dims"}
NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


class CaseFileError(ValueError):
    """A case file that cannot be used; the message is one line naming the case and field."""


def load_cases(path: str | Path) -> list[Case]:
    """All cases of a JSON or NPZ case file, or CaseFileError naming the first problem."""
    path = Path(path)
    if not path.is_file():
        raise CaseFileError(f"{path}: no such case file")
    if path.suffix == ".npz":
        cases = [_npz_case(path)]
        _check_unique(path, cases)  # its id is the file's name: random-moderate.npz would shadow the catalogue's
        return cases
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CaseFileError(f"{path}: not valid JSON ({error})") from None
    except RecursionError:
        raise CaseFileError(f"{path}: not a case file (nested too deeply to read)") from None
    if not isinstance(document, dict) or not isinstance(document.get("cases"), list) or not document["cases"]:
        raise CaseFileError(f'{path}: expected {{"cases": [...]}} with at least one case')
    cases = [_json_case(path, index, entry) for index, entry in enumerate(document["cases"])]
    _check_unique(path, cases)
    return cases


def _npz_case(path: Path) -> Case:
    """The one case of an .npz file, checked as arrays (never turned into Python lists). Stored (uncompressed)
    arrays stay memory-mapped, and float logits keep their dtype (every float16/32 value is exact in float64): a
    2 GiB float32 batch costs each process that loads it no memory of its own."""
    case_id = path.stem
    where = f"{path}: case {case_id!r}"
    try:
        arrays = npz_arrays(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise CaseFileError(f"{path}: not a readable .npz file ({error})") from None
    unknown = set(arrays) - {"logits", "labels", "probs"}
    if unknown:
        raise CaseFileError(f"{where}: unknown array {sorted(unknown)[0]!r} (expected logits, labels, probs)")
    logits = _array_matrix(where, "logits", arrays.get("logits"), allow_nonfinite=True)
    probs = None if "probs" not in arrays else _array_matrix(where, "probs", arrays["probs"], allow_nonfinite=False)
    labels = None if "labels" not in arrays else _array_labels(where, arrays["labels"])
    return _case(where, case_id, logits, labels, probs, Options(), DTYPE_NAMES, "")


def _array_matrix(where: str, name: str, value, allow_nonfinite: bool) -> np.ndarray:
    if value is None or value.ndim != 2 or 0 in value.shape:
        raise CaseFileError(f"{where}: array {name!r}: expected a non-empty 2-D array of numbers")
    if value.dtype.kind not in "fiu":
        raise CaseFileError(f"{where}: array {name!r}: expected numbers, got dtype {value.dtype}")
    keep = allow_nonfinite and value.dtype in (np.float16, np.float32, np.float64)
    matrix = value if keep else value.astype(np.float64)
    if not allow_nonfinite and not np.all(np.isfinite(matrix)):
        raise CaseFileError(f"{where}: array {name!r}: holds a non-finite number")
    return matrix


def _array_labels(where: str, value: np.ndarray) -> np.ndarray:
    if value.ndim != 1 or value.dtype.kind not in "iu":
        raise CaseFileError(f"{where}: array 'labels': expected a 1-D array of integers, got {value.ndim}-D "
                            f"{value.dtype}")
    if value.dtype.kind == "u" and value.size and value.max() > INT64[1]:
        raise CaseFileError(f"{where}: array 'labels': {value.max()} does not fit a 64-bit integer")
    return value.astype(np.int64, copy=False)


def _json_case(path: Path, index: int, entry) -> Case:
    where = f"{path}: case #{index}"
    if not isinstance(entry, dict):
        raise CaseFileError(f"{where}: expected an object")
    case_id = entry.get("id")
    if not isinstance(case_id, str) or not case_id.strip():
        raise CaseFileError(f"{where}: field 'id': expected a non-empty string")
    where = f"{path}: case {case_id!r}"
    unknown = set(entry) - CASE_FIELDS
    if unknown:
        raise CaseFileError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    logits = _matrix(where, "logits", entry.get("logits"), allow_nonfinite=True)
    labels = _labels(where, entry.get("labels"))
    probs = None if entry.get("probs") is None else _matrix(where, "probs", entry["probs"], allow_nonfinite=False)
    options = _options(where, entry.get("options", {}))
    dtypes = _dtypes(where, entry.get("dtypes", list(DTYPE_NAMES)))
    description = entry.get("description", "")
    if not isinstance(description, str):
        raise CaseFileError(f"{where}: field 'description': expected a string")
    return _case(where, case_id, logits, labels, probs, options, dtypes, description)


def _case(where: str, case_id: str, logits, labels, probs, options: Options, dtypes, description: str) -> Case:
    """The case, once its fields are read: a problem the reference accepts, or one whose only fault is labels
    outside [0, C), which runs as invalid input."""
    try:
        validate(Problem(logits, labels, probs, options))
    except (ValueError, TypeError) as error:
        if not _only_labels_out_of_range(logits, labels, probs, options):
            raise CaseFileError(f"{where}: {error}") from None
        # the user's own invalid batch: it runs as invalid input (a clear error is the good outcome)
        return Case(case_id, "labels", logits, labels, probs, options, dtypes, description,
                    invalid=f"your labels: {error}")
    return Case(case_id, "user", logits, labels, probs, options, dtypes, description)


def _only_labels_out_of_range(logits, labels, probs, options) -> bool:
    """Whether the problem is valid once its labels are moved into [0, C): then only the labels are invalid."""
    if labels is None or labels.shape != (logits.shape[0],):
        return False
    try:
        validate(Problem(logits, np.clip(labels, 0, logits.shape[1] - 1), probs, options))
    except (ValueError, TypeError):
        return False
    return True


def _matrix(where: str, name: str, value, allow_nonfinite: bool) -> np.ndarray:
    if not isinstance(value, list) or not value or not all(isinstance(row, list) for row in value):
        raise CaseFileError(f"{where}: field {name!r}: expected a non-empty list of rows")
    if len({len(row) for row in value}) != 1 or not value[0]:
        raise CaseFileError(f"{where}: field {name!r}: rows must be non-empty and of equal length")
    try:
        return np.array([[_number(item, allow_nonfinite) for item in row] for row in value], dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise CaseFileError(f"{where}: field {name!r}: {error}") from None


def _number(item, allow_nonfinite: bool) -> float:
    if isinstance(item, str) and allow_nonfinite and item in NONFINITE:
        return NONFINITE[item]
    if isinstance(item, bool) or not isinstance(item, (int, float)):
        allowed = ' (or "inf", "-inf", "nan")' if allow_nonfinite else ""
        raise ValueError(f"{_short(item)} is not a number{allowed}")
    try:
        number = float(item)
    except OverflowError:
        raise ValueError(f"{_short(item)} is beyond float64's range") from None
    if isinstance(item, float) and not math.isfinite(item):  # JSON's NaN / Infinity literals, or 1e400
        raise ValueError(f"{_short(item)} is not a finite number: write non-finite logits as \"inf\", \"-inf\" "
                         "or \"nan\" (strings), and keep finite ones within float64's range")
    return number


def _short(item) -> str:
    text = repr(item)
    return text if len(text) <= 40 else text[:37] + "..."


INT64 = (-2**63, 2**63 - 1)


def _labels(where: str, value) -> np.ndarray | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise CaseFileError(f"{where}: field 'labels': expected a list of integers")
    outside = [v for v in value if not INT64[0] <= v <= INT64[1]]
    if outside:
        raise CaseFileError(f"{where}: field 'labels': {_short(outside[0])} does not fit a 64-bit integer")
    return np.asarray(value, dtype=np.int64)


def _options(where: str, value) -> Options:
    if not isinstance(value, dict):
        raise CaseFileError(f"{where}: field 'options': expected an object")
    if "mean_over" in value:  # would be overwritten by each API's own convention: refused rather than ignored
        raise CaseFileError(f"{where}: field 'options.mean_over': each API's own convention sets what a mean divides "
                            "by (the target weights, or the counted rows), not the case: remove it")
    unknown = set(value) - OPTION_FIELDS
    if unknown:
        raise CaseFileError(f"{where}: field 'options': unknown option {sorted(unknown)[0]!r}")
    for name, item in value.items():
        problem = OPTION_TYPES[name](item)
        if problem:
            raise CaseFileError(f"{where}: field 'options.{name}': {problem}, got {_short(item)}")
    value = {key: tuple(item) if key in ("weight", "extra_dims") else item for key, item in value.items()}
    return Options(**value)


def _is_int(item) -> bool:
    return isinstance(item, int) and not isinstance(item, bool)


def _is_real(item) -> bool:
    return (_is_int(item) or isinstance(item, float)) and math.isfinite(float(item))


def _one_of(*choices):
    return lambda item: None if isinstance(item, str) and item in choices else f"expected one of {', '.join(choices)}"


OPTION_TYPES = {
    "reduction": _one_of("none", "sum", "mean"),
    "ignore_index": lambda item: None if item is None or (_is_int(item) and INT64[0] <= item <= INT64[1])
    else "expected an integer (or null)",
    "label_smoothing": lambda item: None if _is_real(item) else "expected a number in [0, 1]",
    "weight": lambda item: None if item is None or (isinstance(item, list) and all(_is_real(v) for v in item))
    else "expected a list of numbers, one per class (or null)",
    "extra_dims": lambda item: None if isinstance(item, list) and all(_is_int(v) and v >= 1 for v in item)
    else "expected a list of positive integers",
}


def _dtypes(where: str, value) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or any(v not in DTYPE_NAMES for v in value):
        raise CaseFileError(f"{where}: field 'dtypes': expected a non-empty list of {', '.join(DTYPE_NAMES)}")
    return tuple(value)


def _check_unique(path: Path, cases: list[Case]) -> None:
    """Ids are unique in the file and differ from the catalogue's: a record is found by its case id."""
    from xentcompat.reference.cases import CATALOGUE

    catalogue = {case.id for case in CATALOGUE}
    seen = set()
    for case in cases:
        if case.id in catalogue:
            raise CaseFileError(f"{path}: case {case.id!r}: field 'id': the id of a catalogue case: choose another "
                                "(the two sets of records would be indistinguishable)")
        if case.id in seen:
            raise CaseFileError(f"{path}: case {case.id!r}: field 'id': duplicate id")
        seen.add(case.id)
