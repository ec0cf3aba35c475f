"""training.json: what `xentcompat train` writes and `xentcompat merge` accepts beside the shards.

    {"kind": "training", "schema_version": 1,
     "config": {... the experiment, see experiment.config_json ...},
     "environments": [{"target", "python", "platform", "frameworks": {name: version}}],
     "targets": [{"name", "skipped": reason | null, "failed": reason | null, "wall_seconds", "train_seconds",
                  "environment": {variable: value}}],
     "runs": [{"target", "framework", "backend", "regime", "variant", "api", "expression", "matrix_api", "causes",
               "seed", "machine", "metrics": {metric: [one value per epoch]}, "initial_test_accuracy", "first_nonfinite_step",
               "initial_weights_sha256", "final_weights_sha256", "seconds", "error": null | {"type", "message"}}]}

One run per machine × target × regime × variant × seed (a run without "machine", written before runs named theirs,
is given the machine of its document's environment for its target when merged). Non-finite numbers are the strings "nan", "inf", "-inf" in the file
(strict JSON) and floats once read. A file that does not hold to this is refused with one line naming the file, the
run and the field.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from xentcompat.results.documents import (NONFINITE, ResultsError, decode_number, document_kind, encode, read_json_file,
                                          write_json_atomic)
from xentcompat.results.shape import COUNT, ENVIRONMENT, NUMBER, POSITIVE, MapOf, Maybe, Object, problem

# the loss variants a training run compares (xentcompat.training.variants declares each framework's)
KINDS = {
    "fused": "logits into the fused loss (the reference)",
    "double-softmax": "a softmax layer, then the fused loss (softmax applied twice)",
    "softmax-then-log": "a softmax layer, then the log of its probabilities",
    "forgotten-flag": "logits into a loss that expects probabilities",
}
# what each epoch of a run measures (xentcompat.training.measure)
EPOCH_METRICS = ("test_accuracy", "train_loss", "grad_norm", "nonfinite_steps", "test_loss", "logit_spread",
                 "below_clip", "prob_underflow")


KIND = "training"
SCHEMA_VERSION = 1
RUN_KEY = ("machine", "target", "regime", "variant", "seed")
_STRINGS = ("target", "framework", "regime", "variant", "api", "expression", "initial_weights_sha256",
            "final_weights_sha256")


# what the report reads besides the runs (each run is checked by _run_problem)
REGIME = Object({"name": str, "dtype": str, "learning_rate": POSITIVE, "stress": bool, "description": str})
TARGET = Object({"name": str}, optional={"skipped": Maybe(str), "failed": Maybe(str), "wall_seconds": NUMBER,
                                         "train_seconds": Maybe(NUMBER), "runs": COUNT, "environment": MapOf(str)})
CONFIG = Object({"epochs": COUNT, "regimes": MapOf(REGIME)},
                optional={"optimizer": Object({}, optional={"momentum": NUMBER}), "seeds": [COUNT], "model": str,
                          "dataset": Object({}, optional={"name": str}), "batch_size": COUNT, "initialisation": str,
                          "data_order": str, "grad_norm": str, "nonfinite": str})
SHAPE = Object({"config": CONFIG, "environments": [ENVIRONMENT],
                "targets": [TARGET], "runs": [Object({"metrics": MapOf([NUMBER])})]})


class TrainingError(ResultsError):
    """A training.json that cannot be read; the message is one line naming the file and the problem."""


def run_entry(target: str, frameworks: dict, backend: str | None, variant, regime, seed: int, result=None,
              error: BaseException | None = None) -> dict:
    """One run as training.json holds it: the variant and regime named, the measurements or the error raised."""
    entry = {"target": target, "framework": "keras" if backend else target, "backend": backend,
             "framework_version": frameworks.get("keras" if backend else target), "regime": regime.name,
             "variant": variant.kind, "api": variant.api, "expression": variant.expression,
             "matrix_api": variant.matrix_api, "causes": list(variant.causes), "seed": seed}
    if result is not None:
        return {**entry, **result.to_json(), "error": None}
    return {**entry, "metrics": {}, "initial_test_accuracy": math.nan, "first_nonfinite_step": None,
            "initial_weights_sha256": "", "final_weights_sha256": "", "seconds": 0.0,
            "error": {"type": type(error).__name__, "message": (str(error).strip().splitlines() or [""])[0][:300]}}


def training_document(config: dict, environments: list[dict], targets: list[dict], runs: list[dict]) -> dict:
    return {"kind": KIND, "schema_version": SCHEMA_VERSION, "config": config, "environments": environments,
            "targets": targets, "runs": runs}


def write_training(path: Path, document: dict) -> None:
    write_json_atomic(path, document)


def looks_like_training(path: Path) -> bool:
    """Whether `path` holds a JSON object marked `"kind": "training"` (anything else is read as a shard)."""
    return document_kind(path) == KIND


def read_training(path: Path) -> dict:
    """A checked training document with its numbers decoded; TrainingError (one line) otherwise."""
    return check_training(read_json_file(path, "training", TrainingError), str(path))


def check_training(document, where: str) -> dict:
    """`document` checked against the schema, its non-finite strings decoded; TrainingError naming `where`."""
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise TrainingError(f"{where}: not a training document (no \"kind\": \"training\")")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise TrainingError(f"{where}: training schema version {document.get('schema_version')!r}, this suite "
                            f"reads {SCHEMA_VERSION}: re-run `xentcompat train`")
    found = problem(document, SHAPE)
    if found:
        raise TrainingError(f"{where}: {found}")
    epochs, regimes = document["config"]["epochs"], document["config"]["regimes"]
    if not _is_int(epochs) or epochs < 1:
        raise TrainingError(f"{where}: field 'config.epochs': expected a positive integer, got {epochs!r}")
    runs = []
    for index, run in enumerate(document["runs"]):
        wrong = _run_problem(run, epochs, regimes)
        if wrong:
            raise TrainingError(f"{where}: run #{index}: {wrong}")
        runs.append(_decoded(run))
    return {**document, "runs": runs}


def _run_problem(run, epochs: int, regimes: dict) -> str | None:
    if not isinstance(run, dict):
        return "expected an object"
    for name in _STRINGS:
        if not isinstance(run.get(name), str):
            return f"field {name!r}: expected a string, got {run.get(name)!r}"
    if run["regime"] not in regimes:
        return f"field 'regime': {run['regime']!r} is not one of config.regimes"
    if run["variant"] not in KINDS:
        return f"field 'variant': {run['variant']!r} is not one of {', '.join(KINDS)}"
    if not _is_int(run.get("seed")):
        return f"field 'seed': expected an integer, got {run.get('seed')!r}"
    for name in ("backend", "machine"):
        if run.get(name) is not None and not isinstance(run[name], str):
            return f"field {name!r}: expected a string or null, got {run[name]!r}"
    if not isinstance(run.get("causes"), list) or not all(isinstance(c, str) for c in run["causes"]):
        return "field 'causes': expected a list of cause ids"
    if run.get("error") is not None:
        error = run["error"]
        ok = isinstance(error, dict) and all(isinstance(error.get(k), str) for k in ("type", "message"))
        return None if ok else "field 'error': expected null or an object with 'type' and 'message'"
    return _metrics_problem(run.get("metrics"), epochs) or _scalars_problem(run)


def _metrics_problem(metrics, epochs: int) -> str | None:
    if not isinstance(metrics, dict):
        return "field 'metrics': expected an object"
    for name in EPOCH_METRICS:
        values = metrics.get(name)
        if not isinstance(values, list) or len(values) != epochs:
            found = f"{len(values)} values" if isinstance(values, list) else repr(values)
            return f"field 'metrics.{name}': expected {epochs} values (one per epoch), got {found}"
        bad = next((v for v in values if not _is_number(v)), None)
        if bad is not None or (name == "nonfinite_steps" and not all(_is_int(v) and v >= 0 for v in values)):
            return f"field 'metrics.{name}': expected numbers, got {bad if bad is not None else values!r}"
    return None


def _scalars_problem(run: dict) -> str | None:
    if not _is_number(run.get("initial_test_accuracy")):
        return f"field 'initial_test_accuracy': expected a number, got {run.get('initial_test_accuracy')!r}"
    step = run.get("first_nonfinite_step")
    if step is not None and not (_is_int(step) and step >= 0):
        return f"field 'first_nonfinite_step': expected null or a step index, got {step!r}"
    if not _is_number(run.get("seconds")):
        return f"field 'seconds': expected a number, got {run.get('seconds')!r}"
    return None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) or (isinstance(value, str)
                                                                                and value in NONFINITE)


def _decoded(run: dict) -> dict:
    metrics = {name: [decode_number(v) for v in values] for name, values in run.get("metrics", {}).items()}
    return {**run, "metrics": metrics, "initial_test_accuracy": decode_number(run.get("initial_test_accuracy"))}


def run_key(run: dict) -> tuple:
    return tuple(str(run.get(name)) for name in RUN_KEY)


def merge_training(documents: list[dict]) -> dict:
    """Several training documents (one per machine or CI job) as one: the targets and runs of all, each run once
    (the first in a canonical order, so the result does not depend on the order of the files). Their experiments
    must be the same but for the regimes each ran; TrainingError otherwise."""
    if len(documents) == 1:
        return documents[0]
    base = {k: v for k, v in documents[0]["config"].items() if k != "regimes"}
    for document in documents[1:]:
        other = {k: v for k, v in document["config"].items() if k != "regimes"}
        if other != base:
            differing = sorted(k for k in set(base) | set(other) if base.get(k) != other.get(k))
            raise TrainingError(f"training files of different experiments cannot be merged (config "
                                f"{', '.join(differing)} differ)")
    regimes = {name: regime for d in documents for name, regime in d["config"]["regimes"].items()}
    runs = sorted((r for d in documents for r in _machines_named(d)), key=lambda r: (run_key(r), _text(r)))
    kept = [run for index, run in enumerate(runs) if index == 0 or run_key(runs[index - 1]) != run_key(run)]
    return training_document({**documents[0]["config"], "regimes": regimes},
                             _distinct(e for d in documents for e in d["environments"]),
                             _distinct(t for d in documents for t in d["targets"]), kept)


def _machines_named(document: dict) -> list[dict]:
    """The document's runs, each naming its machine: a run that does not is given its target's environment's."""
    machines: dict[str, set[str]] = {}
    for environment in document["environments"]:
        if "machine" in environment and "target" in environment:
            machines.setdefault(environment["target"], set()).add(environment["machine"])
    return [run if run.get("machine") else {**run, "machine": _only(machines.get(run["target"], set()))}
            for run in document["runs"]]


def _only(names: set[str]) -> str | None:
    return next(iter(names)) if len(names) == 1 else None


def _text(value) -> str:
    return json.dumps(encode(value), sort_keys=True)


def _distinct(items) -> list:
    seen, kept = set(), []
    for item in items:
        text = _text(item)
        if text not in seen:
            seen.add(text)
            kept.append(item)
    return kept
