"""results.json: the record schema, strict-JSON encoding of non-finite numbers, atomic writes, checked reads."""

from __future__ import annotations

import gzip
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from xentcompat import machine
from xentcompat.results import digests, shape
from xentcompat.results.nonfinite import NONFINITE, decode_number, encode  # noqa: F401 (read from here too)
from xentcompat.results.record import Record

SCHEMA_VERSION = 4


class ResultsError(ValueError):
    """A results file that cannot be read; the message is one line naming the file and the problem."""


def environment(frameworks: dict[str, str], devices: dict[str, str]) -> dict:
    """The environment a shard ran in: Python, platform, frameworks, devices, and the machine (CPU, kernel
    switches, and their id, which the shard's records carry)."""
    return {"python": sys.version.split()[0], "platform": platform.platform(), "frameworks": frameworks,
            "devices": devices, **machine.current()}


def results_document(records: list[dict], environments: list[dict], **extra) -> dict:
    return {"schema_version": SCHEMA_VERSION, "environments": environments, **extra, "records": records}


def write_json_atomic(path: Path, document: dict) -> None:
    """Write `document` as strict JSON; an interrupted write leaves any earlier file at `path` untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(encode(document), indent=1, allow_nan=False, sort_keys=False)
    write_text_atomic(path, text + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`: all or nothing.

    The file gets the permissions a plain write would (0666 less the umask), not mkstemp's private 0600.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(handle, 0o666 & ~_umask())
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def document_kind(path: Path) -> str | None:
    """The `"kind"` a JSON object file is marked with (None when it is not one, or cannot be read)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return document.get("kind") if isinstance(document, dict) else None


def read_json_file(path: Path, noun: str, error: type[Exception]):
    """The JSON in `path`; `error` with one line ("no such <noun> file", "corrupt <noun> file (...)") otherwise."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such {noun} file") from None
    except (OSError, ValueError, RecursionError) as problem:
        raise error(f"{path}: corrupt {noun} file ({str(problem).splitlines()[0]})") from None


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _read_text(path: Path) -> str:
    """The file's text; a `.gz` file decompressed (stored documents are kept compressed)."""
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as stream:
            return stream.read()
    return path.read_text(encoding="utf-8")


def read_results(path: Path) -> dict:
    """A results document, checked for schema version and record fields; ResultsError otherwise."""
    path = Path(path)
    try:
        document = json.loads(_read_text(path))
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file") from None
    except (IsADirectoryError, PermissionError) as error:
        raise ResultsError(f"{path}: not a results file that can be read ({error.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, gzip.BadGzipFile, EOFError) as error:
        raise ResultsError(f"{path}: corrupt results file ({error})") from None
    except RecursionError:
        raise ResultsError(f"{path}: corrupt results file (nested too deeply)") from None
    if not isinstance(document, dict) or document.get("schema_version") != SCHEMA_VERSION:
        found = document.get("schema_version") if isinstance(document, dict) else None
        raise ResultsError(f"{path}: schema version {found!r}, this suite reads {SCHEMA_VERSION}: "
                           "re-run `xentcompat run` to measure it again")
    if not isinstance(document.get("records", []), list):
        raise ResultsError(f"{path}: field 'records': expected a list")
    found = shape.problem(document, shape.RESULTS)
    if found:
        raise ResultsError(f"{path}: {found}")
    for index, record in enumerate(document.get("records", [])):
        problem = _record_problem(record)
        if problem:
            raise ResultsError(f"{path}: record #{index}{problem}")
    changed = digests.tampering(document)
    if changed:
        raise ResultsError(f"{path}: {changed}")
    return document


def _record_problem(record) -> str | None:
    """What is wrong with one record (None when `Record.from_json` takes it)."""
    try:
        Record.from_json(record)
    except (ValueError, TypeError) as error:
        text = str(error)
        return f" {text}" if text.startswith("lacks") else f": {text}"
    return None
