"""Gradient accumulation, from the records of the `accumulation` cases: what the documented recipe and the naive
one give against the batch's own mean, per API, and one sentence per framework saying how to accumulate."""

from __future__ import annotations

from collections import defaultdict

from xentcompat.report.findings import api_label, folded_apis
from xentcompat.report.numbers import number
from xentcompat.report.tables import Table
from xentcompat.results.record import Record

DOCUMENTED, NAIVE = "sum-over-count", "mean-of-means"
RECIPE_FACTS = {"recipe-sum-over-count": DOCUMENTED, "recipe-mean-of-means": NAIVE}  # reference/facts.py
BATCH_WORDS = {True: "padding rows ignored: uneven counts of targets", False: "every target counted"}
RECIPE_WORDS = {  # the calls each adapter makes for the documented recipe (xentcompat/adapters, accumulation.py)
    "torch": "sum each micro-batch (`reduction=\"sum\"`), add, divide by the batch's count",
    "keras": "sum each micro-batch (`reduction=\"sum\"`), add, divide by the batch's count",
    "jax": "take `.sum()` of each micro-batch's per-row losses, add, divide by the batch's count",
    "tensorflow": "take `tf.reduce_sum` of each micro-batch's per-row losses, add, divide by the batch's count",
    "transformers": "pass the batch's count of targets != -100 as `num_items_in_batch` to every micro-batch and add "
                    "the losses",
}
INTRO = ("One batch of 12 rows run as micro-batches, as a training loop accumulating gradients runs it: of 2, 7 and "
         "3 rows with every target counted, or of 4 rows each holding 1, 4 and 2 counted targets (the rest padding, "
         "ignore_index -100, as in language-model batches). The "
         "documented recipe sums each micro-batch and divides by the batch's count (what the API's mean counts: "
         "targets not ignored, or their class weights); the naive one averages the micro-batch means. The "
         "reference is the batch's own mean. Gradient: its norm against the reference's.")


def _recipe(record: Record) -> str | None:
    return next((recipe for fact, recipe in RECIPE_FACTS.items() if fact in record.tags), None)


def _batch(record: Record) -> tuple:
    """What pairs a record with its other recipe's: the facts of the batch and its options, not its case id."""
    facts = tuple(sorted(set(record.tags) - set(RECIPE_FACTS)))
    return facts, tuple(sorted((name, str(value)) for name, value in record.options.items()))


def _accumulation(records: list[Record]) -> list[tuple[Record, tuple, str]]:
    """(record, its batch, its recipe) for every record of a micro-batched case, selected by its recipe's fact."""
    return [(record, _batch(record), recipe) for record in records
            if (recipe := _recipe(record)) is not None]


def _result(record: Record) -> str:
    loss = record.loss
    value, reference = loss.value, loss.reference
    if not isinstance(value, float) or not isinstance(reference, float) or reference == 0:
        return loss.outcome
    relative = (value - reference) / abs(reference)
    norm, reference_norm = number(record.grad.norm), number(record.grad.reference_norm)  # "nan" on disk: a nan gradient
    gradient = f", ‖g‖ ×{norm / reference_norm:.3g}" if norm is not None and reference_norm else ""
    mark = "✓" if (loss.outcome, record.grad.outcome) == ("ok", "ok") else "✗"
    return f"{mark} {value:.4g} ({_percent(relative)}{gradient})"


def _percent(relative: float) -> str:
    """A signed percentage; below half the last digit shown, 0.00 % without a sign."""
    return "0.00%" if abs(relative) < 5e-5 else f"{relative:+.2%}"


def accumulation_table(records: list[Record]) -> Table | None:
    """Batch × the two recipes' results, with the APIs that gave them (softmax-twice APIs are another finding)."""
    rows: dict[tuple[str, str, str, str], list[Record]] = defaultdict(list)
    by_api: dict[tuple[str, tuple], dict[str, Record]] = defaultdict(dict)
    for record, batch, recipe in _accumulation(records):
        by_api[(api_label(record), batch)][recipe] = record
    for (label, batch), recipes in by_api.items():
        if DOCUMENTED not in recipes or NAIVE not in recipes:
            continue
        reference = recipes[DOCUMENTED].loss.reference
        facts, _ = batch
        key = (BATCH_WORDS["ignored-rows" in facts], f"{reference:.4g}" if isinstance(reference, float) else "—",
               _result(recipes[DOCUMENTED]), _result(recipes[NAIVE]))
        rows[key].append(recipes[DOCUMENTED])
    if not rows:
        return None
    return Table(("batch", "batch mean (reference)", "sum ÷ batch count", "mean of micro-batch means", "apis"),
                 tuple((*key, folded_apis(found)) for key, found in sorted(rows.items())))


def recipe_sentences(records: list[Record]) -> list[str]:
    """Per framework: how to accumulate, with the measured cells that back it and the naive recipe's worst error."""
    by_framework: dict[str, list[tuple[Record, str]]] = defaultdict(list)
    for record, _, recipe in _accumulation(records):
        by_framework[record.framework].append((record, recipe))
    sentences = []
    for framework, found in sorted(by_framework.items()):
        documented = [r for r, recipe in found if recipe == DOCUMENTED]
        exact = [r for r in documented if (r.loss.outcome, r.grad.outcome) == ("ok", "ok")]
        naive = [_relative(r) for r, recipe in found if recipe == NAIVE and r.finding == "XC-mean-of-micro-batch-means"]
        naive = [value for value in naive if value is not None]
        how = RECIPE_WORDS.get(framework, "sum each micro-batch, add, divide by the batch's count")
        sentence = f"{framework}: {how}: the batch's loss and gradient in {len(exact)} of {len(documented)} cells"
        others = sorted({r.finding for r in documented if r not in exact and r.finding})
        if others:
            sentence += f" (the others: {', '.join(others)}, deviating on the whole batch too)"
        if naive:
            sentence += f"; the mean of micro-batch means is off by up to {_percent(max(naive, key=abs))} in the loss"
        sentences.append(sentence + ".")
    return sentences


def _relative(record: Record) -> float | None:
    value, reference = record.loss.value, record.loss.reference
    if isinstance(value, float) and isinstance(reference, float) and reference:
        return (value - reference) / abs(reference)
    return None


def accumulation_intro(records: list[Record]) -> str:
    return " ".join([INTRO, *recipe_sentences(records)])
