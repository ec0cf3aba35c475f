"""Findings are causes: grouping by cause, the unexplained first, explanations, the same ids whatever the merge order."""

from __future__ import annotations

import re
from pathlib import Path

from xentcompat import __version__
from xentcompat.report.decision import typed
from xentcompat.report.findings import collect
from xentcompat.report.markdown import render_markdown
from xentcompat.results.documents import results_document
from xentcompat.results.merge import merge_documents
from tests.test_records import record

CAUSES = {"row-overflow": {"kind": "overflow", "title": "A row loss overflows", "upstream": [
    "https://github.com/pytorch/pytorch/issues/1"], "no_upstream": None,
    "explanation": "The row losses are computed in the input dtype."}}


def deviating(case: str, dtype: str = "float16", device: str = "cpu", explained: bool = True) -> dict:
    finding = "XC-row-overflow" if explained else "XC-unexplained-0123abcd"
    return record(case, loss="inf", value="inf", dtype=dtype, device=device, finding=finding, area="extreme",
                  expected={"loss": "inf" if explained else "ok", "grad": "ok",
                            "cause": "row-overflow" if explained else None,
                            "reason": "row losses overflow" if explained else None,
                            "upstream": "https://github.com/pytorch/pytorch/issues/2" if explained else None},
                  repro=f"print('{case}')")


def test_records_of_one_cause_are_one_finding_with_where_and_why():
    records = [deviating("near-max", "float16"), deviating("near-max", "bfloat16", device="cuda"),
               deviating("big-vocab", "float16"), record("calm")]
    [finding] = collect(typed(records), CAUSES)
    assert finding.id == "XC-row-overflow" and finding.kind == "overflow" and finding.title == "A row loss overflows"
    assert finding.where == {"torch.nn.CrossEntropyLoss": {"big-vocab": ["float16"],
                                                           "near-max": ["float16", "bfloat16"]}}
    assert finding.places == ["cpu eager", "cuda eager"] and finding.predicted
    assert finding.outcomes == {"inf/ok": 3}
    assert finding.upstream == ["https://github.com/pytorch/pytorch/issues/1", "https://github.com/pytorch/pytorch/issues/2"]
    assert finding.repro == "print('near-max')"  # the shortest
    text = finding.explanation()
    assert text.startswith("The row losses are computed in the input dtype.") and "in 3 cells" in text
    assert "big-vocab in float16: loss inf for 1." in text


def test_an_unexplained_deviation_comes_first_and_says_it_is_new():
    findings = collect(typed([deviating("near-max"), deviating("other", explained=False)]), CAUSES)
    assert [f.id for f in findings] == ["XC-unexplained-0123abcd", "XC-row-overflow"]
    assert findings[0].unexplained and not findings[0].predicted and findings[0].kind == "unexplained"
    assert "new with torch 2.13.0" in findings[0].explanation() and findings[0].title.startswith("Unexplained")


def test_merge_order_keeps_records_and_finding_ids():
    first = results_document([deviating("near-max"), record("a")], [{"target": "torch"}], causes=CAUSES)
    second = results_document([deviating("near-max", "bfloat16"), deviating("big-vocab", explained=False)],
                              [{"target": "torch"}], causes=CAUSES)
    forward, backward = merge_documents([first, second]), merge_documents([second, first])
    assert forward == backward
    assert forward["causes"] == CAUSES
    assert [f.id for f in collect(typed(forward["records"]))] == [f.id for f in collect(typed(backward["records"]))]
    assert render_markdown(forward) == render_markdown(backward)


def test_report_says_how_to_cite_and_citation_file_matches_the_version():
    report = render_markdown(results_document([deviating("near-max")], [], causes=CAUSES))
    assert re.search(rf"Cite as: xentcompat {re.escape(__version__)}, results hash [0-9a-f]{{16}}", report)
    assert '<a id="xc-row-overflow"></a>' in report and "XC-row-overflow: A row loss overflows (overflow)" in report
    citation = (Path(__file__).parents[1] / "CITATION.cff").read_text()
    assert f"version: {__version__}\n" in citation
