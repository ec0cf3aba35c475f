"""The decision table: the loss APIs practitioners choose between × the failure modes they meet, from this run.

Rows (`CHOICES`) are the realistic choices, written as users write them; columns (`COLUMNS`) select realistic-tier
cells of one failure mode. A cell holds a mark and a number in the framework's terms ("loss 16.1 for 100, gradient
0"), and the findings it rests on:

- ✓ every selected cell has its good outcome (ok, or raised for invalid input);
- ✗ a cell deviates by a numerical, validation, masking or semantic cause (or one no cause explains);
- ℹ the only deviations are `precision` causes (an API computing in a lower dtype than it was given): a note on the
  row, not a failure of the column;
- — nothing of that kind ran.

Keras APIs get one row each: where backends differ, the cell names which backend does what. Stress-tier cells
(values at the dtype's limits) are never selected here; `stress_table` shows them apart.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Callable

from xentcompat.report.choices import CHOICES, Choice
from xentcompat.report.devices import device_pairs
from xentcompat.report.forward_mode import reverse_mode
from xentcompat.report.numbers import loss_words, number, shown
from xentcompat.results.record import Record

DECISION_INTRO = ("A cell is one API × case × dtype × device × mode, checked against the float64 reference. "
                  "✓ agrees with the reference (or raises on invalid input); ✗ deviates (the text links its "
                  "finding, + links further findings of the column); ℹ computes in a lower dtype than it was given "
                  "(a precision cause, not a failure); — not run. \"loss 16.1 for 100\": the API returned 16.1 "
                  "where the reference is 100. Realistic cells on the CPU only (what models produce); the dtype's "
                  "limits are in the stress table below. The CUDA column compares every cell measured on both "
                  "devices: ✗ where CUDA deviates where the CPU does not (each such cell is listed under Varies by "
                  "device).")
STRESS_INTRO = ("Values at the dtype's limits, which models do not produce: they never decide a row above.")

PRECISION = "precision"
DEVICE_ASSERT = "device-side assert"  # a device fault, in the words CUDA reports it
BACKEND_NAMES = {"tensorflow": "TF", "jax": "JAX", "torch": "torch"}


# the words a cell names a case by
CASE_WORDS = {"neg-inf-nontarget": "−inf non-target", "neg-inf-target": "−inf target",
              "neg-inf-row": "all-−inf row", "ignore-index-row-neg-inf": "ignored −inf row",
              "label-smoothing-neg-inf": "smoothing + −inf",
              "label-equals-C": "label = C", "label-minus-1": "label −1", "label-far-negative": "label −1000",
              "label-huge": "label 2³¹−1"}
FIDELITY_AREAS = ("accuracy", "extreme", "large-vocab")
# the example a cell shows, among its worst outcomes: the case practitioners meet first
EXAMPLE_ORDER = ("confident-wrong-gap100", "confident-wrong-gap30", "confident-wrong-gap10000", "neg-inf-nontarget",
                 "neg-inf-target", "label-smoothing-neg-inf", "many-classes-256k-random")


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    selects: Callable[[Record], bool]
    short: str = ""  # the name in a sentence

    @property
    def name(self) -> str:
        return self.short or self.title


def _eager(record: Record) -> bool:
    return record.mode == "eager" and record.tier == "realistic" and record.device == "cpu"


def _tagged(record: Record, *facts: str) -> bool:
    """Whether some fact of the record's input (`reference.facts`) is one of `facts`: a column selects by what the
    input holds, not by the case's name."""
    return not set(record.tags).isdisjoint(facts)


COLUMNS: tuple[Column, ...] = (
    Column("confident", "confident logits (fp32, gaps 30–10⁴)",
           lambda r: _eager(r) and _tagged(r, "confident-right", "confident-wrong") and r.dtype == "float32",
           "confident logits"),
    Column("masks", "−inf masks (fp32)", lambda r: _eager(r) and _tagged(r, "mask") and r.dtype == "float32",
           "−inf masks"),
    Column("vocab16", "large vocab (≥ 32k classes): fp16, bf16, fp32",
           lambda r: _eager(r) and _tagged(r, "large-vocab") and r.dtype != "float64", "large vocabularies"),
    Column("labels", "labels out of range", lambda r: _eager(r) and _tagged(r, "label-out-of-range")),
    Column("float64", "float64", lambda r: _eager(r) and r.dtype == "float64" and r.area in FIDELITY_AREAS,
           "float64"),
    Column("compiled", "compiled ≠ eager", lambda r: r.tier == "realistic" and r.device == "cpu", "compiled"),
    Column("cuda", "on CUDA (vs CPU)", lambda r: True, "CUDA"),
)


