"""What a failed shard did write: its part files read back as a results document, so nothing it measured is lost."""

from __future__ import annotations

import sys
from pathlib import Path

from xentcompat import expectations
from xentcompat.results.documents import ResultsError, read_results, results_document
from xentcompat.results.merge import merge_documents
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


PARTS_SUFFIX = ".json.parts"


def parts_directory(path: Path) -> Path | None:
    """The shard part directory `path` names (the directory, or one of its .jsonl files); None for any other
    file; ResultsError for another directory, naming the part directories inside it."""
    path = Path(path)
    if _is_parts_directory(path):
        return path
    if path.suffix == ".jsonl" and _is_parts_directory(path.parent):
        return path.parent
    if path.is_dir():
        inside = sorted(str(p) for p in path.glob(f".*{PARTS_SUFFIX}") if p.is_dir())
        where = f" (part files of stopped shards here: {', '.join(inside)})" if inside else ""
        raise ResultsError(f"{path}: a directory, not a results file; merge also reads shard part directories "
                           f"(shards/.TARGET{PARTS_SUFFIX}){where}")
    if path.suffix == ".jsonl":
        raise ResultsError(f"{path}: a part file outside a shard's part directory (.TARGET{PARTS_SUFFIX})")
    return None


def _is_parts_directory(path: Path) -> bool:
    return path.is_dir() and path.name.startswith(".") and path.name.endswith(PARTS_SUFFIX)


def from_parts(directory: Path) -> dict:
    """A stopped shard's part files (Ctrl-C, a time limit, a machine lost) as a results document: every cell it
    finished, the cells lost with a process as crashed, the cells it never reached as not run."""
    target = directory.name[1:-len(PARTS_SUFFIX)]
    found = parts.read(directory)
    records = found.records
    reason = (f"stopped after {len(records)} records" + (f" of {found.planned} cells" if found.planned else "")
              + f"; read from its part files in {directory}")
    return results_document(records, [], targets=[{"name": target, "skipped": None, "failed": reason}],
                            not_run=parts.unfinished(found, target), causes=expectations.summaries(records))


def stopped_run(targets: list[str], shard_dir: Path) -> dict | None:
    """What a stopped `run` had measured: the shards that finished and the part files of those it stopped; None
    when nothing was measured."""
    documents = []
    for target in targets:
        shard = shard_dir / f"{target}.json"
        directory = parts.parts_dir(shard)
        if directory.is_dir():
            documents.append(from_parts(directory))
        elif shard.is_file():
            documents.append(read_results(shard))
    if not any(document["records"] for document in documents):
        return None
    return merge_documents(documents)


def status_in_words(status: int) -> str:
    """A shard's exit in words: pytest's exit status, or the signal that ended it."""
    return f"pytest exit status {status}" if status >= 0 else describe_exit(status)
