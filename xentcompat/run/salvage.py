"""What a failed shard did write: its part files read back as a results document, so nothing it measured is lost."""

from __future__ import annotations

import sys
from pathlib import Path

from xentcompat import expectations
from xentcompat.results.documents import read_results, results_document
from xentcompat.run import parts
from xentcompat.run.isolation import describe_exit


def salvage(target: str, shard_dir: Path, status: int) -> dict:
    """The records a failed shard did write (its part files, the cells lost with a process among them as
    crashed), so nothing it measured is lost."""
    shard = shard_dir / f"{target}.json"
    if shard.exists() and not parts.parts_dir(shard).exists():  # the shard merged its parts, then failed a check
        return _failed_shard(target, shard_dir, status)
    found = parts.read(parts.parts_dir(shard))
    records = found.records
    reason = (f"the shard failed ({status_in_words(status)}) after {len(records)} records"
              + (f" of {found.planned} cells" if found.planned else "")
              + (f", {len(found.lost)} of them lost with their process (recorded as crashed)" if found.lost else "")
              + f"; its output is in {shard_dir / (target + '.log')}")
    print(f"xentcompat: {target}: {reason}", file=sys.stderr)
    return results_document(records, [], targets=[{"name": target, "skipped": None, "failed": reason}],
                            not_run=parts.unfinished(found, target), causes=expectations.summaries(records))


def _failed_shard(target: str, shard_dir: Path, status: int) -> dict:
    """A shard that wrote its document but failed (some check raised before recording its cell): its records, and
    the failure."""
    document = read_results(shard_dir / f"{target}.json")
    first = next((entry["first_error"] for entry in document["targets"] if entry.get("first_error")), None)
    why = f"the first: {first}" if first else "see its output"
    reason = (f"the shard failed ({status_in_words(status)}): some checks raised before recording their cell "
              f"({why}); {len(document['records'])} records kept; its output is in {shard_dir / (target + '.log')}")
    print(f"xentcompat: {target}: {reason}", file=sys.stderr)
    document["targets"] = [{**entry, "failed": reason} for entry in document["targets"]]
    return document


def status_in_words(status: int) -> str:
    """A shard's exit in words: pytest's exit status, or the signal that ended it."""
    return f"pytest exit status {status}" if status >= 0 else describe_exit(status)
