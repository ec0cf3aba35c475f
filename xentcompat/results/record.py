"""The record of one cell (api × case × dtype × device × mode): one typed definition, and the outcome vocabulary.

The harness builds a `Record` and writes `Record.to_json()`; `Record.from_json` reads one back, checking every field
and its type (a record written before records kept their `tags` gets its catalogue case's), so a results file that
does not hold records (a hand-edited one, another tool's JSON) is refused with one line naming the record and the
field. Non-finite numbers stay the strings "nan", "inf", "-inf" on disk
(`xentcompat.results.documents`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from functools import cache


class Outcome(StrEnum):
    """What a loss or a gradient came out as, against the reference (see DESIGN.md)."""

    OK = "ok"
    INACCURATE = "inaccurate"
    NAN = "nan"
    INF = "inf"
    FINITE = "finite"
    RAISED = "raised"
    SILENT = "silent"
    CRASHED = "crashed"


OUTCOMES = tuple(outcome.value for outcome in Outcome)
TIERS = ("realistic", "stress")  # what models produce; the dtype's limits (never a row's headline)


@dataclass(frozen=True)
class Record:
    framework: str
    framework_version: str
    backend: str | None
    api: str
    case: str
    dtype: str
    device: str
    mode: str
    machine: str | None
    area: str
    tier: str  # "realistic" (what models produce) or "stress" (the dtype's limits); see reference/cases.py
    tags: list  # the facts of its input (reference/facts.py), sorted: what causes and the report select by
    options: dict
    scale: float | str | None
    invalid: str | None
    loss: dict  # outcome, value, reference, error_units (and the row details of a per-row loss)
    grad: dict  # outcome, max_error_units, nan_count, inf_count, elementwise_max_units, norm, reference_norm
    error: dict | None  # type, message
    expected: dict  # loss, grad, cause, reason, upstream, kernel_path, varies
    relations: list | None
    finding: str | None
    repro: str | None
    seconds: float

    def __post_init__(self):
        for name in ("loss", "grad"):
            Outcome(getattr(self, name)["outcome"])  # ValueError for anything else
        Outcome(self.expected["loss"]), Outcome(self.expected["grad"])

    @property
    def observed(self) -> tuple[str, str]:
        return self.loss["outcome"], self.grad["outcome"]

    @property
    def promised(self) -> tuple[str, str]:
        """The outcomes its expectation (a cause, or the good outcome) promised."""
        return self.expected["loss"], self.expected["grad"]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, value) -> Record:
        """The record `value` holds; ValueError naming the first field that is missing or of the wrong type."""
        if not isinstance(value, dict):
            raise ValueError("expected an object")
        if "tags" not in value and isinstance(value.get("case"), str):
            value = {**value, "tags": catalogue_tags(value["case"])}
        for field in fields(cls):
            if field.name not in value:
                raise ValueError(f"lacks field {field.name!r}")
        if not isinstance(value["tags"], list) or not all(isinstance(tag, str) for tag in value["tags"]):
            raise ValueError("field 'tags': expected a list of facts")
        for name, keys in (("loss", ("outcome",)), ("grad", ("outcome",)), ("expected", ("loss", "grad"))):
            if not isinstance(value[name], dict) or not all(isinstance(value[name].get(k), str) for k in keys):
                raise ValueError(f"field {name!r}: expected an object with {', '.join(keys)}")
            for key in keys:
                if value[name][key] not in OUTCOMES:
                    raise ValueError(f"field '{name}.{key}': {value[name][key]!r} is not an outcome")
        if value["tier"] not in TIERS:
            raise ValueError(f"field 'tier': {value['tier']!r} is not one of {', '.join(TIERS)}")
        if not isinstance(value["options"], dict):
            raise ValueError("field 'options': expected an object")
        return cls(**{field.name: value[field.name] for field in fields(cls)})


RECORD_FIELDS = tuple(field.name for field in fields(Record))


def catalogue_tags(case_id: str) -> list[str]:
    """The facts of a catalogue case's input: the tags of a record written before records kept them (none for a case
    the catalogue does not hold, a user's own)."""
    return list(_catalogue_facts().get(case_id, ()))


@cache
def _catalogue_facts() -> dict[str, tuple[str, ...]]:
    from xentcompat.reference.cases import CATALOGUE

    return {case.id: tuple(sorted(case.facts)) for case in CATALOGUE}
