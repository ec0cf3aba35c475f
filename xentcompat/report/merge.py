"""Merge shards (one per process, machine, device or framework version) into one results document.

Duplicate rule: two records with the same cell key (framework, framework version, backend, api, case, dtype, device,
mode, machine) are one cell measured twice (a re-run). The machine (CPU, kernel flags and switches) is part of the
key: the same cell measured on two machines is two records, so a kernel path that differs is kept, not overwritten. The one kept is the first in a canonical order (by the record's JSON
text), so the merge does not depend on the order of the shards; the number dropped is reported.
"""

from __future__ import annotations

import json
from pathlib import Path

from xentcompat.report.records import read_results, results_document

KEY_FIELDS = ("framework", "framework_version", "backend", "api", "case", "dtype", "device", "mode", "machine")


def cell_key(record: dict) -> tuple:
    return tuple(str(record.get(name)) for name in KEY_FIELDS)


def merge_documents(documents: list[dict]) -> dict:
    """One document holding every distinct record, environment, target and not-run entry of `documents`."""
    records = sorted((r for d in documents for r in d.get("records", [])), key=lambda r: (cell_key(r), _text(r)))
    kept, duplicates = [], 0
    for record in records:
        if kept and cell_key(kept[-1]) == cell_key(record):
            duplicates += 1
            continue
        kept.append(record)
    return results_document(
        kept,
        _distinct(e for d in documents for e in d.get("environments", [])),
        targets=_distinct(t for d in documents for t in d.get("targets", [])),
        not_run=_distinct(n for d in documents for n in d.get("not_run", [])),
        duplicates_dropped=duplicates + sum(d.get("duplicates_dropped", 0) for d in documents),
    )


def merge_files(paths: list[Path]) -> dict:
    """Read and merge shard files; ResultsError (one line) for a corrupt file or another schema version."""
    return merge_documents([read_results(path) for path in paths])


def _text(value) -> str:
    return json.dumps(value, sort_keys=True)


def _distinct(items) -> list:
    return [json.loads(text) for text in sorted({_text(item) for item in items})]
