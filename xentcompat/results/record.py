"""The record of one cell (api × case × dtype × device × mode): one typed definition, and the outcome vocabulary.

The harness builds a `Record` and writes `Record.to_json()`; `Record.from_json` reads one back, checking every field
and its type (a record written before records kept their `tags` gets its catalogue case's), so a results file that
does not hold records (a hand-edited one, another tool's JSON) is refused with one line naming the record and the
field. Non-finite numbers stay the strings "nan", "inf", "-inf" on disk
(`xentcompat.results.documents`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from functools import cache

from xentcompat.results.shape import COUNT, KERNEL_VARIANT, NUMBER, ROWS_CHECK, Maybe, problem


class Outcome(StrEnum):
    """What a loss or a gradient came out as, against the reference (see the README, "Verdicts")."""

    OK = "ok"
    INACCURATE = "inaccurate"
    NAN = "nan"
    INF = "inf"
    FINITE = "finite"
    RAISED = "raised"
    SILENT = "silent"
    CRASHED = "crashed"
    ABSENT = "absent"  # a gradient the API does not offer (an inference runtime, a metric): nothing to judge


OUTCOMES = tuple(outcome.value for outcome in Outcome)
TIERS = ("realistic", "stress")  # what models produce; the dtype's limits (never a row's headline)


def good_outcomes(invalid: bool, gradient: bool = True) -> tuple[str, str]:
    """A cell's outcomes when nothing deviates: ok/ok, or raised/raised for invalid input (a clear error); the
    gradient `absent` for an API that offers none."""
    loss = "raised" if invalid else "ok"
    return loss, (loss if gradient else "absent")


def stored_good_outcomes(record: dict) -> tuple[str, str]:
    """`good_outcomes` of a stored record (its gradient `absent` where the API offers none)."""
    return good_outcomes(bool(record.get("invalid")), record["grad"]["outcome"] != "absent")


# the JSON a field of each annotated type holds (non-finite numbers are strings on disk; Outcome, parts and
# relations are checked by their own types)
_ON_DISK = {"str": str, "str | None": Maybe(str), "float": NUMBER, "float | None": Maybe(NUMBER),
            "float | str | None": Maybe(NUMBER), "int": COUNT, "bool | None": Maybe(bool),
            "list[dict] | None": Maybe([KERNEL_VARIANT]), "list[list[str]] | None": Maybe([[str]]),
            "dict | None": Maybe(ROWS_CHECK)}


def _fields_problem(cls, value: dict, name: str = "") -> str | None:
    """The first field of `value` whose JSON does not fit its annotation in `cls`, in words, or None."""
    for field in fields(cls):
        shape = _ON_DISK.get(field.type)
        found = problem(value[field.name], shape, f"{name}.{field.name}") if shape and field.name in value else None
        if found:
            return found
    return None


class _Part:
    """A typed part of a record: its outcomes are `Outcome`s, and it reads and writes itself as the JSON object it
    is on disk (`OMITTED_WHEN_NONE` keys are left out while they are None, as records written before had them)."""

    OUTCOME_FIELDS: tuple[str, ...] = ("outcome",)
    OMITTED_WHEN_NONE: tuple[str, ...] = ()

    def __post_init__(self):
        for name in self.OUTCOME_FIELDS:
            object.__setattr__(self, name, Outcome(getattr(self, name)))  # ValueError for anything else

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if not (f.name in self.OMITTED_WHEN_NONE and getattr(self, f.name) is None)}

    @classmethod
    def from_json(cls, value, name: str):
        """The part `value` holds; ValueError naming the field `name` and what is wrong with it."""
        known = {f.name for f in fields(cls)}
        if not isinstance(value, dict):
            raise ValueError(f"field {name!r}: expected an object")
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"field {name!r}: unknown key {unknown[0]!r}")
        found = _fields_problem(cls, value, name)
        if found:
            raise ValueError(found)
        for key in cls.OUTCOME_FIELDS:
            if value.get(key) not in OUTCOMES:
                raise ValueError(f"field '{name}.{key}': {value.get(key)!r} is not an outcome")
        return cls(**value)


@dataclass(frozen=True)
class LossVerdict(_Part):
    """The loss against the reference: its value, the reference's, and the error in units of the dtype's model.
    `rows`: a mean or a sum judged row by row as well (`run/rows.py`), where it was: its own judgement."""

    OMITTED_WHEN_NONE = ("rows",)

    outcome: Outcome
    value: float | str | None = None  # non-finite numbers are the strings "nan", "inf", "-inf" on disk
    reference: float | str | None = None
    error_units: float | None = None
    rows: dict | None = None  # outcome, rows, row (the worst), value, reference, error_units


@dataclass(frozen=True)
class GradVerdict(_Part):
    """`max_error_units` is the verdict's: each row's largest error against the row's largest unit.
    `elementwise_max_units` is a detail: the largest error of an element against its own unit."""

    outcome: Outcome
    max_error_units: float | None = None
    nan_count: int = 0
    inf_count: int = 0
    elementwise_max_units: float | None = None
    norm: float | None = None  # the L2 norm of the API's gradient, and of the reference's: "gradient 0" reads here
    reference_norm: float | None = None


@dataclass(frozen=True)
class Expectation(_Part):
    """What the cell was expected to give: a cause's outcomes, or the good outcome (`cause` None)."""

    OUTCOME_FIELDS = ("loss", "grad")
    OMITTED_WHEN_NONE = ("also",)

    loss: Outcome
    grad: Outcome
    cause: str | None = None
    reason: str | None = None
    upstream: str | None = None
    kernel_path: str | None = None
    varies: list[dict] | None = None  # the kernel paths whose outcomes differ, where the cause names them
    also: list[list[str]] | None = None  # other [loss, grad] pairs the cause gives from run to run (an unchecked read)

    def allows(self, observed: tuple[str, str]) -> bool:
        """Whether `observed` is what was promised: the outcomes, or one of `also`."""
        return tuple(observed) == (self.loss, self.grad) or list(observed) in (self.also or [])


