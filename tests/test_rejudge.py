"""`xentcompat rejudge` without a framework: which stored records are measurements, a device fault read from an old
record, the re-judging of a cell against today's causes (the fake `fault` target), and bad input."""

from __future__ import annotations

import gzip
import json

from tests.fault_adapter import FAULT
from tests.test_records import record
from xentcompat import cli
from xentcompat.adapters import base
from xentcompat.reference.errors import TOLERANCE_UNITS
from xentcompat.results.documents import read_results, results_document
from xentcompat.run.harness import DIED
from xentcompat.run.rejudge import as_device_fault, rejudge_document, rejudge_target, target_of


def _fault_target(monkeypatch):
    monkeypatch.setitem(base.TARGETS, FAULT.name, FAULT)


def _fault_record(case: str, loss: str, grad: str = "ok", verdict: dict | None = None, **overrides) -> dict:
    """A record of the fake `fault` target: an `inaccurate` loss is 100 units off; `verdict` replaces the loss's."""
    found = record(case, loss=loss, framework="fault", framework_version="1.0", api="fault.faulty", machine="M-1",
                   grad={"outcome": grad, "max_error_units": 0.1, "nan_count": 0, "inf_count": 0}, **overrides)
    if loss == "inaccurate":
        found["loss"].update(value=1.5, error_units=100.0)
    if verdict is not None:
        found["loss"] = verdict
    return found


def test_records_name_the_target_whose_shard_wrote_them():
    assert [target_of(record("a", framework=f, backend=b)) for f, b in (
        ("torch", None), ("transformers", None), ("keras", "jax"), ("keras", "torch"), ("keras", "tensorflow"),
        ("tensorflow", None), ("jax", None))] == [
        "torch", "huggingface", "keras-jax", "keras-torch", "tensorflow", "tensorflow", "jax"]


def test_a_cell_is_judged_again_by_todays_expectations(monkeypatch):
    _fault_target(monkeypatch)
    stale = {"loss": "inf", "grad": "ok", "cause": "gone", "reason": None, "upstream": None}
    records = [_fault_record("random-moderate", "ok", expected=stale, finding="XC-gone"),
               _fault_record("uniform-zeros", "inaccurate", expected=stale, finding="XC-gone")]
    found = rejudge_target("fault", records, [])
    right, wrong = found.records
    assert (right["expected"]["loss"], right["expected"]["cause"], right["finding"]) == ("ok", None, None)
    assert wrong["finding"].startswith("XC-unexplained-") and wrong["repro"] == "fault.faulty(x, y)"
    assert right["loss"] == records[0]["loss"]  # the measurement is kept as it was


def test_an_outcome_judged_from_units_is_judged_again_under_todays_tolerance(monkeypatch):
    """A record judged `ok` under a looser tolerance reads `inaccurate` once its error in units is over today's
    (loss and gradient alike); one within it stays `ok`; a non-finite outcome, or an outcome with no error in units
    (a loss of the wrong shape), is not a judgement of units and is kept."""
    _fault_target(monkeypatch)
    over, within = 1.6 * TOLERANCE_UNITS, 0.8 * TOLERANCE_UNITS
    records = [
        _fault_record("random-moderate", "ok", verdict={"outcome": "ok", "value": 1.0, "reference": 1.0,
                                                        "error_units": over}),
        {**_fault_record("random-moderate", "ok"), "grad": {"outcome": "ok", "max_error_units": over, "nan_count": 0,
                                                            "inf_count": 0}},
        _fault_record("random-moderate", "ok", verdict={"outcome": "inaccurate", "value": 1.0, "reference": 1.0,
                                                        "error_units": within}),
        _fault_record("random-moderate", "nan", verdict={"outcome": "nan", "value": "nan", "reference": 1.0,
                                                         "error_units": None}),
        _fault_record("random-moderate", "ok", verdict={"outcome": "inaccurate", "value": None, "reference": 1.0,
                                                        "error_units": None}),
    ]
    found = rejudge_target("fault", records, []).records
    assert [(r["loss"]["outcome"], r["grad"]["outcome"]) for r in found] == [
        ("inaccurate", "ok"), ("ok", "inaccurate"), ("ok", "ok"), ("nan", "ok"), ("inaccurate", "ok")]
    assert [r["loss"]["error_units"] for r in found[:3]] == [over, 0.0, within]  # the numbers as measured


