"""A results document's digests: one per record, written beside the records and checked whenever the document is
read, so a record changed, removed or added after it was written is named instead of rendered as a measurement.

The digest is the first 16 hex digits of the sha256 of the record's canonical JSON (keys sorted, non-finite numbers
as strict JSON's strings). A document without digests (a shard, or a file written before they existed) is read as
it is. The digests guard against an edit by hand or a damaged copy, not against someone who recomputes them.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter

from xentcompat.results.nonfinite import encode
from xentcompat.results.record import cell_key_text


def record_digest(record: dict) -> str:
    text = json.dumps(encode(record), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sealed(document: dict) -> dict:
    """`document` with the digests of its records, placed just before them."""
    rest = {key: value for key, value in document.items() if key not in ("digests", "records")}
    records = document.get("records", [])
    return {**rest, "digests": [record_digest(record) for record in records], "records": records}


def tampering(document: dict) -> str | None:
    """What differs from what was written (the first record that changed, or how many are missing), or None."""
    stored = document.get("digests")
    if stored is None:
        return None
    records = document.get("records", [])
    written = Counter(stored)
    changed = []
    for index, record in enumerate(records):
        digest = record_digest(record)
        if written[digest]:
            written[digest] -= 1
        else:
            changed.append(index)
    missing = sum(written.values()) - len(changed)
    if changed:
        more = f" ({len(changed) - 1} more records differ too)" if len(changed) > 1 else ""
        return (f"record #{changed[0]} ({cell_key_text(records[changed[0]])}) is not the record written with this document "
                f"(its digest differs){more}: a record edited after the run is not a measurement")
    if missing > 0:
        return f"{missing} of the {len(stored)} records written with this document are missing"
    return None

