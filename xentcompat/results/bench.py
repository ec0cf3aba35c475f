"""bench.json: what `xentcompat bench` writes and `xentcompat merge` accepts beside the shards.

    {"kind": "bench", "schema_version": 1,
     "config": {"shapes": ["NxV", ...], "dtypes", "modes", "device", "repeats", "memory_limit_bytes"},
     "machines": [{"machine", "cpu", "kernel_switches", "memory_bytes"}],
     "bandwidth": [{"machine", "device", "bytes_per_second", "seconds": [...], "bytes_moved", "method"}],
     "environments": [{"target", "python", "platform", "frameworks", "threads", "machine", ...}],
     "targets": [{"name", "skipped": reason | null, "failed": reason | null, "devices_skipped", "wall_seconds"}],
     "measurements": [{"target", "framework", "backend", "framework_version", "api", "expression", "targets",
                       "mode", "device", "dtype", "rows", "classes", "machine", "bytes_to_move",
                       "seconds": [one per repeat], "median_seconds", "min_seconds", "max_seconds", "q1_seconds",
                       "q3_seconds", "first_call_seconds", "compile_seconds" (compiled modes), "peak_bytes",
                       "peak_method", "baseline_rss_bytes", "rss_before_bytes",
                       "error": null | {"type", "message"}}],
     "wall_seconds"}

A measurement with an error has no times (the API could not run that shape, or has no timing path). A file that
does not hold to this is refused with one line naming the file, the measurement and the field.
"""

from __future__ import annotations

import json
from pathlib import Path

from xentcompat.results.documents import ResultsError, document_kind, read_json_file, write_json_atomic
from xentcompat.results.shape import ANY, COUNT, CPU, ENVIRONMENT, NUMBER, ByKey, MapOf, Maybe, Object, problem

KIND = "bench"
SCHEMA_VERSION = 1
MEASUREMENT_KEY = ("machine", "device", "target", "api", "mode", "dtype", "rows", "classes")
_STRINGS = ("target", "framework", "api", "targets", "mode", "device", "dtype", "machine")
_INTEGERS = ("rows", "classes", "bytes_to_move")
_TIMES = ("median_seconds", "min_seconds", "max_seconds", "q1_seconds", "q3_seconds", "first_call_seconds")


# what the report reads besides each measurement's times (checked by _measurement_problem)
CONFIG = Object({}, optional={"memory_limit_bytes": Maybe(COUNT), "repeats": COUNT})
SHAPE = Object({"config": ByKey((("merged", Object({"merged": [CONFIG]})),), CONFIG),
                "machines": [Object({"machine": str}, optional={"cpu": CPU, "memory_bytes": COUNT,
                                                                "kernel_switches": MapOf(ANY)})],
                "environments": [ENVIRONMENT],
                "targets": [Object({"name": str}, optional={"skipped": Maybe(str), "failed": Maybe(str),
                                                            "devices_skipped": [str], "wall_seconds": NUMBER})],
                "measurements": [Object({}, optional={"baseline_rss_bytes": Maybe(COUNT),
                                                      "rss_before_bytes": Maybe(COUNT), "expression": str,
                                                      "backend": Maybe(str), "framework_version": str,
                                                      "peak_method": Maybe(str)})]},
               optional={"wall_seconds": NUMBER})


class BenchError(ResultsError):
    """A bench.json that cannot be read; the message is one line naming the file and the problem."""


def bench_document(config: dict, machines: list[dict], bandwidth: list[dict], environments: list[dict],
                   targets: list[dict], measurements: list[dict], wall_seconds: float) -> dict:
    return {"kind": KIND, "schema_version": SCHEMA_VERSION, "config": config, "machines": machines,
            "bandwidth": bandwidth, "environments": environments, "targets": targets,
            "measurements": measurements, "wall_seconds": wall_seconds}


def write_bench(path: Path, document: dict) -> None:
    write_json_atomic(path, document)


def looks_like_bench(path: Path) -> bool:
    """Whether `path` holds a JSON object marked `"kind": "bench"`."""
    return document_kind(path) == KIND


def read_bench(path: Path) -> dict:
    return check_bench(read_json_file(path, "bench", BenchError), str(path))


def check_bench(document, where: str) -> dict:
    """`document` checked against the schema; BenchError naming `where`, the measurement and the field."""
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise BenchError(f"{where}: not a bench document (no \"kind\": \"bench\")")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise BenchError(f"{where}: bench schema version {document.get('schema_version')!r}, this suite reads "
                         f"{SCHEMA_VERSION}: re-run `xentcompat bench`")
    if not isinstance(document.get("bandwidth"), list):
        raise BenchError(f"{where}: field 'bandwidth': expected a list")
    found = problem(document, SHAPE)
    if found:
        raise BenchError(f"{where}: {found}")
    for index, entry in enumerate(document["bandwidth"]):
        wrong = _bandwidth_problem(entry)
        if wrong:
            raise BenchError(f"{where}: bandwidth #{index}: {wrong}")
    for index, entry in enumerate(document["measurements"]):
        wrong = _measurement_problem(entry)
        if wrong:
            raise BenchError(f"{where}: measurement #{index}: {wrong}")
    return document


