"""`xentcompat check` on numpy callables (no framework needed): the correct example passes, a naive loss is caught
with its cause named, declarations pass what they declare and flag what they no longer see, bad input is one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from xentcompat import cli
from xentcompat.results.documents import read_results

ROOT = Path(__file__).resolve().parents[1]
STABLE = f"{ROOT / 'examples' / 'stable_numpy.py'}:cross_entropy"
NAIVE = f"{ROOT / 'tests' / 'own_losses.py'}:naive_log_softmax"


def check(*args: str) -> int:
    return cli.main(["check", *args])


@pytest.fixture(scope="module")
def naive_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("naive")
    status = check(NAIVE, "--framework", "numpy", "--out", str(out))
    return status, out, read_results(out / "results.json")["records"]


def test_the_correct_example_passes_with_no_deviation(tmp_path, capsys):
    assert check(STABLE, "--framework", "numpy", "--out", str(tmp_path)) == 0
    records = read_results(tmp_path / "results.json")["records"]
    assert len(records) > 100
    assert {r["finding"] for r in records} == {None}
    assert {r["case"] for r in records if r["invalid"]} >= {"label-minus-1", "label-equals-C"}
    assert "exit 0: no deviation" in capsys.readouterr().out
    assert (tmp_path / "report.md").read_text().startswith("# ")


def test_a_naive_loss_is_caught_with_its_cause(naive_run):
    status, out, records = naive_run
    assert status == 1
    gap = {(r["case"], r["dtype"]): r for r in records}[("confident-wrong-gap10000", "float32")]
    assert (gap["loss"]["outcome"], gap["grad"]["outcome"]) == ("inf", "nan")
    assert gap["finding"] == "XC-log-of-underflowed-softmax"
    assert "log(softmax)" in gap["expected"]["reason"]  # the API whose outcome it shares
    underflowed = [r for r in records if r["finding"] == "XC-log-of-underflowed-softmax"]
    assert len(underflowed) >= 10
    assert all(r["loss"]["outcome"] != "ok" or r["grad"]["outcome"] == "nan" for r in underflowed)


def test_the_repro_script_reproduces_the_finding(naive_run):
    _, out, _ = naive_run
    script = out / "repro" / "XC-log-of-underflowed-softmax.py"
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=out)
    assert done.returncode == 0, done.stderr
    assert "inf" in done.stdout and "nan" in done.stdout


def test_declared_deviations_pass_and_a_stale_declaration_fails(naive_run, tmp_path, capsys):
    _, _, records = naive_run
    findings = sorted({r["finding"] for r in records if r["finding"]})
    expected = tmp_path / "expected.toml"
    tables = [f'[[expected]]\ncause = "{f.removeprefix("XC-")}"\nreason = "naive on purpose"\n'
              for f in findings if not f.startswith("XC-unexplained")]
    unexplained = sorted({r["case"] for r in records if r["finding"] and r["finding"].startswith("XC-unexplained")})
    tables.append(f'[[expected]]\ncases = {json.dumps(unexplained)}\nreason = "no check of label counts"\n')
    expected.write_text("\n".join(tables))
    assert check(NAIVE, "--framework", "numpy", "--expect", str(expected), "--out", str(tmp_path / "a")) == 0
    assert "every deviation is declared expected" in capsys.readouterr().out
    expected.write_text(expected.read_text() + '\n[[expected]]\ncause = "softmax-twice"\nreason = "stale"\n'
                        'dtypes = ["float32"]\n')
    assert check(NAIVE, "--framework", "numpy", "--expect", str(expected), "--out", str(tmp_path / "b")) == 1
    assert "declared but not seen: softmax-twice on dtypes float32: stale" in capsys.readouterr().out


BAD = {
    "no module": (["no_such_module_xc:fn"], "cannot import no_such_module_xc"),
    "no attribute": ([f"{ROOT / 'tests' / 'own_losses.py'}:missing"], "has no attribute 'missing'"),
    "not callable": ([f"{ROOT / 'tests' / 'own_losses.py'}:NOT_CALLABLE"], "int object is not callable"),
    "no colon": (["tests.own_losses"], "expected MODULE:CALLABLE"),
    "signature": ([f"{ROOT / 'tests' / 'own_losses.py'}:one_argument"], "does not take (logits, targets)"),
    "no gradient": ([f"{ROOT / 'tests' / 'own_losses.py'}:loss_only"], "numpy has no autodiff"),
    "bad option": ([STABLE, "--options", "reduction,temperature"], "--options 'temperature'"),
    "bad dtype": ([STABLE, "--dtypes", "float8"], "--dtypes 'float8'"),
}


@pytest.mark.parametrize("arguments, message", BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_line_and_exit_2(arguments, message, tmp_path, capsys):
    assert check(*arguments, "--framework", "numpy", "--out", str(tmp_path)) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("xentcompat: error: ") and message in error and "\n" not in error
    assert not (tmp_path / "results.json").exists()


@pytest.mark.parametrize("text, message", [
    ('[[expected]]\ncause = "no-such-cause"\nreason = "x"\n', "'no-such-cause' is not a known cause id"),
    ('[[expected]]\ncause = "softmax-twice"\n', "field 'reason'"),
    ('[[expected]]\nreason = "everything"\n', "needs a 'cause' or a glob list"),
    ('[[expected]]\ncases = "nan-logit"\nreason = "x"\n', "field 'cases'"),
    ("[expected\n", "not TOML"),
])
def test_a_bad_declarations_file_is_one_line(text, message, tmp_path, capsys):
    expected = tmp_path / "expected.toml"
    expected.write_text(text)
    assert check(STABLE, "--framework", "numpy", "--expect", str(expected), "--out", str(tmp_path / "o")) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error


def test_an_entry_naming_the_api_promises_its_cells_and_one_that_no_longer_holds_fails(tmp_path, monkeypatch, capsys):
    """`--name` gives the callable an API id; a cause entry naming it promises its cells' outcomes as a framework
    API's do, and a promised deviation that comes out right fails the check, naming the cause."""
    from dataclasses import replace

    from xentcompat import expectations
    from xentcompat.own import check as own_check

    entry = next(e for e in expectations.every_entry() if e.cause.id == "chunk-pairs-zipped")
    promising = replace(entry, apis=("mine.stable",), selector=replace(entry.selector, cases=("random-moderate",)),
                        loss="nan", grad="ok")
    monkeypatch.setattr(own_check, "entries_naming", lambda api: [promising] if api.id == "mine.stable" else [])
    assert check(STABLE, "--framework", "numpy", "--name", "mine.stable", "--dtypes", "float32",
                 "--out", str(tmp_path)) == 1
    records = read_results(tmp_path / "results.json")["records"]
    assert {r["api"] for r in records} == {"mine.stable"}
    moderate = next(r for r in records if r["case"] == "random-moderate")
    assert (moderate["expected"]["loss"], moderate["expected"]["cause"]) == ("nan", "chunk-pairs-zipped")
    out = capsys.readouterr().out
    assert "promised by cause chunk-pairs-zipped but not seen: random-moderate (float32" in out
    assert "1 cells a cause entry promised a deviation on came out right" in out


