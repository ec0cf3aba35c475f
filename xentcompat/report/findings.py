"""Findings: a finding is a cause. The records of one cause (`XC-<cause id>`), with the cause's kind, title,
explanation and upstream links from the document's `causes` table, and where it shows, with measured values.

A deviating record that no cause explains (a user's case, a new framework release) belongs to an unexplained finding,
`XC-unexplained-<hash>` of its API and outcome (see `xentcompat.run.harness.finding_id`); those come first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from xentcompat.reference.dtypes import DTYPE_NAMES
from xentcompat.report.choices import CHOICES
from xentcompat.report.numbers import words
from xentcompat.results.record import Record

SEED_APIS = tuple(dict.fromkeys(choice.api for choice in CHOICES))
CELLS_SHOWN = 4

OUTCOME_WORDS = {
    "ok": "agrees with the reference",
    "inaccurate": "is finite but beyond the error bound",
    "nan": "is NaN where the reference is not",
    "inf": "is infinite where the reference is finite (or the other infinity)",
    "finite": "is finite where the reference is infinite or NaN",
    "raised": "is an exception",
    "silent": "is a value although the input is invalid",
    "crashed": "is a crash of the process",
}


@dataclass(frozen=True)
class Finding:
    id: str
    cause: dict | None  # the cause's kind, title, explanation, upstream, no_upstream; None: unexplained
    records: tuple[Record, ...]

    @property
    def unexplained(self) -> bool:
        return self.cause is None

    @property
    def title(self) -> str:
        if self.cause is not None:
            return self.cause["title"]
        first = self.records[0]
        return (f"Unexplained: {api_label(first, with_place=False)} gives loss {first.loss.outcome}, "
                f"gradient {first.grad.outcome}, and no cause predicts it")

    @property
    def kind(self) -> str:
        return self.cause["kind"] if self.cause else "unexplained"

    @property
    def predicted(self) -> bool:
        """Whether a cause predicts every record of this finding."""
        return all(not unexpected(record) for record in self.records)

    @property
    def apis(self) -> list[str]:
        return sorted({api_label(record, with_place=False) for record in self.records})

    @property
    def outcomes(self) -> dict[str, int]:
        """"loss/grad" -> number of cells."""
        counts: dict[str, int] = defaultdict(int)
        for record in self.records:
            counts[f"{record.loss.outcome}/{record.grad.outcome}"] += 1
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    @property
    def seed_apis(self) -> list[str]:
        """The decision table's APIs it touches."""
        return [api for api in SEED_APIS if any(record.api == api for record in self.records)]

    @property
    def realistic(self) -> int:
        return sum(1 for record in self.records if record.tier == "realistic")

    def cells(self) -> list[tuple[str, ...]]:
        """A compact table of its cells (at most `CELLS_SHOWN`, one per API, backend and outcome first):
        api, backend, dtype, mode, case, what came out."""
        seen, shown_cells = set(), []
        for record in sorted(self.records, key=_example_order):
            key = (record.api, record.backend, record.loss.outcome, record.grad.outcome)
            if key in seen:
                continue
            seen.add(key)
            shown_cells.append(record)
        chosen = {id(record) for record in shown_cells}
        rest = [r for r in sorted(self.records, key=_example_order) if id(r) not in chosen]
        return [(r.api, r.backend or "", r.dtype, r.mode, r.case,
                 words(r.loss, r.grad, r.error) or "agrees")
                for r in (shown_cells + rest)[:CELLS_SHOWN]]

    @property
    def where(self) -> dict[str, dict[str, list[str]]]:
        """API label -> case -> the dtypes it deviates in (dtype order)."""
        found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for record in self.records:
            found[api_label(record, with_place=False)][record.case].add(record.dtype)
        return {api: {case: sorted(dtypes, key=dtype_order) for case, dtypes in sorted(cases.items())}
                for api, cases in sorted(found.items())}

    @property
    def places(self) -> list[str]:
        """The devices and modes it shows on, e.g. ["cpu eager", "cuda eager"]."""
        return sorted({f"{record.device} {record.mode}" for record in self.records})

    @property
    def upstream(self) -> list[str]:
        """The cause's links, then any a cell's entry adds."""
        links = list(self.cause["upstream"]) if self.cause else []
        for record in self.records:
            link = record.expected.upstream
            if link and link not in links and not unexpected(record):
                links.append(link)
        return links

    @property
    def repro(self) -> str | None:
        """The shortest copy-paste reproducer among its records."""
        scripts = [record.repro for record in self.records if record.repro]
        return min(scripts, key=lambda script: (len(script), script)) if scripts else None

    def status(self) -> str:
        """The cells, their outcome counts, and whether the cause predicts them."""
        outcomes = ", ".join(f"{outcome} ({count})" for outcome, count in self.outcomes.items())
        predicted = "predicted by its cause" if self.predicted else "not predicted: new in this run"
        return f"{len(self.records)} cells, loss/gradient {outcomes}; {predicted}"

    def where_lines(self) -> list[tuple[tuple[str, ...], str]]:
        """(API labels, their cases with their dtypes): the cases of one dtype set together, and the APIs that
        deviate on the same cases and dtypes together, e.g. (("a", "b"), "nan-logit, neg-inf-row (float16, float32);
        label-minus-1 (float32)")."""
        apis_of: dict[str, list[str]] = defaultdict(list)
        for api, cases in self.where.items():
            by_dtypes: dict[tuple[str, ...], list[str]] = defaultdict(list)
            for case, dtypes in cases.items():
                by_dtypes[tuple(dtypes)].append(case)
            apis_of["; ".join(f"{', '.join(names)} ({', '.join(dtypes)})" for dtypes, names in by_dtypes.items())
                    ].append(api)
        return [(tuple(apis), text) for text, apis in apis_of.items()]

    def no_upstream(self) -> str | None:
        """What stands where a cause has no upstream link (what was searched), or None."""
        if self.upstream or self.cause is None:
            return None
        return self.cause.get("no_upstream") or "none"

    def explanation(self) -> str:
        """One paragraph: why (the cause), how many cells, and a measured example."""
        example = min(self.records, key=_example_order)
        count = f"{len(self.records)} cell" + ("s" if len(self.records) != 1 else "")
        measured = f"{_measured(example)} (`{api_label(example)}`)"
        if self.cause is None:
            return (f"No cause predicts this, in {count} on {', '.join(self.places)}: new with "
                    f"{example.framework} {example.framework_version}, or a user's case. {measured}")
        return f"{self.cause['explanation']} Seen in {count} on {', '.join(self.places)}. {measured}"


