"""The decision table and the per-framework sentences: numbers in the framework's terms, precision causes as a note,
stress cells apart, invalid labels judged by raising, compiled against eager."""

from __future__ import annotations

import pytest

from xentcompat.report import decision
from xentcompat.report.numbers import loss_words
from xentcompat.results.record import Record
from tests.test_records import record

CE, NLL_LOG, TWICE = "torch.nn.CrossEntropyLoss", "torch.nn.NLLLoss(log(softmax))", "torch.nn.CrossEntropyLoss(softmax)"
KINDS = {"XC-clip": "clipping", "XC-floatx": "precision", "XC-nan": "underflow", "XC-silent": "validation"}


def cell(api: str, case: str, loss="ok", grad="ok", finding=None, **overrides) -> Record:
    values = overrides.pop("values", (100.0, 100.0))
    norms = overrides.pop("norms", (1.4, 1.4))
    grad_units = overrides.pop("grad_units", 1.0)
    base = record(case, api=api, finding=finding, tier=overrides.pop("tier", "realistic"), scale=100.0,
                  area=overrides.pop("area", "extreme"), **overrides)
    base["loss"] = {"outcome": loss, "value": values[0], "reference": values[1], "error_units": 1.0}
    base["grad"] = {"outcome": grad, "max_error_units": grad_units, "nan_count": int(grad == "nan"), "inf_count": 0,
                    "norm": norms[0], "reference_norm": norms[1]}
    return Record.from_json(base)


def test_a_gradient_off_at_its_own_norm_says_how_far_its_elements_are_off():
    """A gradient whose norm is right (×1 to two digits) but whose elements are off reads by how much, not "×1"."""
    record = cell(CE, "confident-right-gap30", "ok", "inaccurate", norms=(1.00004, 1.0), grad_units=8.0)
    assert loss_words(record) == "gradient elements off 3.2× the tolerance (norm ×1)"


@pytest.mark.parametrize("loss, grad, values, norms, error, words", [
    ("inaccurate", "inaccurate", (16.118, 100.0), (0.0, 1.4), None, "loss 16.1 for 100, gradient 0"),
    ("ok", "nan", (100.0, 100.0), ("nan", 1.4), None, "NaN gradient"),
    ("inaccurate", "inaccurate", (2.46, 100.0), (0.5, 1.0), None, "loss 2.46 for 100, gradient ×0.5"),
    ("inaccurate", "ok", (100.02, 100.0), (1.0, 1.0), None, "loss 100 for 100 (rel. 0.0002)"),
    ("finite", "ok", (16.1, "inf"), (1.0, 1.0), None, "loss 16.1 for inf"),
    ("raised", "raised", (None, 1.0), (None, None), {"type": "IndexError", "message": "out of bounds"},
     "raises IndexError"),
    ("silent", "silent", (2.91, None), (None, None), None, "returns 2.91"),
    ("ok", "ok", (1.0, 1.0), (1.0, 1.0), None, "agrees"),
])
def test_a_measurement_in_the_frameworks_terms(loss, grad, values, norms, error, words):
    assert loss_words(cell(CE, "x", loss, grad, values=values, norms=norms, error=error)) == words


def test_a_precision_cause_is_a_note_not_a_failure_and_stress_never_decides():
    records = [cell(CE, "confident-wrong-gap100"),
               cell(CE, "uniform-zeros", "inaccurate", "ok", "XC-floatx", dtype="float64", area="accuracy",
                    values=(2.3025851, 2.302585092994046)),
               cell(CE, "near-max-float16", "inf", "ok", "XC-nan", dtype="float16", tier="stress",
                    values=("inf", 43700.0))]
    [row] = decision.decision_rows(records, KINDS)
    assert row.cells["confident"] == decision.Cell("✓", "exact to gap 100", ())
    assert row.cells["float64"].mark == "ℹ" and row.cells["float64"].findings == ("XC-floatx",)
    assert row.notes == ("XC-floatx",) and row.deviating == 0 and row.realistic == 2
    [stressed] = decision.decision_rows(records, KINDS, decision.STRESS_COLUMNS)
    assert stressed.cells["huge"] == decision.Cell("✗", "loss inf for 4.37e4", ("XC-nan",))


