"""Known deviations, as causes: the unit of expectation, of finding and of citation.

A cause (`causes/<kind>.toml`, one top-level table per cause id) is one mechanism: a `kind` from `model.KINDS`, a
one-line `title`, an `explanation`, its `upstream` links (or `no_upstream`, saying what was searched), and the cells
it covers as `[[<id>.cells]]` entries, each one loss/grad outcome pair (`loss`, `grad`) or a `mechanism` that gives
it cell by cell (see below): the `framework`, its `apis`, glob selectors (`cases`, `areas`, `tiers`, `dtypes`,
`devices`, `modes`, `backends`; `tags`, facts of the input of which one must hold, `reference/facts.py`: an entry that
selects by fact covers a user's own batch as it covers the catalogue's), `when` and `unless` (input conditions in the
dtype, any of which must hold, none of which may: see `conditions.py`), `[[<id>.cells.except]]` selectors taken out,
`versions` (PEP 440), an optional `note` (the specific mechanism in that cell) and `upstream` link, and
`[[<id>.cells.kernel]]` outcomes on kernel paths (`causes/kernel_paths.toml`: a `title`, `when` conditions on the
machine, `modes`, `upstream`), each with an optional `cause` of its own. `also` lists other [loss, grad] pairs the
same defect gives from run to run, where what it gives depends on memory the call should never touch (an
unchecked index read outside its array returns whatever lies there, or faults): any of them is the cause's.

An id, once cited, stays: a cause found to be another's mechanism keeps its table with `merged_into` (the id that now
covers its cells) and no cells.

An entry may name a `mechanism` (`mechanisms.py`) instead of its outcomes: they are then computed from each cell's
input and judged with its error model (`run/predicted.py`). On a cell that an entry of fixed outcomes also covers,
that entry stands (something else happens there first).

No order carries meaning: a cell claimed by two entries that promise different things (another cause, other outcomes)
is an error naming both, raised when the claims are checked (`check_claims`, run over a target's cells before a shard
starts) and when a cell is judged. A cell no entry covers is expected good: ok/ok, or raised/raised for invalid input
(`GOOD`, `GOOD_INVALID`).
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from xentcompat.adapters.base import TARGETS
from xentcompat.expectations.conditions import CONDITIONS
from xentcompat.expectations.mechanisms import MECHANISMS
from xentcompat.expectations.model import (KINDS, PREDICTED, SELECTOR_FIELDS, Cause, Effect, Expected,
                                           KernelOutcome, KernelPath, Selector)
from xentcompat.machine import condition
from xentcompat.reference.dtypes import DTYPE_NAMES
from xentcompat.reference.facts import FACTS
from xentcompat.results.record import OUTCOMES, TIERS, good_outcomes

__all__ = ["Cause", "CauseConflict", "Effect", "Expected", "GOOD", "GOOD_INVALID", "KernelPath", "causes",
           "check_apis", "check_claims", "every_entry", "expectation", "good", "load", "summaries"]

HERE = Path(__file__).parent
CAUSES_DIR = HERE / "causes"
GOOD = good_outcomes(False)
GOOD_INVALID = good_outcomes(True)  # invalid input: a clear error is the good outcome
KNOWN = {"dtypes": DTYPE_NAMES, "devices": ("cpu", "cuda"), "modes": ("eager", "compiled", "forward"),
         "backends": (*dict.fromkeys(target.backend for target in TARGETS.values() if target.backend), "none")}
CAUSE_FIELDS = {"kind", "title", "explanation", "upstream", "no_upstream", "cells", "merged_into"}
CELLS_FIELDS = {"framework", "apis", "loss", "grad", "also", "mechanism", "when", "unless", "except", "versions",
                "note", "upstream", "kernel", *SELECTOR_FIELDS}


class CauseConflict(ValueError):
    """One cell claimed by two entries promising different things; the message names both."""


def good(invalid: bool, gradient: bool = True) -> tuple[str, str]:
    """What a cell's outcome is when nothing deviates: ok/ok, or raised/raised for invalid input; the gradient
    `absent` for an API that offers none."""
    return good_outcomes(invalid, gradient)


def load(framework: str, directory: Path | None = None) -> list[Effect]:
    """The effects of every cause on `framework`'s APIs; ValueError naming the file, cause and field if malformed."""
    return [effect for effect in _load_all(directory or CAUSES_DIR)[1] if effect.framework == framework]