def realistic_eager(record: Record) -> bool:
    """What the decision table's columns read: realistic cells, eager, on the CPU."""
    return _eager(record)


def _stressed(record: Record) -> bool:
    return record.mode == "eager" and record.tier == "stress" and record.device == "cpu"


STRESS_COLUMNS: tuple[Column, ...] = (
    Column("huge", "logits beyond 2¹⁵ (dtype maxima, gaps of 10³⁰)", lambda r: _stressed(r) and _tagged(r, "huge-logit")),
    Column("subnormals", "subnormal logits", lambda r: _stressed(r) and _tagged(r, "subnormal-logit")),
    Column("pos-inf", "+inf logits", lambda r: _stressed(r) and _tagged(r, "pos-inf-logit")),
)


@dataclass(frozen=True)
class Cell:
    mark: str  # ✓ ✗ ℹ —
    text: str  # the number a practitioner reads
    findings: tuple[str, ...]
    what: str = ""  # what the example does, where the text leaves it to the finding (the CUDA column)


@dataclass(frozen=True)
class Row:
    choice: Choice
    cells: dict[str, Cell]  # column key -> cell
    notes: tuple[str, ...]  # precision findings on this row
    realistic: int  # realistic cells of this API in the run
    deviating: int  # of them, deviating by a non-precision cause
    ran: frozenset = frozenset()  # (case, dtype, mode, backend) of its realistic cells
    deviated: frozenset = frozenset()  # those of them that deviate
    loss_only: bool = False  # the API offers no gradient (every record's gradient `absent`): its cells judge the loss

    @property
    def form_words(self) -> str:
        """The choice's form, and "loss only" where it offers no gradient: "fused", "fused; loss only"."""
        return f"{self.choice.form}; loss only" if self.loss_only else self.choice.form


def typed(records: list[dict]) -> list[Record]:
    return [Record.from_json(record) for record in records]


def cause_kinds(document: dict) -> dict[str, str]:
    """Finding id -> its cause's kind, from the document's causes table."""
    return {f"XC-{cause_id}": cause["kind"] for cause_id, cause in (document.get("causes") or {}).items()}


def decision_rows(records: list[Record], kinds: dict[str, str],
                  columns: tuple[Column, ...] = COLUMNS) -> list[Row]:
    """One row per choice that ran, in `CHOICES` order; `kinds`: finding id -> cause kind. `columns`: `COLUMNS`
    (realistic cells) or `STRESS_COLUMNS`. Reverse-mode gradients only (forward mode has its own table)."""
    by_api: dict[str, list[Record]] = defaultdict(list)
    for record in reverse_mode(records):
        by_api[record.api].append(record)
    compiled = {record.framework for record in records if record.mode == "compiled"}
    rows = []
    for choice in CHOICES:
        ran = by_api.get(choice.api)
        if ran:
            rows.append(_row(choice, ran, kinds, columns, ran[0].framework in compiled))
    return rows


def _row(choice: Choice, records: list[Record], kinds: dict[str, str], columns: tuple[Column, ...],
         compiled_ran: bool = True) -> Row:
    cells = {column.key: _column_cell(column, records, kinds, compiled_ran) for column in columns}
    realistic = [r for r in records if r.tier == "realistic" and r.device == "cpu"]  # CUDA: its own column
    notes = tuple(sorted({r.finding for r in realistic if r.finding and kinds.get(r.finding) == PRECISION}))
    deviating = sum(1 for r in realistic if _deviates(r, kinds))
    return Row(choice, cells, notes, len(realistic), deviating, frozenset(_place_of(r) for r in realistic),
               frozenset(_place_of(r) for r in realistic if _deviates(r, kinds)),
               not any(r.has_gradient for r in records))


def _place_of(record: Record) -> tuple:
    return record.case, record.dtype, record.mode, record.backend


def _deviates(record: Record, kinds: dict[str, str]) -> bool:
    return bool(record.finding) and kinds.get(record.finding) != PRECISION


