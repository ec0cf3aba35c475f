"""Merge shards (one per process, machine, device or framework version) into one results document.

Duplicate rule: two records with the same cell key (framework, framework version, backend, api, case, dtype, device,
mode, machine) are one cell measured twice (a re-run). The machine (CPU, kernel flags and switches) is part of the
key: the same cell measured on two machines is two records, so a kernel path that differs is kept, not overwritten.
Two measurements of one cell that disagree are a `conflict`: the document lists each (the cell, the outcome kept and
the other), `xentcompat merge` says how many, and the report shows them. The one kept is the first in a canonical
order (by the record's JSON text), so the merge does not depend on the order of the shards; the number dropped is
reported.
"""

from __future__ import annotations

import json
from pathlib import Path

from xentcompat.results.bench import check_bench, looks_like_bench, merge_bench, read_bench
from xentcompat.results.documents import read_results, results_document
from xentcompat.results.record import Record
from xentcompat.results.shape import CELL_KEY
from xentcompat.results.training import check_training, looks_like_training, merge_training, read_training

KEY_FIELDS = CELL_KEY


def cell_key(record: Record) -> tuple:
    return tuple(str(getattr(record, name)) for name in KEY_FIELDS)


def merge_documents(documents: list[dict]) -> dict:
    """One document holding every distinct record, environment, target and not-run entry of `documents`."""
    typed = (Record.from_json(r) for d in documents for r in d.get("records", []))
    records = sorted(typed, key=lambda r: (cell_key(r), _text(r.to_json())))
    kept, duplicates, conflicts = [], 0, []
    for record in records:
        if kept and cell_key(kept[-1]) == cell_key(record):
            duplicates += 1
            if _outcomes(kept[-1]) != _outcomes(record):
                conflicts.append({"cell": dict(zip(KEY_FIELDS, cell_key(record))),
                                  "kept": _outcomes(kept[-1]), "other": _outcomes(record)})
            continue
        kept.append(record)
    return results_document(
        [record.to_json() for record in kept],
        _distinct(e for d in documents for e in d.get("environments", [])),
        targets=_targets(documents),
        not_run=_distinct(n for d in documents for n in d.get("not_run", [])),
        set_aside=_distinct(n for d in documents for n in d.get("set_aside", [])),
        duplicates_dropped=duplicates + sum(d.get("duplicates_dropped", 0) for d in documents),
        conflicts=[c for d in documents for c in d.get("conflicts", [])] + conflicts,
        causes=_causes(kept, documents),
        **_one_check(documents),
    )


def _one_check(documents: list[dict]) -> dict:
    """`check` (what `xentcompat check` checked) when every document is a check of the same callable; else nothing
    (a check merged with other records is one more API among them)."""
    checks = [d.get("check") for d in documents]
    return {"check": checks[0]} if checks and checks[0] and all(c == checks[0] for c in checks) else {}


def _targets(documents: list[dict]) -> list[dict]:
    """Every distinct target entry; a target skipped by one document (its framework missing on that machine) but
    run by another is not listed as skipped."""
    targets = _distinct(t for d in documents for t in d.get("targets", []))
    ran = {t["name"] for t in targets if not t.get("skipped")}
    return [t for t in targets if not (t.get("skipped") and t["name"] in ran)]


def _causes(records: list[Record], documents: list[dict]) -> dict[str, dict]:
    """The causes table: every cause a kept record's finding names, as its documents give it."""
    given = {cause_id: cause for d in sorted(documents, key=_text) for cause_id, cause in d.get("causes", {}).items()}
    named = {r.finding.removeprefix("XC-") for r in records if r.finding}
    return {cause_id: given[cause_id] for cause_id in sorted(named & set(given))}


def _outcomes(record: Record) -> str:
    return " / ".join(record.observed)


def merge_files(paths: list[Path], extra: list[dict] = ()) -> dict:
    """Read and merge shard files (and `extra` documents); ResultsError (one line) for a corrupt file or another
    schema version. A training.json among `paths` (`"kind": "training"`), and the `training` a results document
    carries, go into the merged document's `training`; a bench.json (`"kind": "bench"`) and a results document's
    `bench`, into its `bench`."""
    benches = [path for path in paths if looks_like_bench(path)]
    shards = [path for path in paths if not looks_like_training(path) and path not in benches]
    trainings = [read_training(path) for path in paths if path not in shards and path not in benches]
    documents = [read_results(path) for path in shards]
    trainings += [check_training(d["training"], f"{path}: field 'training'")
                  for path, d in zip(shards, documents) if d.get("training") is not None]
    trainings += [d["training"] for d in extra if d.get("training") is not None]
    bench = [read_bench(path) for path in benches] + [check_bench(d["bench"], f"{path}: field 'bench'")
                                                       for path, d in zip(shards, documents) if d.get("bench")]
    merged = merge_documents(documents + list(extra))
    if trainings:
        merged["training"] = merge_training(trainings)
    if bench:
        merged["bench"] = merge_bench(bench)
    return merged


def _text(value) -> str:
    return json.dumps(value, sort_keys=True)


def _distinct(items) -> list:
    return [json.loads(text) for text in sorted({_text(item) for item in items})]