def test_a_record_gets_todays_facts_of_its_input(monkeypatch):
    """A record written before a fact existed is selected by it after re-judging (the report selects by facts)."""
    _fault_target(monkeypatch)
    old = _fault_record("ignore-index-every-row", "ok", tags=["ignored-rows"])
    [found] = rejudge_target("fault", [old], []).records
    assert found["tags"] == ["ignored-rows", "mean-over-nothing"]


def test_an_invalid_cell_of_a_process_that_died_on_an_accelerator_is_set_aside(monkeypatch):
    _fault_target(monkeypatch)
    died = {"type": "crashed", "message": DIED}
    records = [_fault_record("label-equals-C", "crashed", "crashed", device="cuda", invalid="label = C", error=died),
               _fault_record("label-equals-C", "crashed", "crashed", invalid="label = C", error=died),
               _fault_record("random-moderate", "crashed", "crashed", device="cuda", error=died)]
    found = rejudge_target("fault", records, [])
    assert [entry["cell"] for entry in found.set_aside] == ["fault.faulty|label-equals-C|float32|cuda|eager "
                                                            "(fault 1.0, M-1)"]
    assert [r["device"] for r in found.records] == ["cpu", "cuda"]  # a CPU death, a valid cell: kept, judged


def test_a_raised_record_whose_error_is_a_device_fault_becomes_the_fault():
    raised = record("label-equals-C", loss="raised", error={
        "type": "InductorError", "message": "AcceleratorError: CUDA error: device-side assert triggered"})
    fault = as_device_fault(raised)
    assert (fault["loss"]["outcome"], fault["grad"]["outcome"]) == ("crashed", "crashed")
    assert fault["error"]["device_fault"] is True and fault["error"]["context_usable"] is None
    plain = record("label-equals-C", loss="raised", error={"type": "IndexError", "message": "Target 5 is out of bounds."})
    assert as_device_fault(plain) is plain


def test_records_of_a_target_not_installed_are_kept_as_recorded_and_said_so():
    records = [record("a", framework="nosuch")]
    earlier = {"cell": "fault.faulty|label-equals-C|float32|cuda|eager (fault 1.0, M-1)", "reason": "set aside before"}
    document = rejudge_document({**results_document(records, []), "set_aside": [earlier]})
    assert document["records"] == records and document["set_aside"] == [earlier]  # what was said before stays
    assert document["rejudged"] == {"nosuch": {"records": 1, "kept_as_recorded": [
        "1 records: no target 'nosuch' in this suite"]}}


def test_rejudge_reads_compressed_documents_and_renders_the_report(tmp_path, monkeypatch, capsys):
    _fault_target(monkeypatch)
    path = tmp_path / "gpu.results.json.gz"
    with gzip.open(path, "wt") as stream:
        json.dump(results_document([_fault_record("uniform-zeros", "inaccurate")], []), stream)
    monkeypatch.setattr("xentcompat.run.rejudge._run_each", lambda jobs, environments, workers: {
        target: rejudge_target(target, records, environments) for target, records in jobs.items()})
    assert cli.main(["rejudge", str(path), "--out", str(tmp_path / "out"), "--strict"]) == 1
    judged = read_results(tmp_path / "out" / "results.json")["records"]
    assert judged[0]["finding"].startswith("XC-unexplained-")
    assert "1 records re-judged" in capsys.readouterr().err


def test_a_missing_or_corrupt_document_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "bad.json.gz").write_bytes(b"not gzip")
    assert cli.main(["rejudge", str(tmp_path / "none.json"), "--out", str(tmp_path / "out")]) == 2
    assert cli.main(["rejudge", str(tmp_path / "bad.json.gz"), "--out", str(tmp_path / "out")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"xentcompat: error: {tmp_path / 'none.json'}: no such results file",
                     lines[1]] and lines[1].startswith(f"xentcompat: error: {tmp_path / 'bad.json.gz'}: corrupt")
    assert not (tmp_path / "out").exists()


def test_a_carried_training_document_is_checked_before_anything_is_written(tmp_path, monkeypatch, capsys):
    from tests.test_training_report import synthetic_training

    _fault_target(monkeypatch)
    training = synthetic_training()
    broken = {**training, "runs": [{**training["runs"][0], "seed": "zero"}]}
    path = tmp_path / "results.json"
    path.write_text(json.dumps({**results_document([_fault_record("uniform-zeros", "ok")], []), "training": broken}))
    assert cli.main(["rejudge", str(path), "--out", str(tmp_path / "out")]) == 2
    said = capsys.readouterr().err.strip()
    assert "\n" not in said and f"{path}: field 'training': run #0: field 'seed'" in said
    assert not (tmp_path / "out" / "results.json").exists()