def _column_cell(column: Column, records: list[Record], kinds: dict[str, str], compiled_ran: bool = True) -> Cell:
    selected = [r for r in records if column.selects(r)]
    if column.key == "compiled":
        return _compiled_cell(selected, kinds, compiled_ran)
    if column.key == "cuda":
        return _cuda_cell(selected, kinds)
    if not selected:
        return Cell("—", "not run", ())
    groups = _by_behaviour(selected, column.key, kinds)
    if len(groups) == 1:
        return next(iter(groups))
    return _combined(groups)


def _by_behaviour(records: list[Record], key: str, kinds: dict[str, str]) -> dict[Cell, list[str | None]]:
    """The cell each backend's records make (one entry for a framework without backends), backends per cell."""
    per_backend: dict[str | None, list[Record]] = defaultdict(list)
    for record in records:
        per_backend[record.backend].append(record)
    described = {backend: _describe(group, key, kinds) for backend, group in per_backend.items()}
    alike: dict[tuple, list[str | None]] = defaultdict(list)  # backends with the same mark and causes share one cell
    for backend in sorted(described, key=str):
        alike[(described[backend].mark, described[backend].findings)].append(backend)
    cells: dict[Cell, list[str | None]] = {}
    for backends in alike.values():  # the shared cell gives the numbers of its worst backend
        worst = max(backends, key=lambda b: _worst_severity(per_backend[b], kinds))
        cells[described[worst]] = backends
    return cells


def _worst_severity(records: list[Record], kinds: dict[str, str]) -> tuple:
    return max((_severity(r) for r in records if _deviates(r, kinds)), default=(float("-inf"),))


def _combined(groups: dict[Cell, list[str | None]]) -> Cell:
    """Backends that deviate say how; those that agree are named with their mark only."""
    marks = {cell.mark for cell in groups}
    mark = "✗" if "✗" in marks else "ℹ" if "ℹ" in marks else "✓"
    parts: dict[str, list[str]] = defaultdict(list)  # text -> backends
    for cell, backends in sorted(groups.items(), key=lambda item: "✗ℹ✓—".index(item[0].mark)):
        text = {"✓": " ✓", "—": " —", "ℹ": f": ℹ {cell.text}"}.get(cell.mark, f": {cell.text}")
        parts[text] += [BACKEND_NAMES.get(b, str(b)) for b in backends]
    findings = tuple(sorted({f for cell in groups for f in cell.findings}))
    return Cell(mark, "; ".join(f"{', '.join(backends)}{text}" for text, backends in parts.items()), findings)


FORMS = ("fused", "log-softmax", "softmax first", "double softmax")  # on a tie, the first is named


def recommended(rows: list[Row]) -> Row:
    """The choice with the fewest deviations on the cells every choice of `rows` ran (an API that offers an option
    the others lack, label smoothing say, runs cases they cannot: those do not count against it); on a tie the
    fused form, then the smaller share of deviating cells over everything it ran."""
    shared = frozenset.intersection(*(row.ran for row in rows))
    return min(rows, key=lambda row: (len(row.deviated & shared) if shared else 0, FORMS.index(row.choice.form)
                                      if row.choice.form in FORMS else len(FORMS),
                                      row.deviating / max(row.realistic, 1)))


def verdict_sentences(rows: list[Row]) -> list[str]:
    """Per framework, from the rows: the recommended choice (`recommended`), and what each softmax-first form costs
    (its deviating cells and the first failure mode's number)."""
    sentences = []
    for framework in dict.fromkeys(row.choice.framework for row in rows):
        mine = [row for row in rows if row.choice.framework == framework]
        best = recommended(mine)
        use = "use " if len(mine) > 1 else ""  # a framework of one choice (a metric) is measured, not chosen
        text = f"**{framework}**: {use}`{best.choice.label}` ({_count_words(best)}{_on_shared_cells(best, mine)}" \
            + ("; the loss alone: it offers no gradient" if best.loss_only else "") + ")"
        first = [row for row in mine if row.choice.form in ("softmax first", "double softmax") and row is not best]
        costs = [f"`{row.choice.label}` {row.deviating} of {row.realistic}" + (_example(row) if i == 0 else "")
                 + _trained(row) for i, row in enumerate(first)]
        sentences.append(text + _on_cuda(best) + (f"; softmax first deviates: {', '.join(costs)}" if costs else "")
                         + ".")
    return sentences


