"""Findings: stable content-derived ids, grouping, explanations, and the same ids whatever the merge order."""

from __future__ import annotations

import re
from pathlib import Path

from xentcompat import __version__
from xentcompat.harness import finding_id
from xentcompat.report.findings import collect
from xentcompat.report.markdown import render_markdown
from xentcompat.report.merge import merge_documents
from xentcompat.report.records import results_document
from tests.test_records import record

REASON = "a row loss overflows"


def deviating(case: str, dtype: str = "float16", device: str = "cpu", reason: str | None = REASON) -> dict:
    finding = finding_id("torch", None, "torch.nn.CrossEntropyLoss", "inf", "ok", reason)
    return record(case, loss="inf", value="inf", dtype=dtype, device=device, finding=finding, area="extreme",
                  expected={"loss": "inf" if reason else "ok", "grad": "ok", "reason": reason,
                            "upstream": "https://github.com/pytorch/pytorch/issues/158310" if reason else None},
                  repro=f"print('{case}')")


def test_ids_are_pinned_so_a_citation_keeps_pointing_at_the_same_deviation():
    assert finding_id("torch", None, "torch.nn.CrossEntropyLoss", "inf", "ok", REASON) == "XC-18addd0b"
    assert finding_id("keras", "jax", "keras.losses.SparseCategoricalCrossentropy(from_logits=False)",
                      "finite", "ok") == "XC-3ce38163"
    assert finding_id("torch", None, "torch.nn.CrossEntropyLoss", "ok", "ok") is None


def test_id_depends_on_what_deviates_not_where():
    ids = {finding_id("keras", backend, "k", "nan", "ok") for backend in ("jax", "torch", "tensorflow")}
    assert len(ids) == 3  # Keras backends are never averaged into one finding
    assert finding_id("torch", None, "t", "inf", "ok", "cause one") != finding_id("torch", None, "t", "inf", "ok",
                                                                                 "cause two")


def test_records_group_into_one_finding_with_where_and_why():
    records = [deviating("near-max", "float16"), deviating("near-max", "bfloat16", device="cuda"),
               deviating("big-vocab", "float16"), record("calm")]
    [finding] = collect(records)
    assert finding.where == {"big-vocab": ["float16"], "near-max": ["float16", "bfloat16"]}
    assert finding.places == ["cpu eager", "cuda eager"] and finding.predicted
    assert finding.upstream.endswith("/158310") and finding.repro == "print('near-max')"  # the shortest
    text = finding.explanation()
    assert "in 3 cells" in text and "Why: a row loss overflows." in text and "loss inf against the reference 1" in text


def test_an_unpredicted_deviation_says_it_is_new():
    [finding] = collect([deviating("near-max", reason=None)])
    assert not finding.predicted and finding.reason is None
    assert "new with torch 2.13.0" in finding.explanation()


def test_merge_order_keeps_records_and_finding_ids():
    first = results_document([deviating("near-max"), record("a")], [{"target": "torch"}])
    second = results_document([deviating("near-max", "bfloat16"), deviating("big-vocab", reason=None)],
                              [{"target": "torch"}])
    forward, backward = merge_documents([first, second]), merge_documents([second, first])
    assert forward == backward
    assert [f.id for f in collect(forward["records"])] == [f.id for f in collect(backward["records"])]
    assert render_markdown(forward) == render_markdown(backward)


def test_report_says_how_to_cite_and_citation_file_matches_the_version():
    report = render_markdown(results_document([deviating("near-max")], []))
    assert re.search(rf"Cite as: xentcompat {re.escape(__version__)}, results hash [0-9a-f]{{16}}", report)
    assert '<a id="xc-18addd0b"></a>' in report and "(#xc-18addd0b)" in report
    citation = (Path(__file__).parents[1] / "CITATION.cff").read_text()
    assert f"version: {__version__}\n" in citation