def test_a_cause_of_another_framework_names_no_cell_by_its_case_alone(naive_run):
    """labels-too-few: the naive loss returns the mean of the rows it has labels for, as torchtune's chunked loss does,
    but that entry names the case only: across frameworks that says too little, so the cell stays unexplained."""
    _, _, records = naive_run
    few = next(r for r in records if r["case"] == "labels-too-few")
    assert few["loss"]["outcome"] == "silent" and few["finding"].startswith("XC-unexplained-")


def test_the_report_of_a_check_names_the_callable_and_opens_on_its_findings(naive_run, tmp_path):
    _, out, _ = naive_run
    for directory in (out, tmp_path / "rendered"):
        if directory != out:
            assert cli.main(["render", str(out / "results.json"), "--out", str(directory)]) == 0
        markdown = (directory / "report.md").read_text()
        assert markdown.startswith(f"# xentcompat check: {NAIVE} (numpy)")
        assert markdown.index("## Findings") < markdown.index("## This run")
        assert "Which loss API?" not in markdown
        html = (directory / "report.html").read_text()
        assert f"<title>xentcompat check: {NAIVE} (numpy)" in html and "Which loss API?" not in html


def test_a_device_the_framework_lacks_is_listed_as_not_run(tmp_path):
    assert check(STABLE, "--framework", "numpy", "--device", "all", "--mode", "all", "--dtypes", "float32",
                 "--out", str(tmp_path)) == 0
    document = read_results(tmp_path / "results.json")
    assert {(r["device"], r["mode"]) for r in document["records"]} == {("cpu", "eager")}
    reasons = [entry["reason"] for entry in document["not_run"] if "case" not in entry and "cell" not in entry]
    assert "numpy sees no cuda device" in reasons
    assert any(reason.startswith("no compiled mode: numpy callables run eager") for reason in reasons)


def test_a_callable_that_kills_its_process_is_recorded_as_crashed_and_the_check_goes_on(tmp_path):
    aborts = f"{ROOT / 'tests' / 'own_losses.py'}:aborts_on_large_vocabularies"
    assert check(aborts, "--framework", "numpy", "--dtypes", "float32", "--only-cases", "--cases",
                 str(_cases(tmp_path)), "--out", str(tmp_path / "out")) == 1
    records = {r["case"]: r for r in read_results(tmp_path / "out" / "results.json")["records"]}
    assert records["small"]["loss"]["outcome"] == "ok"
    crashed = records["wide"]
    assert (crashed["loss"]["outcome"], crashed["error"]["type"]) == ("crashed", "crashed")
    assert "SIGABRT" in crashed["error"]["message"]


def _cases(tmp_path):
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"cases": [
        {"id": "small", "logits": [[0.5, 1.0, -2.0]], "labels": [1]},
        {"id": "wide", "logits": [[0.0] * 1001], "labels": [3]}]}))
    return path
