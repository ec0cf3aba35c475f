"""The shape of what a document holds besides its records, as data, and one check that names the first field that
does not fit ("field 'environments[2].cpu.flags[0]': expected a string, got 3").

A shape is a Python type (str, bool), one of the names below, a one-element list (a list of that shape), or an
`Object` (named fields, each required unless `Object.optional` names it; fields it does not name are let through, so
a newer writer's extra field is read). `render`, `merge` and `rejudge` check a whole document before they write
anything, so a file that does not fit is refused in one line and never half-rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NONFINITE_TEXTS = ("nan", "inf", "-inf")


@dataclass(frozen=True)
class Object:
    fields: dict
    optional: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MapOf:
    """An object whose keys are names (frameworks, regimes, cause ids), each value of one shape."""
    value: object


@dataclass(frozen=True)
class Maybe:
    """The shape, or null."""
    value: object


@dataclass(frozen=True)
class OneOf:
    """Any of these shapes."""
    shapes: tuple


@dataclass(frozen=True)
class ByKey:
    """An object whose shape its keys choose, as its reader does: the shape of the first key present, else `other`."""
    shapes: tuple  # (key, shape) pairs
    other: object


COUNT = "a count"          # an integer >= 0 (not a bool)
NUMBER = "a number"        # an int or a float, or "nan"/"inf"/"-inf" (strict JSON's non-finite numbers)
POSITIVE = "a positive finite number"
ANY = "anything"

CPU = Object({"arch": str, "model": str, "flags": [str]})
ENVIRONMENT = Object({"python": str, "platform": str, "frameworks": MapOf(str)},
                     optional={"devices": MapOf(str), "cpu": CPU, "machine": str, "target": str,
                               "kernel_switches": MapOf(ANY), "threads": MapOf(COUNT)})
ERROR = Object({"type": str, "message": str})
# one kernel path of a record's expectation (`expected.varies`): what it gives and where it is taken
KERNEL_VARIANT = Object({"path": Maybe(str), "when": str, "loss": str, "grad": str})
# a mean or a sum judged row by row (run/rows.py): the rows' outcome, how many, the worst row and its numbers
ROWS_CHECK = Object({"outcome": str, "rows": COUNT, "row": Maybe(COUNT), "value": Maybe(NUMBER),
                     "reference": Maybe(NUMBER), "error_units": Maybe(NUMBER)})


def problem(value, shape, where: str = "") -> str | None:
    """What in `value` does not fit `shape` ("field 'a.b[2]': expected ..., got ..."), or None."""
    if isinstance(shape, Object):
        return _object_problem(value, shape, where)
    if isinstance(shape, MapOf):
        if not isinstance(value, dict):
            return _expected(where, "an object", value)
        return _first(problem(item, shape.value, f"{where}.{key}") for key, item in value.items())
    if isinstance(shape, list):
        if not isinstance(value, list):
            return _expected(where, "a list", value)
        return _first(problem(item, shape[0], f"{where}[{index}]") for index, item in enumerate(value))
    if isinstance(shape, Maybe):
        return None if value is None else problem(value, shape.value, where)
    if isinstance(shape, ByKey):
        chosen = next((each for key, each in shape.shapes if isinstance(value, dict) and key in value), shape.other)
        return problem(value, chosen, where)
    if isinstance(shape, OneOf):
        found = [problem(value, each, where) for each in shape.shapes]
        return None if None in found else found[0]
    return None if _fits(value, shape) else _expected(where, _name(shape), value)


def _object_problem(value, shape: Object, where: str) -> str | None:
    if not isinstance(value, dict):
        return _expected(where, "an object", value)
    lacking = next((name for name in shape.fields if name not in value), None)
    if lacking is not None:
        return f"field '{_join(where, lacking)}': missing"
    named = {**shape.fields, **{k: v for k, v in shape.optional.items() if k in value}}
    return _first(problem(value[name], kind, _join(where, name)) for name, kind in named.items())


def _fits(value, shape) -> bool:
    if shape is ANY:
        return True
    if shape is COUNT:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if shape is NUMBER:
        return (isinstance(value, (int, float)) and not isinstance(value, bool)) or value in NONFINITE_TEXTS
    if shape is POSITIVE:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < float("inf")
    if shape is bool:
        return isinstance(value, bool)
    return isinstance(value, shape)


def _name(shape) -> str:
    return {str: "a string", bool: "true or false"}.get(shape, shape if isinstance(shape, str) else repr(shape))


def _expected(where: str, wanted: str, value) -> str:
    shown = repr(value)
    return f"field '{where.lstrip('.')}': expected {wanted}, got {shown[:60]}{'...' if len(shown) > 60 else ''}"


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _first(problems) -> str | None:
    return next((found for found in problems if found), None)


# results.json besides its records (each record is checked by Record.from_json) and its training and bench documents
# (checked by results.training and results.bench)
TARGET = Object({"name": str}, optional={"skipped": Maybe(str), "failed": Maybe(str), "first_error": str})
NOT_RUN = ByKey((("cell", Object({"cell": str, "reason": str})),
                 ("api", Object({"api": str, "target": str, "release": str, "reason": str})),
                 ("device", Object({"device": str, "target": str, "reason": str})),
                 ("case", Object({"case": str, "dtype": str, "reason": str}))),
                Object({"target": str, "reason": str}))
CELL_KEY = ("framework", "framework_version", "backend", "api", "case", "dtype", "device", "mode", "machine")
CONFLICT = Object({"cell": Object({name: str for name in CELL_KEY}), "kept": str, "other": str})
CAUSE = Object({"kind": str, "title": str, "explanation": str, "upstream": [str]}, optional={"no_upstream": Maybe(str)})
CHECKED = Object({"api": str, "callable": str, "framework": str, "targets": str, "options": [str]})
RESULTS = Object({}, optional={
    "environments": [ENVIRONMENT], "targets": [TARGET], "not_run": [NOT_RUN],
    "set_aside": [Object({"cell": str, "reason": str})], "duplicates_dropped": COUNT, "conflicts": [CONFLICT],
    "causes": MapOf(CAUSE), "check": Maybe(CHECKED), "digests": [str]})