def every_entry(directory: Path | None = None) -> tuple[Effect, ...]:
    """The entries of every cause, on every framework."""
    return _load_all(directory or CAUSES_DIR)[1]


def causes(directory: Path | None = None) -> dict[str, Cause]:
    return _load_all(directory or CAUSES_DIR)[0]


def summaries(records: list[dict]) -> dict[str, dict]:
    """The causes table of a results document: each cause a record's finding names, with its kind, title,
    explanation and upstream links."""
    known = causes()
    named = {r["finding"].removeprefix("XC-") for r in records if r.get("finding")}
    return {cause_id: known[cause_id].summary() for cause_id in sorted(named & set(known))}


@cache
def _load_all(directory: Path) -> tuple[dict[str, Cause], tuple[Effect, ...]]:
    paths = _kernel_paths(directory / "kernel_paths.toml")
    documents = {path.name: tomllib.loads(path.read_text()) for path in sorted(directory.glob("*.toml"))
                 if path.name != "kernel_paths.toml"}
    found: dict[str, Cause] = {}
    for name, document in documents.items():
        for cause_id, entry in document.items():
            if cause_id in found:
                raise ValueError(f"{name}: cause {cause_id!r} is defined twice")
            found[cause_id] = _cause(f"{name}: cause {cause_id!r}", cause_id, entry)
    _check_merged(found, documents)
    effects = [_effect(f"{name}: cause {cause_id!r}, cells #{index}", found[cause_id], cells, paths, found)
               for name, document in documents.items() for cause_id, entry in document.items()
               for index, cells in enumerate(entry.get("cells", []))]
    return found, tuple(effects)


def _check_merged(found: dict[str, Cause], documents: dict[str, dict]) -> None:
    for name, document in documents.items():
        for cause_id, entry in document.items():
            into = found[cause_id].merged_into
            if into is not None and (into not in found or found[into].merged_into is not None):
                raise ValueError(f"{name}: cause {cause_id!r}: field 'merged_into': {into!r} is not a cause in use")
            if into is not None and entry.get("cells"):
                raise ValueError(f"{name}: cause {cause_id!r}: merged into {into!r}, so it covers no cells")


def _cause(where: str, cause_id: str, entry) -> Cause:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a table")
    unknown = set(entry) - CAUSE_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    for name in ("title", "explanation"):
        if not isinstance(entry.get(name), str) or not entry[name].strip():
            raise ValueError(f"{where}: field {name!r}: expected a non-empty string")
    if entry.get("kind") not in KINDS:
        raise ValueError(f"{where}: field 'kind': {entry.get('kind')!r} is not one of {', '.join(KINDS)}")
    upstream = entry.get("upstream", [])
    if not isinstance(upstream, list) or not all(isinstance(u, str) and u.startswith("https://") for u in upstream):
        raise ValueError(f"{where}: field 'upstream': expected a list of https links")
    if not upstream and not isinstance(entry.get("no_upstream"), str):
        raise ValueError(f"{where}: needs 'upstream' links or 'no_upstream' (what was searched)")
    if "merged_into" in entry and not isinstance(entry["merged_into"], str):
        raise ValueError(f"{where}: field 'merged_into': expected a cause id")
    return Cause(cause_id, entry["kind"], entry["title"].strip(), " ".join(entry["explanation"].split()),
                 tuple(upstream), entry.get("no_upstream"), entry.get("merged_into"))