def test_the_sentence_names_the_cleanest_choice_and_what_softmax_first_costs():
    records = [cell(CE, "confident-wrong-gap100"), cell(CE, "uniform-zeros", area="accuracy"),
               cell(NLL_LOG, "confident-wrong-gap100", "inaccurate", "nan", "XC-nan", values=(100.0004, 100.0),
                    norms=("nan", 1.4)),
               cell(NLL_LOG, "uniform-zeros", area="accuracy"),
               cell(TWICE, "confident-wrong-gap100", "inaccurate", "inaccurate", "XC-clip", values=(2.46, 100.0),
                    norms=(0.5, 1.4)),
               cell(TWICE, "uniform-zeros", "inaccurate", "ok", "XC-clip", area="accuracy", values=(1.5, 2.3))]
    [sentence] = decision.verdict_sentences(decision.decision_rows(records, KINDS))
    assert sentence == ("**PyTorch**: use `CrossEntropyLoss(logits)` (all 2 realistic cells agree); softmax first "
                        "deviates: `NLLLoss(log(softmax(logits)))` 1 of 2 (confident logits: loss 100 for 100 "
                        "(rel. 4e-06), NaN gradient), `CrossEntropyLoss(softmax(logits))` 2 of 2.")


def test_the_recommended_choice_is_compared_on_the_cells_every_choice_ran():
    """CrossEntropyLoss runs a label-smoothing case NLLLoss cannot (and deviates there, in float16): over the cells
    both ran they tie, so the fused form is named; a deviation both could meet still decides."""
    nll = "torch.nn.NLLLoss(log_softmax)"
    shared = [cell(api, case, area="accuracy") for api in (CE, nll) for case in ("uniform-zeros", "random-moderate")]
    smoothing = cell(CE, "label-smoothing-8k-classes", "inf", "ok", "XC-nan", dtype="float16", area="large-vocab",
                     values=("inf", 9.78))
    rows = decision.decision_rows(shared + [smoothing], KINDS)
    assert decision.recommended(rows).choice.api == CE
    [sentence] = decision.verdict_sentences(rows)
    assert sentence.startswith("**PyTorch**: use `CrossEntropyLoss(logits)` (1 of 3 realistic cells deviate; on the "
                               "2 cells every choice ran: 0, `NLLLoss(log_softmax(logits))` 0)")
    worse = [cell(CE, "random-moderate", "inaccurate", "ok", "XC-nan", area="accuracy", values=(2.0, 2.1))]
    rows = decision.decision_rows([r for r in shared if not (r.api == CE and r.case == "random-moderate")]
                                  + worse + [smoothing], KINDS)
    assert decision.recommended(rows).choice.api == nll


def test_invalid_labels_are_good_when_raised_and_named_with_their_value_when_silent():
    raised = {"type": "IndexError", "message": "Target 5 is out of bounds."}
    records = [cell(CE, case, "raised", "raised", invalid="bad label", error=raised, area="labels")
               for case in ("label-equals-C", "label-minus-1", "label-far-negative", "label-huge")]
    records += [cell(NLL_LOG, "label-minus-1", "silent", "silent", "XC-silent", invalid="bad label", area="labels",
                     values=(2.91, None)),
                cell(NLL_LOG, "label-equals-C", "raised", "raised", invalid="bad label", error=raised, area="labels")]
    fused, nll = decision.decision_rows(records, KINDS)
    assert fused.cells["labels"] == decision.Cell("✓", "raises IndexError", ())
    assert nll.cells["labels"] == decision.Cell("✗", "returns 2.91 for label −1 (1/2)", ("XC-silent",))


def test_compiled_is_compared_with_eager_cell_by_cell():
    """And where a choice has no compiled cell: the API has none when another API of its framework ran compiled;
    otherwise the run was eager only, which the cell says (not a property of the API)."""
    eager = [cell(CE, "confident-wrong-gap100"), cell(CE, "uniform-zeros", area="accuracy")]
    compiled = [cell(CE, "confident-wrong-gap100", mode="compiled"),
                cell(CE, "uniform-zeros", "nan", "nan", "XC-nan", mode="compiled", area="accuracy")]
    [row] = decision.decision_rows(eager + compiled, KINDS)
    assert row.cells["compiled"] == decision.Cell("✗", "1/2 differ: uniform-zeros fp32 ok → nan", ("XC-nan",))
    [alone] = decision.decision_rows(eager, KINDS)
    assert alone.cells["compiled"] == decision.Cell("—", "not run: an eager run (--mode all adds it)", ())
    other = cell(NLL_LOG, "uniform-zeros", mode="compiled", area="accuracy")
    eager_only_api = [r for r in decision.decision_rows(eager + [other], KINDS) if r.choice.api == CE]
    assert eager_only_api[0].cells["compiled"] == decision.Cell("—", "no compiled mode", ())