@dataclass(frozen=True)
class Failure(_Part):
    """The exception a call raised (its type and first line), or how the process died; for a device fault, that it
    was one and whether the device context still worked afterwards."""

    OUTCOME_FIELDS = ()

    type: str
    message: str
    device_fault: bool | None = None
    context_usable: bool | None = None  # None under a device fault: not checked

    def to_json(self) -> dict:
        value = super().to_json()
        return value if self.device_fault is not None else {"type": self.type, "message": self.message}


@dataclass(frozen=True)
class Relation(_Part):
    """A metamorphic relation checked on the cell (run/metamorphic.py)."""

    OUTCOME_FIELDS = ()
    OMITTED_WHEN_NONE = ("skipped", "broke", "detail")

    relation: str
    holds: bool | None  # None: not checked (see `skipped`)
    loss: float | str | None  # the original loss (the worst row for reduction none)
    transformed: float | str | None  # the loss the relation gives back from the transformed input(s)
    error_units: float | None  # the largest difference, loss or gradient, in units
    skipped: str | None = None  # why it was not checked
    broke: str | None = None  # what broke: "loss", "gradient", "loss and gradient" or "no result"
    detail: str | None = None  # the worst element that broke it, with both values


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
    loss: LossVerdict
    grad: GradVerdict
    error: Failure | None
    expected: Expectation
    relations: tuple[Relation, ...] | None
    finding: str | None
    repro: str | None
    seconds: float

    @property
    def observed(self) -> tuple[str, str]:
        return self.loss.outcome, self.grad.outcome

    @property
    def has_gradient(self) -> bool:
        """Whether the API offers a gradient (one that does not gives `absent` whatever its input)."""
        return self.grad.outcome != "absent"

    @property
    def good(self) -> bool:
        """Whether the outcomes are the good ones for its input (`good_outcomes`)."""
        return self.observed == good_outcomes(self.invalid is not None, self.has_gradient)

    @property
    def promised(self) -> tuple[str, str]:
        """The outcomes its expectation (a cause, or the good outcome) promised."""
        return self.expected.loss, self.expected.grad

    @property
    def as_promised(self) -> bool:
        """Whether the outcomes are what its expectation promised (one of the pairs it allows)."""
        return self.expected.allows(self.observed)

    def to_json(self) -> dict:
        value = {field.name: getattr(self, field.name) for field in fields(self)}
        for name in PARTS:
            if value[name] is not None:
                value[name] = value[name].to_json()
        if self.relations is not None:
            value["relations"] = [relation.to_json() for relation in self.relations]
        return value

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
        if value["tier"] not in TIERS:
            raise ValueError(f"field 'tier': {value['tier']!r} is not one of {', '.join(TIERS)}")
        if not isinstance(value["options"], dict):
            raise ValueError("field 'options': expected an object")
        found = _fields_problem(cls, value)
        if found:
            raise ValueError(found)
        typed = {field.name: value[field.name] for field in fields(cls)}
        for name, part in PARTS.items():
            if typed[name] is not None or name != "error":
                typed[name] = part.from_json(typed[name], name)
        typed["relations"] = _relations(typed["relations"])
        return cls(**typed)


PARTS = {"loss": LossVerdict, "grad": GradVerdict, "error": Failure, "expected": Expectation}


def _relations(value) -> tuple[Relation, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError("field 'relations': expected a list")
    return tuple(Relation.from_json(relation, f"relations[{i}]") for i, relation in enumerate(value))


RECORD_FIELDS = tuple(field.name for field in fields(Record))


def catalogue_tags(case_id: str) -> list[str]:
    """The facts of a catalogue case's input: the tags of a record written before records kept them (none for a case
    the catalogue does not hold, a user's own)."""
    return list(_catalogue_facts().get(case_id, ()))


@cache
def _catalogue_facts() -> dict[str, tuple[str, ...]]:
    from xentcompat.reference.cases import CATALOGUE

    return {case.id: tuple(sorted(case.facts)) for case in CATALOGUE}


def cell_key_text(record: dict) -> str:
    """A stored record's cell in one line: API [backend] | case | dtype | device | mode (framework, machine)."""
    backend = f" [{record['backend']}]" if record.get("backend") else ""
    return (f"{record['api']}{backend}|{record['case']}|{record['dtype']}|{record['device']}|{record['mode']}"
            f" ({record['framework']} {record['framework_version']}, {record['machine']})")
