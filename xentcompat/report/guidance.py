"""Guidance: the questions users ask, answered from the records of this very run.

Every claim carries the findings and the number of records it rests on. A claim whose records are absent from the
run is left out, and so is a question with no claim left.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass

from xentcompat.report import decision
from xentcompat.report.findings import api_label
from xentcompat.report.forward_mode import reverse_mode
from xentcompat.report.tables import same_name_different_numbers
from xentcompat.results.record import Record

OK = ("ok", "ok")
SPARSE = "keras.losses.SparseCategoricalCrossentropy"
DENSE = "keras.losses.CategoricalCrossentropy"
# (softmax first, then the loss; the fused loss on logits that replaces it)
SOFTMAX_FIRST = (
    ("torch.nn.CrossEntropyLoss(softmax)", "torch.nn.CrossEntropyLoss"),
    ("torch.nn.NLLLoss(log(softmax))", "torch.nn.CrossEntropyLoss"),
    (f"{SPARSE}(from_logits=False)", f"{SPARSE}(from_logits=True)"),
    (f"{SPARSE}(from_logits=False)[external probs]", f"{SPARSE}(from_logits=True)"),
    (f"{DENSE}(from_logits=False)", f"{DENSE}(from_logits=True)"),
    (f"{DENSE}(from_logits=False)[external probs]", f"{DENSE}(from_logits=True)"),
    ("log(jax.nn.softmax)[label]", "jax.nn.log_softmax[label]"),
)


@dataclass(frozen=True)
class Claim:
    text: str
    findings: tuple[str, ...]
    records: int
    apis: tuple[str, ...] = ()  # the API labels it names as agreeing (`agree` True) or deviating (False)
    agree: bool | None = None


@dataclass(frozen=True)
class Answer:
    question: str
    claims: tuple[Claim, ...]


def guidance(records: list[Record], kinds: dict[str, str] | None = None) -> list[Answer]:
    """The answers; `kinds` (finding id -> cause kind) tells a precision note from a deviation, as the decision
    table does."""
    kinds = kinds or {}
    records = reverse_mode(records)  # forward mode: its own table (`forward_mode`)
    answers = [
        Answer("Should softmax be the last layer before the loss?", tuple(_softmax_first(records))),
        Answer("What does `from_logits=False` cost, and when?", tuple(_from_logits(records))),
        Answer("Which API should masked (-inf) logits go to?", tuple(_masking(records, kinds))),
        Answer("Which APIs are safe at a large vocabulary, per dtype?", tuple(_large_vocab(records, kinds))),
        Answer("What does each API do with an invalid label?", tuple(_invalid_input(records))),
        Answer("Does an option of the same name give the same number everywhere?", tuple(_same_option(records))),
        Answer("Does compiling the loss change the verdict?", tuple(_compiled(records))),
    ]
    return [answer for answer in answers if answer.claims]


def _key(record: Record) -> tuple:
    return record.backend, record.device, record.mode, record.case, record.dtype


def _pairs(records: list[Record], first: str, fused: str) -> list[tuple[Record, Record]]:
    """(softmax-first record, fused record) measured on the same backend, device, mode, case and dtype."""
    fused_by_key = {_key(r): r for r in records if r.api == fused}
    return [(r, fused_by_key[_key(r)]) for r in records if r.api == first and _key(r) in fused_by_key]


def _outcomes(record: Record) -> tuple[str, str]:
    """The record's outcomes, or ok/ok when they are its good outcome (a raised error on invalid input); ok/absent
    for an API that offers no gradient."""
    if record.finding:
        return record.loss.outcome, record.grad.outcome
    return ("ok", "absent") if record.grad.outcome == "absent" else OK


def _findings(records) -> tuple[str, ...]:
    return tuple(sorted({r.finding for r in records if r.finding}))


def _by_backend(pairs: list[tuple[Record, Record]]) -> dict[str | None, list[tuple[Record, Record]]]:
    groups: dict[str | None, list[tuple[Record, Record]]] = defaultdict(list)
    for pair in pairs:
        groups[pair[0].backend].append(pair)
    return groups


def _softmax_first(records: list[Record]) -> list[Claim]:
    claims = []
    for first, fused in SOFTMAX_FIRST:
        for backend, pairs in sorted(_by_backend(_pairs(records, first, fused)).items(), key=lambda i: str(i[0])):
            worse = [a for a, b in pairs if _outcomes(a) != OK and _outcomes(b) == OK]
            better = [a for a, b in pairs if _outcomes(a) == OK and _outcomes(b) != OK]
            where = f" on the Keras {backend} backend" if backend else ""
            text = (f"`{first}`{where} deviates on {len(worse)} of {len(pairs)} cells where `{fused}` agrees with "
                    f"the reference{_cases(worse)}; the reverse on {len(better)}.")
            claims.append(Claim(text, _findings(worse), 2 * len(pairs)))
    return claims


def _from_logits(records: list[Record]) -> list[Claim]:
    claims = []
    for first, fused in SOFTMAX_FIRST:
        if not first.startswith("keras."):
            continue
        for backend, pairs in sorted(_by_backend(_pairs(records, first, fused)).items(), key=lambda i: str(i[0])):
            worse = [a for a, b in pairs if _outcomes(a) != OK and _outcomes(b) == OK]
            outcomes = sorted({f"{a.loss.outcome}/{a.grad.outcome}" for a in worse})
            errors = _median_error(pairs)
            text = (f"On the {backend} backend, `{first}` costs {len(worse)} of {len(pairs)} cells against "
                    f"`{fused}`" + (f" (loss/gradient {', '.join(outcomes)}){_cases(worse)}" if worse else "")
                    + (f"; on the accuracy cases its median relative loss error is {errors[0]:.1g} against "
                       f"{errors[1]:.1g}" if errors else "") + ".")
            claims.append(Claim(text, _findings(worse), 2 * len(pairs)))
    return claims


def _median_error(pairs: list[tuple[Record, Record]]) -> tuple[float, float] | None:
    """Median |loss - reference| / |reference| of each side on the accuracy cases (the framework's own numbers)."""
    both = [(_relative(a), _relative(b)) for a, b in pairs if a.area == "accuracy"]
    both = [(x, y) for x, y in both if x is not None and y is not None]
    if not both:
        return None
    return statistics.median(a for a, _ in both), statistics.median(b for _, b in both)


def _relative(record: Record) -> float | None:
    value, reference = record.loss.value, record.loss.reference
    if not (_is_number(value) and _is_number(reference)) or reference == 0:
        return None
    return abs(value - reference) / abs(reference)


def _is_number(value) -> bool:
    return isinstance(value, (int, float))


HALF_AND_SINGLE = ("float16", "bfloat16", "float32")


def _masking(records: list[Record], kinds: dict[str, str]) -> list[Claim]:
    """Per dtype, the APIs that agree on every -inf case and those that deviate, with the number: the cells and the
    judgement of the decision table's -inf column (which reads fp32), realistic, eager, on the CPU."""
    return [claim for dtype in HALF_AND_SINGLE
            for claim in _safe_and_not(records, kinds, "masks", lambda r, d=dtype: _tagged(r, "mask") and r.dtype == d,
                                       f"{dtype}, -inf masks")]


def _large_vocab(records: list[Record], kinds: dict[str, str]) -> list[Claim]:
    """Per dtype, the APIs that agree on every large-vocabulary case (32k to 256k classes, the bf16 logit-scale sweep
    up to scale 40) and those that deviate: the decision table's vocabulary column, one dtype at a time."""
    return [claim for dtype in HALF_AND_SINGLE
            for claim in _safe_and_not(records, kinds, "vocab16",
                                       lambda r, d=dtype: _tagged(r, "large-vocab") and r.dtype == d,
                                       f"{dtype}, ≥ 32k classes")]


def _safe_and_not(records: list[Record], kinds: dict[str, str], key: str, selects, what: str) -> list[Claim]:
    """Two claims over the records `selects` picks (realistic, eager, CPU): the APIs whose cell is ✓ (or ℹ, a lower
    dtype inside and no failure), and those whose cell is ✗ with its number."""
    groups: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        if decision.realistic_eager(record) and selects(record):
            groups[api_label(record, with_place=False)].append(record)
    cells = {label: decision.describe(group, key, kinds) for label, group in groups.items()}
    agree = sorted(label for label, cell in cells.items() if cell.mark in ("✓", "ℹ"))
    deviate = sorted(label for label, cell in cells.items() if cell.mark == "✗")
    claims = []
    if agree:
        names = ", ".join(f"`{label}`" + (" (ℹ lower dtype inside)" if cells[label].mark == "ℹ" else "")
                          for label in agree)
        claims.append(Claim(f"{what}: agree on every case ({_count(groups, agree)}): {names}.", (),
                            sum(len(groups[label]) for label in agree), tuple(agree), True))
    if deviate:
        claims.append(Claim(f"{what}: deviate: " + "; ".join(f"`{label}` {cells[label].text}" for label in deviate)
                            + ".", tuple(sorted({f for label in deviate for f in cells[label].findings})),
                            sum(len(groups[label]) for label in deviate), tuple(deviate), False))
    return claims


def _count(groups: dict[str, list[Record]], labels: list[str]) -> str:
    cases = sorted({r.case for label in labels for r in groups[label]})
    return f"{len(cases)} case{'s' if len(cases) != 1 else ''}"


def _tagged(record: Record, fact: str) -> bool:
    return fact in record.tags


def _invalid_input(records: list[Record]) -> list[Claim]:
    rows: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        if record.invalid:
            rows[api_label(record)].append(record)
    claims = []
    clear = sorted(label for label, group in rows.items() if all(r.loss.outcome == "raised" for r in group))
    if clear:
        cases = sorted({r.case for label in clear for r in rows[label]})
        claims.append(Claim(f"Raise an error on every invalid input run ({', '.join(cases)}): "
                            + ", ".join(f"`{label}`" for label in clear) + ".", (),
                            sum(len(rows[label]) for label in clear)))
    for outcome, words in (("silent", "Return a value anyway (silent)"), ("crashed", "Crash the process")):
        hit = {label: sorted(r.case for r in group if r.loss.outcome == outcome)
               for label, group in sorted(rows.items())}
        hit = {label: cases for label, cases in hit.items() if cases}
        if hit:
            evidence = [r for label in hit for r in rows[label] if r.loss.outcome == outcome]
            claims.append(Claim(f"{words}: " + "; ".join(f"`{label}` on {', '.join(cases)}"
                                                         for label, cases in hit.items()) + ".",
                                _findings(evidence), len(evidence)))
    return claims


def _same_option(records: list[Record]) -> list[Claim]:
    claims = []
    for case, values in same_name_different_numbers(records).items():
        shown = ", ".join(f"`{label}` {value:.6g}" for label, value in values.items())
        claims.append(Claim(f"{case}: {shown}. Each agrees with its own documented semantics; the numbers differ "
                            "because the option means different things.", (), len(values)))
    return claims


def _compiled(records: list[Record]) -> list[Claim]:
    """Per API: the cells whose outcomes differ between eager and compiled execution (same device, case, dtype)."""
    eager = {(r.api, r.backend, r.device, r.case, r.dtype): r for r in records
             if r.mode == "eager"}
    changed: dict[str, list[tuple[Record, Record]]] = defaultdict(list)
    compared: dict[str, int] = defaultdict(int)
    for record in records:
        key = (record.api, record.backend, record.device, record.case, record.dtype)
        if record.mode != "compiled" or key not in eager:
            continue
        label = api_label(eager[key])
        compared[label] += 1
        if _outcomes(record) != _outcomes(eager[key]):
            changed[label].append((eager[key], record))
    claims = []
    for label in sorted(compared):
        pairs = changed.get(label, [])
        if not pairs:
            claims.append(Claim(f"`{label}`: the same verdict eager and compiled on all {compared[label]} cells.",
                                (), 2 * compared[label]))
            continue
        shifts = sorted({f"{'/'.join(_outcomes(a))} → {'/'.join(_outcomes(b))}" for a, b in pairs})
        claims.append(Claim(f"`{label}` changes verdict on {len(pairs)} of {compared[label]} cells when compiled "
                            f"({'; '.join(shifts)}){_cases([b for _, b in pairs])}.",
                            _findings([r for pair in pairs for r in pair]), 2 * compared[label]))
    return claims


def _cases(records: list[Record]) -> str:
    cases = sorted({r.case for r in records})
    if not cases:
        return ""
    shown = ", ".join(cases[:6]) + (f" and {len(cases) - 6} more" if len(cases) > 6 else "")
    return f" ({shown})"
