"""Guidance comes from the records of the run; a claim without records is left out."""

from __future__ import annotations

from xentcompat.report.decision import typed
from xentcompat.report.guidance import guidance
from tests.test_records import record

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


def test_masking_and_large_vocab_claims_name_the_apis_and_are_absent_without_records():
    records = [cell(FUSED, "neg-inf-target", "masking"), cell(TWICE, "neg-inf-target", "masking", "finite"),
               cell(FUSED, "vocab", "large-vocab", "inf", dtype="float16"), cell(TWICE, "vocab", "large-vocab",
                                                                                dtype="float16")]
    clean, failing = answer(records, "Which API should masked").claims
    assert f"`{FUSED}`" in clean.text and TWICE not in clean.text
    assert f"`{TWICE}` on neg-inf-target" in failing.text
    [vocab] = answer(records, "Which dtypes").claims
    assert vocab.text.startswith("float16: 1 of 2 APIs agree") and f"deviating: `{FUSED}` (vocab)" in vocab.text
    assert guidance(typed([cell(FUSED, "calm", "accuracy")])) == []


def test_compiled_verdict_changes_are_listed_per_api():
    eager = [cell(FUSED, "calm", "accuracy"), cell(FUSED, "huge", "extreme", "inf"), cell(TWICE, "calm", "accuracy")]
    compiled = [{**r, "mode": "compiled"} for r in eager]
    compiled[1] = {**compiled[1], "loss": {**compiled[1]["loss"], "outcome": "ok"}, "finding": None}
    changed, same = answer(eager + compiled, "Does compiling").claims
    assert changed.text.startswith(f"`{FUSED}` changes verdict on 1 of 2 cells when compiled (inf/ok → ok/ok) (huge)")
    assert same.text == f"`{TWICE}`: the same verdict eager and compiled on all 1 cells."
    assert answer(eager, "Does compiling") is None
