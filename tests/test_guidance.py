"""Guidance comes from the records of the run; a claim without records is left out."""

from __future__ import annotations

from pathlib import Path

from xentcompat.report.decision import cause_kinds, decision_rows, typed
from xentcompat.report.guidance import guidance
from xentcompat.results.documents import read_results
from tests.test_records import record

KEPT = Path(__file__).resolve().parents[1] / "docs" / "report" / "results.json"

FUSED, TWICE = "torch.nn.CrossEntropyLoss", "torch.nn.CrossEntropyLoss(softmax)"
SPARSE = "keras.losses.SparseCategoricalCrossentropy"


def cell(api: str, case: str, area: str, loss: str = "ok", grad: str = "ok", dtype: str = "float32",
         backend: str | None = None, error_units: float = 0.5, value: float = 1.0) -> dict:
    finding = None if (loss, grad) == ("ok", "ok") else f"XC-{api[-8:]}{loss}"
    rec = record(case, loss=loss, api=api, area=area, dtype=dtype, backend=backend, finding=finding)
    rec["grad"] = {**rec["grad"], "outcome": grad}
    rec["loss"] = {**rec["loss"], "error_units": error_units, "value": value}
    return rec


def answer(records, question_start):
    return next((a for a in guidance(typed(records)) if a.question.startswith(question_start)), None)


def test_softmax_first_is_counted_against_the_fused_loss_on_the_same_cells():
    records = [cell(FUSED, "calm", "accuracy"), cell(TWICE, "calm", "accuracy", "inaccurate"),
               cell(FUSED, "masked", "masking"), cell(TWICE, "masked", "masking", "finite"),
               cell(FUSED, "huge", "extreme", "inf"), cell(TWICE, "huge", "extreme")]
    [claim] = answer(records, "Should softmax").claims
    assert claim.text.startswith(f"`{TWICE}` deviates on 2 of 3 cells where `{FUSED}` agrees")
    assert "(calm, masked)" in claim.text and claim.text.endswith("the reverse on 1.")
    assert claim.findings == ("XC-softmax)finite", "XC-softmax)inaccurate") and claim.records == 6


def test_from_logits_false_cost_is_per_backend_with_median_relative_errors():
    records = []
    for backend, clipped in (("jax", "finite"), ("torch", "ok")):
        records += [cell(f"{SPARSE}(from_logits=True)", "wrong", "extreme", backend=backend),
                    cell(f"{SPARSE}(from_logits=False)", "wrong", "extreme", clipped, backend=backend),
                    cell(f"{SPARSE}(from_logits=True)", "calm", "accuracy", backend=backend, error_units=0.25,
                         value=1 + 2e-8),
                    cell(f"{SPARSE}(from_logits=False)", "calm", "accuracy", backend=backend, error_units=3.0,
                         value=1 + 3e-7)]
    claims = answer(records, "What does `from_logits=False` cost").claims
    assert [c.text.split(",")[0] for c in claims] == ["On the jax backend", "On the torch backend"]
    assert "costs 1 of 2 cells" in claims[0].text and "(loss/gradient finite/ok) (wrong)" in claims[0].text
    assert "median relative loss error is 3e-07 against 2e-08" in claims[1].text and "costs 0 of 2" in claims[1].text
    assert "units" not in claims[1].text


def test_masking_and_large_vocab_answers_name_the_safe_and_the_deviating_apis_per_dtype_with_numbers():
    records = [cell(FUSED, "neg-inf-target", "masking"), cell(TWICE, "neg-inf-target", "masking", "finite"),
               cell(FUSED, "many-classes-256k-zeros", "large-vocab", "inf", dtype="float16"),
               cell(TWICE, "many-classes-256k-zeros", "large-vocab", dtype="float16"),
               cell(TWICE, "many-classes-256k-zeros", "large-vocab", "inaccurate", dtype="bfloat16")]
    safe, unsafe = answer(records, "Which API should masked").claims
    assert safe.text == f"float32, -inf masks: agree on every case (1 case): `{FUSED}`."
    assert (safe.apis, safe.agree, unsafe.apis, unsafe.agree) == ((FUSED,), True, (TWICE,), False)
    assert unsafe.text == f"float32, -inf masks: deviate: `{TWICE}` −inf target: loss 1 for 1."
    vocab = answer(records, "Which APIs are safe at a large vocabulary").claims
    assert [(c.text.split(":")[0], c.apis, c.agree) for c in vocab] == [
        ("float16, ≥ 32k classes", (TWICE,), True), ("float16, ≥ 32k classes", (FUSED,), False),
        ("bfloat16, ≥ 32k classes", (TWICE,), False)]
    assert guidance(typed([cell(FUSED, "random-moderate", "accuracy")])) == []


def test_a_precision_cause_alone_is_a_note_among_the_safe_apis_as_in_the_table():
    records = [cell(FUSED, "neg-inf-nontarget", "masking", "inaccurate")]
    [claim] = next(a for a in guidance(typed(records), {"XC-ropyLossinaccurate": "precision"})
                   if a.question.startswith("Which API should masked")).claims
    assert claim.agree and claim.text.endswith(f"`{FUSED}` (ℹ lower dtype inside).")


def test_the_guidance_and_the_decision_table_never_disagree_about_an_api():
    """On the kept report: an API the table marks ✓ (or ℹ) on -inf masks or large vocabularies is never listed as
    deviating there, and one it marks ✗ is listed as deviating in some dtype."""
    document = read_results(KEPT)
    records, kinds = typed(document["records"]), cause_kinds(document)
    answers = {a.question: a.claims for a in guidance(records, kinds)}
    masks = answers["Which API should masked (-inf) logits go to?"]
    vocab = answers["Which APIs are safe at a large vocabulary, per dtype?"]
    checked = 0
    for row in decision_rows(records, kinds):
        for key, claims in (("masks", [c for c in masks if c.text.startswith("float32")]), ("vocab16", vocab)):
            mark = row.cells[key].mark
            named = {c.agree for c in claims for label in c.apis if label.split(" [")[0] == row.choice.api}
            if mark in ("✓", "ℹ"):
                assert named == {True}, (row.choice.api, key, mark)
            elif mark == "✗":
                assert False in named, (row.choice.api, key, mark)
            checked += mark != "—"
    assert checked >= 30  # the kept report: every decision row, both columns


def test_compiled_verdict_changes_are_listed_per_api():
    eager = [cell(FUSED, "calm", "accuracy"), cell(FUSED, "huge", "extreme", "inf"), cell(TWICE, "calm", "accuracy")]
    compiled = [{**r, "mode": "compiled"} for r in eager]
    compiled[1] = {**compiled[1], "loss": {**compiled[1]["loss"], "outcome": "ok"}, "finding": None}
    changed, same = answer(eager + compiled, "Does compiling").claims
    assert changed.text.startswith(f"`{FUSED}` changes verdict on 1 of 2 cells when compiled (inf/ok → ok/ok) (huge)")
    assert same.text == f"`{TWICE}`: the same verdict eager and compiled on all 1 cells."
    assert answer(eager, "Does compiling") is None


def test_a_loss_without_gradient_reads_ok_absent_where_it_agrees():
    eager = [{**cell(FUSED, "calm", "accuracy", grad="absent"), "finding": None}]
    compiled = [{**cell(FUSED, "calm", "accuracy", "inaccurate", "absent"), "mode": "compiled"}]
    [changed] = answer(eager + compiled, "Does compiling").claims
    assert "(ok/absent → inaccurate/absent)" in changed.text