def test_keras_backends_that_agree_share_a_cell_and_the_odd_one_says_how():
    api = "keras.losses.SparseCategoricalCrossentropy(from_logits=False)"
    records = [cell(api, "confident-wrong-gap100", backend=b, framework="keras") for b in ("tensorflow",)]
    records += [cell(api, "confident-wrong-gap100", "inaccurate", "inaccurate", "XC-clip", backend=b,
                     framework="keras", values=(16.1, 100.0), norms=(0.0, 1.4)) for b in ("jax", "torch")]
    [row] = decision.decision_rows(records, KINDS)
    expected = decision.Cell("✗", "JAX, torch: loss 16.1 for 100, gradient 0; TF ✓", ("XC-clip",))
    assert row.cells["confident"] == expected


def test_backends_that_share_a_cause_show_the_worst_ones_numbers():
    """JAX and TF deviate by one cause, JAX by far less: their shared cell gives TF's numbers, not the first one's."""
    api = "keras.losses.SparseCategoricalCrossentropy(from_logits=False)"
    values = {"jax": (99.9, 100.0), "tensorflow": (16.1, 100.0)}
    records = [cell(api, "confident-wrong-gap100", "inaccurate", "inaccurate", "XC-clip", backend=b, framework="keras",
                    values=values[b], norms=(0.0, 1.4)) for b in ("tensorflow", "jax")]
    [row] = decision.decision_rows(records, KINDS)
    assert row.cells["confident"] == decision.Cell("✗", "loss 16.1 for 100, gradient 0", ("XC-clip",))


def test_the_training_column_and_sentence_come_from_the_training_document():
    from tests.test_training_report import synthetic_training
    from xentcompat.report.decision_training import with_training

    records = [cell(CE, "confident-wrong-gap100"), cell(NLL_LOG, "confident-wrong-gap100"),
               cell(TWICE, "confident-wrong-gap100", "inaccurate", "inaccurate", "XC-clip", values=(2.46, 100.0),
                    norms=(0.5, 1.4))]
    rows = decision.decision_rows(records, KINDS)
    assert with_training(rows, synthetic_training()) and not with_training(rows, None)
    cells = {row.choice.api: row.cells["training"] for row in rows}
    assert cells[CE] == decision.Cell("✓", "reaches 94 %", ())
    assert cells[TWICE] == decision.Cell("✗", "30 % (fused 94 %); 82 % at high lr (fused 91 %)",
                                         ("XC-softmax-twice",))
    assert cells[NLL_LOG].mark == "✗" and cells[NLL_LOG].text == ("94 % (fused 94 %); 46 % at high lr (fused 91 %); "
                                                                  "NaN/inf in 1/2 seeds at high lr")
    [sentence] = decision.verdict_sentences(rows)
    assert sentence.endswith("softmax first deviates: `NLLLoss(log(softmax(logits)))` 0 of 1 [training: 94 % (fused "
                             "94 %); 46 % at high lr (fused 91 %); NaN/inf in 1/2 seeds at high lr], "
                             "`CrossEntropyLoss(softmax(logits))` 1 of 1 [training: 30 % (fused 94 %); 82 % at high lr "
                             "(fused 91 %)].")


def test_a_choice_that_trains_well_in_the_standard_regime_but_not_in_another_is_not_ticked():
    """The cell names the regime where the choice ends furthest below the fused loss (of that regime)."""
    from tests.test_training_report import synthetic_training
    from xentcompat.report.decision_training import training_cells

    training = synthetic_training()
    for run in training["runs"]:  # the double softmax as good as the fused loss in the standard regime only
        if run["regime"] == "standard" and run["api"] == TWICE:
            run["metrics"]["test_accuracy"][-1] = 0.94
    cell = training_cells(training)[TWICE]
    assert cell.mark == "✗" and cell.text == "94 % (fused 94 %); 82 % at high lr (fused 91 %)", cell


def _on_cuda(**overrides) -> list[Record]:
    """A label = C cell and a float16 cell, on the CPU and on CUDA."""
    raised = {"type": "IndexError", "message": "Target 5 is out of bounds."}
    fault = {"type": "AcceleratorError", "message": "CUDA error: device-side assert triggered", "device_fault": True,
             "context_usable": False}
    return [cell(CE, "label-equals-C", "raised", "raised", invalid="bad label", error=raised, area="labels"),
            cell(CE, "label-equals-C", "crashed", "crashed", "XC-assert", invalid="bad label", error=fault,
                 area="labels", device="cuda"),
            cell(CE, "many-classes-256k-zeros", "inf", "ok", "XC-nan", dtype="float16", area="large-vocab"),
            cell(CE, "many-classes-256k-zeros", dtype="float16", area="large-vocab", device="cuda")]