def _bandwidth_problem(entry) -> str | None:
    if not isinstance(entry, dict):
        return "expected an object"
    for name in ("machine", "device"):
        if not isinstance(entry.get(name), str):
            return f"field {name!r}: expected a string, got {entry.get(name)!r}"
    if not _is_number(entry.get("bytes_per_second")) or entry["bytes_per_second"] <= 0:
        return f"field 'bytes_per_second': expected a positive number, got {entry.get('bytes_per_second')!r}"
    return None


def _measurement_problem(entry) -> str | None:
    if not isinstance(entry, dict):
        return "expected an object"
    for name in _STRINGS:
        if not isinstance(entry.get(name), str):
            return f"field {name!r}: expected a string, got {entry.get(name)!r}"
    for name in _INTEGERS:
        if not _is_int(entry.get(name)) or entry[name] < 1:
            return f"field {name!r}: expected a positive integer, got {entry.get(name)!r}"
    error = entry.get("error")
    if error is not None:
        ok = isinstance(error, dict) and all(isinstance(error.get(k), str) for k in ("type", "message"))
        return None if ok else "field 'error': expected null or an object with 'type' and 'message'"
    return _times_problem(entry)


def _times_problem(entry: dict) -> str | None:
    seconds = entry.get("seconds")
    if not isinstance(seconds, list) or not seconds or not all(_is_number(s) and s >= 0 for s in seconds):
        return f"field 'seconds': expected a non-empty list of times, got {seconds!r}"
    for name in _TIMES:
        if not _is_number(entry.get(name)) or entry[name] < 0:
            return f"field {name!r}: expected a time in seconds, got {entry.get(name)!r}"
    if entry.get("compile_seconds") is not None and not _is_number(entry["compile_seconds"]):
        return f"field 'compile_seconds': expected null or a time, got {entry['compile_seconds']!r}"
    if entry.get("peak_bytes") is not None and not _is_int(entry["peak_bytes"]):
        return f"field 'peak_bytes': expected null or a number of bytes, got {entry['peak_bytes']!r}"
    return None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def measurement_key(entry: dict) -> tuple:
    return tuple(str(entry.get(name)) for name in MEASUREMENT_KEY)


def merge_bench(documents: list[dict]) -> dict:
    """Several bench documents (one per machine, device or target set) as one: each measurement once (a measured one
    before one that failed, else the first in a canonical order, so the result does not depend on the order of the
    files), each machine's and device's
    bandwidth once (the highest measured)."""
    if len(documents) == 1:
        return documents[0]
    measurements = _first_per_key(documents, "measurements", measurement_key, failed_last=True)
    bandwidth = _fastest_bandwidth(documents)
    configs = _distinct(d["config"] for d in documents)
    config = configs[0] if len(configs) == 1 else {"merged": configs}
    return bench_document(config, _distinct(e for d in documents for e in d["machines"]), bandwidth,
                          _distinct(e for d in documents for e in d["environments"]),
                          _distinct(t for d in documents for t in d["targets"]), measurements,
                          sum(d.get("wall_seconds") or 0 for d in documents))


def _fastest_bandwidth(documents: list[dict]) -> list[dict]:
    """Per machine and device, the highest bandwidth measured: a copy slowed by other work on the machine
    understates it, and the floor is a bound no API can beat, so it takes the machine's best."""
    entries = sorted((e for d in documents for e in d["bandwidth"]),
                     key=lambda e: (e["machine"], e["device"], -e["bytes_per_second"], _text(e)))
    place = lambda entry: (entry["machine"], entry["device"])  # noqa: E731
    return [e for index, e in enumerate(entries) if index == 0 or place(entries[index - 1]) != place(e)]


def _first_per_key(documents: list[dict], field: str, key, failed_last: bool = False) -> list[dict]:
    """One entry per key: the first in a canonical order; with `failed_last`, one that was measured before one
    that failed (a re-run with more memory shows the API can hold the shape)."""
    def order(entry):
        return (key(entry), failed_last and entry.get("error") is not None, _text(entry))

    entries = sorted((e for d in documents for e in d[field]), key=order)
    return [e for index, e in enumerate(entries) if index == 0 or key(entries[index - 1]) != key(e)]


def _text(value) -> str:
    return json.dumps(value, sort_keys=True)


def _distinct(items) -> list:
    seen, kept = set(), []
    for item in items:
        if _text(item) not in seen:
            seen.add(_text(item))
            kept.append(item)
    return kept