def _on_shared_cells(best: Row, rows: list[Row]) -> str:
    """Where another logits-taking choice deviates on a smaller share of its own cells (it ran fewer: an option it
    lacks), the count on the cells every choice ran, which decided: "; on the 230 cells every choice ran: 15, `X` 15"."""
    share = best.deviating / max(best.realistic, 1)
    lower = [row for row in rows if row is not best and row.choice.form in FORMS[:2]
             and row.deviating / max(row.realistic, 1) < share]
    shared = frozenset.intersection(*(row.ran for row in rows))
    if not lower or not shared:
        return ""
    others = ", ".join(f"`{row.choice.label}` {len(row.deviated & shared)}" for row in lower)
    return f"; on the {len(shared)} cells every choice ran: {len(best.deviated & shared)}, {others}"


def _on_cuda(row: Row) -> str:
    """What changes for the recommended choice on a GPU, where CUDA deviates where the CPU does not."""
    cell = row.cells.get("cuda")
    if not cell or cell.mark != "✗":
        return ""
    dies = ", the CUDA context dies" if cell.what == DEVICE_ASSERT else ""
    return f"; on CUDA {cell.text} ({cell.what}{dies})"


def _count_words(row: Row) -> str:
    if not row.deviating:
        return f"all {row.realistic} realistic cells agree"
    return f"{row.deviating} of {row.realistic} realistic cells deviate"


def _example(row: Row) -> str:
    first = next((c for c in COLUMNS if c.key in row.cells and row.cells[c.key].mark == "✗"), None)
    return f" ({first.name}: {_first_clause(row.cells[first.key].text)})" if first else ""


def _trained(row: Row) -> str:
    """What training with it reached, where that differs from the fused loss (the training column's words)."""
    trained = row.cells.get("training")
    return f" [training: {trained.text}]" if trained and trained.mark == "✗" else ""


def _first_clause(text: str) -> str:
    return text.split("; ")[0]


def describe(records: list[Record], key: str, kinds: dict[str, str]) -> Cell:
    """The cell of one API's (one backend's) records under column `key`'s judgement: ✗ with the worst deviation's
    number, ℹ for a precision cause alone, ✓ with the count."""
    return _describe(records, key, kinds)


def _describe(records: list[Record], key: str, kinds: dict[str, str]) -> Cell:
    if key == "labels":
        return _labels_cell(records)
    bad = [r for r in records if _deviates(r, kinds)]
    precision = sorted({r.finding for r in records if r.finding and kinds.get(r.finding) == PRECISION})
    if bad:
        worst = max(bad, key=_severity)
        return Cell("✗", _what(worst, key), _first_of(worst, bad))
    if precision:
        example = max((r for r in records if r.finding), key=_relative_error)
        return Cell("ℹ", f"lower dtype inside: {loss_words(example)}", tuple(precision))
    return Cell("✓", _good_text(records, key), ())


def _what(record: Record, key: str) -> str:
    where = {"masks": f"{case_words(record.case)}: ", "vocab16": f"{DTYPE_WORDS.get(record.dtype, record.dtype)}: ",
             "float64": ""}.get(key, "")
    return where + loss_words(record)


DTYPE_WORDS = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "float64": "fp64"}


def case_words(case: str) -> str:
    return CASE_WORDS.get(case, case)


def _good_text(records: list[Record], key: str) -> str:
    if key == "confident":
        gap = max(number(r.scale) or 0 for r in records)
        return f"exact to gap {shown(gap)}"
    return f"{len(records)} agree"


def _severity(record: Record) -> tuple:
    """Worst outcome first; among equals, the case practitioners meet first."""
    order = ("nan", "inf", "finite", "silent", "inaccurate", "crashed", "raised", "ok", "absent")
    outcomes = (record.loss.outcome, record.grad.outcome)
    preference = EXAMPLE_ORDER.index(record.case) if record.case in EXAMPLE_ORDER else len(EXAMPLE_ORDER)
    return (-min(order.index(o) for o in outcomes), -preference, _relative_error(record))


def _relative_error(record: Record) -> float:
    value, reference = number(record.loss.value), number(record.loss.reference)
    if value is None or reference is None or reference == 0:
        return 0.0
    return abs(value - reference) / abs(reference)