def collect(records: list[Record], causes: dict[str, dict] | None = None) -> list[Finding]:
    """Every finding of `records`, by impact (see `impact`)."""
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        if record.finding:
            groups[record.finding].append(record)
    causes = causes or {}
    findings = [Finding(finding_id, causes.get(finding_id.removeprefix("XC-")), tuple(group))
                for finding_id, group in groups.items()]
    return sorted(findings, key=impact)


def impact(finding: Finding) -> tuple:
    """The unexplained first, then by how many of the decision table's APIs and realistic cells a cause touches."""
    return (not finding.unexplained, -len(finding.seed_apis), -finding.realistic, -len(finding.records), finding.id)


def _example_order(record: Record) -> tuple:
    """The example a finding shows: an eager float32 cell on the CPU where there is one (what most users run)."""
    return (record.mode != "eager", record.device != "cpu", record.dtype != "float32", record.api,
            record.case, dtype_order(record.dtype))


def unexpected(record: Record) -> bool:
    """Whether the record's outcomes differ from what its expectation entry (or the default ok/ok) promised."""
    return not record.as_promised


def api_label(record: Record, with_place: bool = True) -> str:
    """The API as a row label: its id, the Keras backend, and the device and mode when not cpu/eager."""
    label = record.api + (f" [{record.backend}]" if record.backend else "")
    if with_place and (record.device, record.mode) != ("cpu", "eager"):
        label += f" ({record.device}, {record.mode})"
    return label


def folded_apis(records: Iterable[Record]) -> str:
    """The APIs of `records`, each named once with where it ran: `torch.nn.X (cpu: eager, compiled; cuda: eager)`,
    `keras.losses.Y [jax, torch] (eager, compiled)`; the CPU's eager mode alone is not said."""
    places: dict[str, dict[tuple[str, str], set[str]]] = defaultdict(lambda: defaultdict(set))
    for record in records:
        places[record.api][(record.device, record.mode)].add(record.backend or "")
    return ", ".join(api + _places(found) for api, found in sorted(places.items()))


def _places(found: dict[tuple[str, str], set[str]]) -> str:
    backends = {tuple(sorted(names - {""})) for names in found.values()}
    if len(backends) == 1:
        said = ", ".join(next(iter(backends)))
        return (f" [{said}]" if said else "") + _where(list(found))
    return " [" + "; ".join(f"{_place_word(place)}: {', '.join(sorted(found[place]))}"
                            for place in sorted(found, key=_place_order)) + "]"


def _place_word(place: tuple[str, str]) -> str:
    device, mode = place
    return mode if device == "cpu" else f"{device} {mode}"


def _where(places: list[tuple[str, str]]) -> str:
    """` (cpu: eager, compiled; cuda: eager)`, ` (eager, compiled)` on the CPU alone, nothing for its eager alone."""
    places = sorted(places, key=_place_order)
    devices = list(dict.fromkeys(device for device, _ in places))
    if devices == ["cpu"]:
        modes = [mode for _, mode in places]
        return "" if modes == ["eager"] else f" ({', '.join(modes)})"
    return " (" + "; ".join(f"{device}: {', '.join(m for d, m in places if d == device)}" for device in devices) + ")"


def _place_order(place: tuple[str, str]) -> tuple[bool, bool]:
    return place[0] != "cpu", place[1] != "eager"


def dtype_order(dtype: str) -> int:
    return DTYPE_NAMES.index(dtype) if dtype in DTYPE_NAMES else len(DTYPE_NAMES)


def _measured(record: Record) -> str:
    where = f"{record.case} in {record.dtype}"
    if record.loss.outcome == "raised" and record.error:
        return f"For example, {where} raises {record.error.type}: {record.error.message}."
    said = words(record.loss, record.grad, record.error)
    grad = record.grad
    counts = [f"{count} {name} gradient elements" for count, name in ((grad.nan_count, "NaN"), (grad.inf_count, "infinite"))
              if count]
    return f"For example, {where}: " + ", ".join([said or "agrees", *counts]) + "."
