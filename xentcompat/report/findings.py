"""Findings: the records of one distinct deviation, grouped by their stable id, with what, where and why.

A record's `finding` id (see `xentcompat.harness.finding_id`) is derived from what deviates — framework, backend,
API, loss and gradient outcomes, and the reason its expectation entry gives — so the same deviation has the same id
in every run, shard and merge. Where it shows (cases, dtypes, devices, modes) is listed, not hashed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from xentcompat.reference.dtypes import DTYPE_NAMES

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
    framework: str
    backend: str | None
    api: str
    loss: str
    grad: str
    reason: str | None
    upstream: str | None
    records: tuple[dict, ...]

    @property
    def label(self) -> str:
        return api_label(self.records[0], with_place=False)

    @property
    def predicted(self) -> bool:
        """Whether an expectation entry predicts every record of this finding."""
        return all(not unexpected(record) for record in self.records)

    @property
    def where(self) -> dict[str, list[str]]:
        """case -> the dtypes it deviates in (dtype order)."""
        by_case: dict[str, set[str]] = defaultdict(set)
        for record in self.records:
            by_case[record["case"]].add(record["dtype"])
        return {case: sorted(dtypes, key=dtype_order) for case, dtypes in sorted(by_case.items())}

    @property
    def places(self) -> list[str]:
        """The devices and modes it shows on, e.g. ["cpu eager", "cuda eager"]."""
        return sorted({f"{record['device']} {record['mode']}" for record in self.records})

    @property
    def repro(self) -> str | None:
        """The shortest copy-paste reproducer among its records."""
        scripts = [record.get("repro") for record in self.records if record.get("repro")]
        return min(scripts, key=lambda script: (len(script), script)) if scripts else None

    def explanation(self) -> str:
        """One paragraph: what goes wrong, where, with a measured example, and why."""
        example = min(self.records, key=lambda r: (r["case"], dtype_order(r["dtype"])))
        where = "; ".join(f"{case} ({', '.join(dtypes)})" for case, dtypes in self.where.items())
        count = f"{len(self.records)} cell" + ("s" if len(self.records) != 1 else "")
        text = (f"With `{self.api}`{_on_backend(self.backend)} the loss {OUTCOME_WORDS[self.loss]} and the gradient "
                f"{OUTCOME_WORDS[self.grad]}, in {count}: {where}; on {', '.join(self.places)}. "
                f"{_measured(example)} ")
        if self.reason:
            return text + f"Why: {self.reason}."
        return text + ("No expectation entry predicts this: it is new with "
                       f"{self.framework} {example['framework_version']}.")


def collect(records: list[dict]) -> list[Finding]:
    """Every finding of `records`, ordered by API then id."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        if record.get("finding"):
            groups[record["finding"]].append(record)
    findings = [_finding(finding_id, group) for finding_id, group in groups.items()]
    return sorted(findings, key=lambda finding: (finding.label, finding.id))


def _finding(finding_id: str, group: list[dict]) -> Finding:
    first = min(group, key=lambda r: (r["case"], dtype_order(r["dtype"]), r["device"], r["mode"]))
    expected = first.get("expected") or {}
    explained = not unexpected(first)
    return Finding(finding_id, first["framework"], first.get("backend"), first["api"], first["loss"]["outcome"],
                   first["grad"]["outcome"], expected.get("reason") if explained else None,
                   expected.get("upstream") if explained else None, tuple(group))


def unexpected(record: dict) -> bool:
    """Whether the record's outcomes differ from what its expectation entry (or the default ok/ok) promised."""
    expected = record.get("expected") or {}
    return (record["loss"]["outcome"], record["grad"]["outcome"]) != (expected.get("loss", "ok"),
                                                                     expected.get("grad", "ok"))


def api_label(record: dict, with_place: bool = True) -> str:
    """The API as a row label: its id, the Keras backend, and the device and mode when not cpu/eager."""
    label = record["api"] + (f" [{record['backend']}]" if record.get("backend") else "")
    if with_place and (record["device"], record["mode"]) != ("cpu", "eager"):
        label += f" ({record['device']}, {record['mode']})"
    return label


def dtype_order(dtype: str) -> int:
    return DTYPE_NAMES.index(dtype) if dtype in DTYPE_NAMES else len(DTYPE_NAMES)


def _on_backend(backend: str | None) -> str:
    return f" on the Keras {backend} backend" if backend else ""


def _measured(record: dict) -> str:
    loss, grad = record["loss"], record["grad"]
    where = f"{record['case']} in {record['dtype']}"
    if loss["outcome"] == "raised" and record.get("error"):
        return f"For example, {where} raises {record['error']['type']}: {record['error']['message']}."
    parts = [f"loss {_number(loss.get('value'))} against the reference {_number(loss.get('reference'))}"]
    if loss.get("error_units") not in (None, "nan"):
        parts[-1] += f" ({_number(loss['error_units'])} units)"
    if grad.get("max_error_units") is not None:
        parts.append(f"gradient error up to {_number(grad['max_error_units'])} units")
    if grad.get("nan_count"):
        parts.append(f"{grad['nan_count']} NaN gradient elements")
    if grad.get("inf_count"):
        parts.append(f"{grad['inf_count']} infinite gradient elements")
    return f"For example, {where}: " + ", ".join(parts) + "."


def _number(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    return f"{value:.6g}"