def _labels_cell(records: list[Record]) -> Cell:
    """Invalid labels: raising is the good outcome; a returned value (silent) names the label and the value."""
    silent = [r for r in records if r.loss.outcome == "silent"]
    crashed = [r for r in records if r.loss.outcome == "crashed"]
    raised = [r for r in records if r.loss.outcome == "raised"]
    findings = tuple(sorted({r.finding for r in silent + crashed if r.finding}))
    if silent:
        first = silent[0]
        return Cell("✗", f"returns {shown(first.loss.value)} for {case_words(first.case)} "
                         f"({len(silent)}/{len(records)})", findings)
    if crashed:
        return Cell("✗", f"crashes the process on {', '.join(r.case for r in crashed)}", findings)
    kinds = sorted({r.error.type for r in raised if r.error})
    return Cell("✓", f"raises {'/'.join(kinds)}", ())


def _compiled_cell(records: list[Record], kinds: dict[str, str], compiled_ran: bool = True) -> Cell:
    """Eager against compiled on the same cells. With no compiled cell: the API has no compiled mode when others of
    its framework ran compiled, else the run did not run compiled cells (a property of the run, not of the API)."""
    eager = {_place(r): r for r in records if r.mode == "eager"}
    pairs = [(eager[_place(r)], r) for r in records if r.mode == "compiled" and _place(r) in eager]
    if not pairs:
        return Cell("—", "no compiled mode" if compiled_ran else "not run: an eager run (--mode all adds it)", ())
    changed = [(a, b) for a, b in pairs if _verdict(a) != _verdict(b)]
    if not changed:
        return Cell("✓", f"same verdict on {len(pairs)} cells", ())
    a, b = changed[0]
    text = (f"{len(changed)}/{len(pairs)} differ: {case_words(b.case)} {DTYPE_WORDS.get(b.dtype, b.dtype)} "
            f"{_verdict_words(a)} → {_verdict_words(b)}")
    findings = _first_of(b if b.finding else a, [r for pair in changed for r in pair])
    precision_only = all(kinds.get(f) == PRECISION for f in findings) and findings
    return Cell("ℹ" if precision_only else "✗", text, findings)


def _cuda_cell(records: list[Record], kinds: dict[str, str]) -> Cell:
    """Each cell measured on the CPU and on CUDA: ✓ where every one gives the same verdict, or CUDA differs only
    where the CPU deviates; ✗ where CUDA deviates (by a non-precision cause) where the CPU does not."""

    pairs = device_pairs(records)
    if not pairs:
        return Cell("—", "not run on CUDA", ())
    changed = [(a, b) for a, b in pairs if _verdict(a) != _verdict(b)]
    if not changed:
        return Cell("✓", f"same on {len(pairs)}", ())
    worse = [(a, b) for a, b in changed if _deviates(b, kinds) and not _deviates(a, kinds)]
    a, b = max(worse or changed, key=lambda pair: (pair[1].mode == "eager", _severity(pair[1])))
    findings = _first_of(b if b.finding else a, [r for pair in changed for r in pair])
    if not worse:
        return Cell("✓", f"{len(changed)}/{len(pairs)} differ, none worse", findings)
    return Cell("✗", f"{len(worse)}/{len(pairs)} worse: {case_words(b.case)}", findings, _verdict_words(b))


def _first_of(example: Record, records: list[Record]) -> tuple[str, ...]:
    """The findings of `records`, the example's first (the cell's text links to it)."""
    others = sorted({r.finding for r in records if r.finding} - {example.finding})
    return tuple([example.finding] if example.finding else []) + tuple(others)


def _verdict_words(record: Record) -> str:
    if record.invalid and not record.finding:
        return "raises"  # the good outcome of invalid input
    if record.error and record.error.device_fault:
        return DEVICE_ASSERT
    loss, grad = _verdict(record)
    return loss if loss == grad else f"{loss}/{grad}"


def _place(record: Record) -> tuple:
    return record.backend, record.device, record.case, record.dtype


def _verdict(record: Record) -> tuple[str, str]:
    """ok/ok for a good outcome (raised on invalid input counts as good), else the observed pair."""
    return ("ok", "ok") if not record.finding else record.observed
