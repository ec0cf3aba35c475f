"""What a failed shard did write: its part files read back as a results document, so nothing it measured is lost."""

from __future__ import annotations

import sys
from pathlib import Path

from xentcompat import expectations
from xentcompat.results.documents import results_document
from xentcompat.run import parts
from xentcompat.run.isolation import describe_exit


def salvage(target: str, shard_dir: Path, status: int) -> dict:
    """The records a failed shard did write (its part files, the cells lost with a process among them as
    crashed), so nothing it measured is lost."""
    found = parts.read(parts.parts_dir(shard_dir / f"{target}.json"))
    records = found.records
    reason = (f"the shard failed ({status_in_words(status)}) after {len(records)} records"
              + (f" of {found.planned} cells" if found.planned else "")
              + (f", {len(found.lost)} of them lost with their process (recorded as crashed)" if found.lost else "")
              + f"; its output is in {shard_dir / (target + '.log')}")
    print(f"xentcompat: {target}: {reason}", file=sys.stderr)
    return results_document(records, [], targets=[{"name": target, "skipped": None, "failed": reason}],
                            not_run=parts.unfinished(found, target), causes=expectations.summaries(records))


def status_in_words(status: int) -> str:
    """A shard's exit in words: pytest's exit status, or the signal that ended it."""
    return f"pytest exit status {status}" if status >= 0 else describe_exit(status)