def test_the_cuda_column_compares_each_cell_on_both_devices_and_names_a_device_fault():
    kinds = {**KINDS, "XC-assert": "validation"}
    [row] = decision.decision_rows(_on_cuda(), kinds)
    assert row.cells["cuda"] == decision.Cell("✗", "1/2 worse: label = C", ("XC-assert", "XC-nan"),
                                              "device-side assert")
    assert row.cells["labels"] == decision.Cell("✓", "raises IndexError", ())  # the other columns: the CPU's
    assert (row.realistic, row.deviating) == (2, 1)
    [sentence] = decision.verdict_sentences([row])
    assert "on CUDA 1/2 worse: label = C (device-side assert, the CUDA context dies)" in sentence


def test_a_cuda_difference_that_is_no_worse_is_no_failure_and_no_cuda_run_is_said():
    cpu_only = [r for r in _on_cuda() if r.device == "cpu"]
    better = [r for r in _on_cuda() if r.case != "label-equals-C"]
    assert decision.decision_rows(better, KINDS)[0].cells["cuda"] == decision.Cell(
        "✓", "1/1 differ, none worse", ("XC-nan",))
    assert decision.decision_rows(cpu_only, KINDS)[0].cells["cuda"] == decision.Cell("—", "not run on CUDA", ())


def test_the_cells_that_vary_by_device_are_listed_with_both_outcomes():
    from xentcompat.report.devices import varies_by_device_table

    table = varies_by_device_table(_on_cuda())
    assert table.columns == ("api", "cases", "dtypes", "mode", "CPU", "CUDA")
    assert table.rows == (
        (CE, "many-classes-256k-zeros", "float16", "eager", "inf / ok (XC-nan), torch 2.13.0", "ok / ok, torch 2.13.0"),
        (CE, "label-equals-C", "float32", "eager", "raised / raised, torch 2.13.0",
         "crashed / crashed (XC-assert), torch 2.13.0"))
    assert varies_by_device_table([r for r in _on_cuda() if r.device == "cpu"]) is None


def test_a_column_selects_by_the_facts_of_the_input_whatever_the_case_is_called():
    """A user's own batch holding a -inf mask (its record tagged "mask") lands in the masks column; a case named
    like a mask case whose input holds none does not."""
    own = cell(NLL_LOG, "my-batch", "nan", "nan", "XC-nan", dtype="float32", area="case-file", tags=["mask"])
    misnamed = cell(CE, "neg-inf-lookalike", dtype="float32", area="masking", tags=[])
    [nll, fused] = sorted(decision.decision_rows([own, misnamed], KINDS), key=lambda row: row.choice.api != NLL_LOG)
    assert nll.cells["masks"].mark == "✗" and nll.cells["masks"].findings == ("XC-nan",)
    assert fused.cells["masks"].mark == "—"


def test_a_choice_without_gradient_says_its_cells_judge_the_loss_alone():
    """An API that offers no gradient (ONNX Runtime): its absent gradients are no deviation, a wrong loss is, and the
    row and the sentence say the loss alone was judged."""
    api = "ort.SoftmaxCrossEntropyLoss"
    records = [cell(api, "confident-wrong-gap100", "ok", "absent", framework="onnxruntime"),
               cell(api, "uniform-zeros", "inaccurate", "absent", "XC-clip", framework="onnxruntime",
                    area="accuracy", values=(2.0, 2.302585092994046))]
    [row] = decision.decision_rows(records, KINDS)
    assert row.loss_only and row.form_words == "fused; loss only" and row.deviating == 1 and row.realistic == 2
    assert row.cells["confident"].mark == "✓"
    [sentence] = decision.verdict_sentences([row])
    assert sentence.startswith("**ONNX Runtime**: `SoftmaxCrossEntropyLoss(logits)` (1 of 2 realistic cells "
                               "deviate; the loss alone: it offers no gradient)")  # one choice: nothing to "use"
    [torch_row] = decision.decision_rows([cell(CE, "confident-wrong-gap100")], KINDS)
    assert not torch_row.loss_only and torch_row.form_words == "fused"