def _effect(where: str, cause: Cause, entry, paths: dict[str, KernelPath], found: dict[str, Cause]) -> Effect:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a table")
    unknown = set(entry) - CELLS_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    mechanism = _mechanism(where, entry)
    outcomes = () if mechanism else ("loss", "grad")
    missing = [name for name in ("framework", "apis", *outcomes) if name not in entry]
    if missing:
        raise ValueError(f"{where}: missing field {missing[0]!r}")
    if not isinstance(entry["apis"], list) or not entry["apis"] or not all(isinstance(a, str) for a in entry["apis"]):
        raise ValueError(f"{where}: field 'apis': expected a non-empty list of API ids")
    if not mechanism:
        _check_outcomes(where, entry)
    try:
        SpecifierSet(entry.get("versions", ""))
    except InvalidSpecifier:
        raise ValueError(f"{where}: field 'versions': {entry['versions']!r} is not a version specifier") from None
    for name in ("when", "unless"):
        items = entry.get(name, [])
        if not isinstance(items, list) or any(item not in CONDITIONS for item in items):
            raise ValueError(f"{where}: field {name!r}: expected a list of conditions among {', '.join(CONDITIONS)}")
    excepts = entry.get("except", [])
    if not isinstance(excepts, list):
        raise ValueError(f"{where}: field 'except': expected a list of selectors")
    return Effect(
        cause=cause, framework=entry["framework"], apis=tuple(entry["apis"]), loss=entry.get("loss", PREDICTED),
        grad=entry.get("grad", PREDICTED), where=where, selector=_selector(where, entry), when=tuple(entry.get("when", [])),
        unless=tuple(entry.get("unless", [])),
        excepts=tuple(_selector(f"{where}: except #{i}", item, alone=True) for i, item in enumerate(excepts)),
        versions=entry.get("versions", ""), note=entry.get("note"), upstream=entry.get("upstream"),
        kernel=_kernel_outcomes(where, entry.get("kernel", []), paths, cause, found), mechanism=mechanism,
        also=_also(where, entry))


def _also(where: str, entry: dict) -> tuple[tuple[str, str], ...]:
    """The other [loss, grad] outcome pairs an entry of fixed outcomes may give (field `also`)."""
    pairs = entry.get("also", [])
    if pairs and "loss" not in entry:
        raise ValueError(f"{where}: field 'also': only an entry of fixed outcomes lists other outcomes")
    if not isinstance(pairs, list) or not all(isinstance(pair, list) and len(pair) == 2 and set(pair) <= set(OUTCOMES)
                                              for pair in pairs):
        raise ValueError(f"{where}: field 'also': expected a list of [loss, grad] outcome pairs")
    return tuple((loss, grad) for loss, grad in pairs)


def _mechanism(where: str, entry: dict) -> str | None:
    """The entry's mechanism, which then gives its outcomes (no `loss`, `grad` or `kernel` beside it)."""
    name = entry.get("mechanism")
    if name is None:
        return None
    if name not in MECHANISMS:
        raise ValueError(f"{where}: field 'mechanism': {name!r} is not one of {', '.join(MECHANISMS)}")
    given = [field for field in ("loss", "grad", "kernel") if field in entry]
    if given:
        raise ValueError(f"{where}: field {given[0]!r}: an entry with a mechanism takes its outcomes from it")
    return name


def _check_outcomes(where: str, entry: dict) -> None:
    for name in ("loss", "grad"):
        if entry.get(name) not in OUTCOMES:
            raise ValueError(f"{where}: field {name!r}: {entry.get(name)!r} is not an outcome")


def _selector(where: str, entry, alone: bool = False) -> Selector:
    """The selector of an entry (or an `except` table, which holds only selector fields)."""
    if alone and (not isinstance(entry, dict) or set(entry) - set(SELECTOR_FIELDS)):
        raise ValueError(f"{where}: expected a table of {', '.join(SELECTOR_FIELDS)}")
    known = _known()
    for name in SELECTOR_FIELDS:
        patterns = entry.get(name, ["*"])
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise ValueError(f"{where}: field {name!r} must be a list of patterns")
        for pattern in patterns:
            if not fnmatch.filter(known[name], pattern):
                raise ValueError(f"{where}: field {name!r}: {pattern!r} matches no {name[:-1]} "
                                 f"(known: {', '.join(known[name][:8])}{', ...' if len(known[name]) > 8 else ''})")
    return Selector(**{name: tuple(entry.get(name, ["*"])) for name in SELECTOR_FIELDS})


@cache
def _known() -> dict[str, tuple[str, ...]]:
    """What a pattern may match: the catalogue's case ids (read once), dtypes, devices, modes, backends."""
    from xentcompat.reference.cases import CATALOGUE

    return {**KNOWN, "cases": tuple(case.id for case in CATALOGUE), "areas": tuple(dict.fromkeys(c.area for c in CATALOGUE)),
            "tiers": TIERS, "tags": tuple(FACTS)}


def _kernel_paths(path: Path) -> dict[str, KernelPath]:
    if not path.exists():
        return {}
    return {name: _kernel_path(f"{path.name}: kernel path {name!r}", name, entry)
            for name, entry in tomllib.loads(path.read_text()).items()}


def _kernel_path(where: str, name: str, entry: dict) -> KernelPath:
    unknown = set(entry) - {"title", "when", "upstream", "modes"}
    if unknown:
        raise ValueError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    if not isinstance(entry.get("title"), str) or not isinstance(entry.get("when"), list) or not entry["when"]:
        raise ValueError(f"{where}: needs a 'title' and a non-empty list 'when' of conditions")
    modes = tuple(entry.get("modes", KernelPath.modes))
    if not modes or not set(modes) <= set(KernelPath.modes):
        raise ValueError(f"{where}: field 'modes' must list modes among {', '.join(KernelPath.modes)}")
    when = tuple(condition(item, f"{where}: when #{index}") for index, item in enumerate(entry["when"]))
    return KernelPath(name, entry["title"], when, entry.get("upstream"), modes)


def _kernel_outcomes(where: str, items, paths: dict[str, KernelPath], cause: Cause,
                     found: dict[str, Cause]) -> tuple[KernelOutcome, ...]:
    variants = []
    for index, item in enumerate(items):
        at = f"{where}: kernel #{index}"
        if not isinstance(item, dict) or not {"path", "loss", "grad", "note"} <= set(item) <= {
                "path", "loss", "grad", "note", "cause"}:
            raise ValueError(f"{at}: needs 'path', 'loss', 'grad' and 'note' (and may name a 'cause')")
        if item["path"] not in paths:
            raise ValueError(f"{at}: no kernel path {item['path']!r} in kernel_paths.toml")
        if item.get("cause", cause.id) not in found:
            raise ValueError(f"{at}: field 'cause': no cause {item['cause']!r}")
        _check_outcomes(at, item)
        variants.append(KernelOutcome(paths[item["path"]], found[item.get("cause", cause.id)], item["loss"],
                                      item["grad"], item["note"]))
    return tuple(variants)


def check_apis(effects: list[Effect], api_ids: set[str], where: str) -> None:
    """ValueError naming the first entry whose API is not one of `api_ids` (the target's registered APIs)."""
    for effect in effects:
        unknown = [api for api in effect.apis if api not in api_ids]
        if unknown:
            raise ValueError(f"{where}: {effect.where} names API {unknown[0]!r}, which no adapter registers")


def expectation(effects: list[Effect], cell: dict, version: str | None,
                conditions: Callable[[], frozenset[str]] = frozenset) -> Effect | None:
    """The entry covering `cell`, or None (expected good); CauseConflict if two entries claim it differently. An
    entry of fixed outcomes stands over an entry with a mechanism on a cell both cover: the mechanism says what the
    API computes from its input, the other entry that something else happens on that cell first (the input is
    refused, a sum overflows on one device)."""
    claims = [effect for effect in effects if effect.covers(cell, version, conditions)]
    fixed = [effect for effect in claims if effect.mechanism is None]
    claims = fixed or claims
    for other in claims[1:]:
        if other.promise() != claims[0].promise():
            first = claims[0]
            raise CauseConflict(
                f"cell {cell['api']}|{cell['case']}|{cell['dtype']}|{cell['device']}|{cell['mode']} is claimed by "
                f"{first.where} ({first.cause.id}: {first.loss}/{first.grad}) and by {other.where} "
                f"({other.cause.id}: {other.loss}/{other.grad}); narrow one of them")
    return claims[0] if claims else None


def check_claims(effects: list[Effect], cells: Iterable[tuple[dict, str | None, Callable[[], frozenset[str]]]]) -> int:
    """Raise CauseConflict for the first of `cells` ((cell, version, conditions) triples) claimed by two entries
    that promise different things; the number of cells checked otherwise."""
    checked = 0
    for cell, version, conditions in cells:
        expectation(effects, cell, version, conditions)
        checked += 1
    return checked
