"""The report names each machine (CPU, kernel flags, switches) and shows the cells that vary by CPU."""

from __future__ import annotations

from xentcompat.report.decision import typed
from xentcompat.report.hardware import machines, varies_by_cpu_table
from xentcompat.report.html import render_html
from xentcompat.report.markdown import render_markdown
from xentcompat.results.documents import results_document
from xentcompat.results.merge import merge_documents
from tests.test_markdown import SPARSE, keras_record

VARIES = [{"path": "onednn-float16", "when": "oneDNN float16 kernels (CPU with avx512_fp16)", "loss": "ok",
           "grad": "nan", "reason": "subnormal p", "upstream": None},
          {"path": None, "when": "any other machine", "loss": "ok", "grad": "inaccurate", "reason": "p is 0",
           "upstream": None}]
EPYC_ENV = {"target": "tensorflow", "machine": "M-epyc", "kernel_switches": {},
            "cpu": {"model": "AMD EPYC", "arch": "x86_64", "flags": ["avx2", "avx512f"]}}
XEON_ENV = {"target": "tensorflow", "machine": "M-xeon", "kernel_switches": {"TF_ENABLE_ONEDNN_OPTS": "1"},
            "cpu": {"model": "Intel Xeon", "arch": "x86_64", "flags": ["avx512_fp16", "avx512f"]}}


def measured(machine: str, grad: str, path: str | None) -> dict:
    record = keras_record("many-classes-256k-zeros", "tensorflow", machine=machine, dtype="float16")
    record["grad"] = {**record["grad"], "outcome": grad}
    record["expected"] = {"loss": "ok", "grad": grad, "kernel_path": path, "varies": VARIES}
    return record


def test_one_machine_shows_what_it_measured_and_what_the_other_path_is_expected_to_give():
    [row] = varies_by_cpu_table(typed([measured("M-epyc", "inaccurate", None), keras_record("a", "tensorflow")])).rows
    assert row[:4] == (f"{SPARSE} [tensorflow]", "many-classes-256k-zeros", "float16", "eager")
    assert row[4] == "ok / inaccurate on M-epyc"
    assert row[5] == ("ok / nan with oneDNN float16 kernels (CPU with avx512_fp16); "
                      "ok / inaccurate with any other machine (measured)")


def test_two_machines_merged_show_both_measurements_on_one_row():
    merged = merge_documents([results_document([measured("M-epyc", "inaccurate", None)], [EPYC_ENV]),
                              results_document([measured("M-xeon", "nan", "onednn-float16")], [XEON_ENV])])
    [row] = varies_by_cpu_table(typed(merged["records"])).rows
    assert row[4] == "ok / inaccurate on M-epyc; ok / nan on M-xeon"
    assert row[5].count("(measured)") == 2
    report = render_markdown(merged)
    assert "## Varies by CPU" in report
    assert ("- Machine M-xeon: Intel Xeon (x86_64; avx512_fp16, avx512f); kernel switches: TF_ENABLE_ONEDNN_OPTS=1 "
            "(targets: tensorflow)") in report
    assert "- Machine M-epyc: AMD EPYC (x86_64; avx2, avx512f); kernel switches: none set (targets: tensorflow)" in report
    page = render_html(merged)
    assert 'id="varies-by-cpu"' in page and "Intel Xeon" in page


def test_machines_that_disagree_without_a_declared_path_are_shown_as_unexplained():
    first = keras_record("a", "tensorflow", machine="M-1")
    second = keras_record("a", "tensorflow", "nan", machine="M-2")
    [row] = varies_by_cpu_table(typed([first, second])).rows
    assert row[4] == "ok / ok on M-1; nan / ok on M-2"
    assert row[5].startswith("no kernel path declared")


def test_no_table_when_nothing_varies():
    assert varies_by_cpu_table(typed([keras_record("a", "tensorflow", machine="M-1")])) is None


def test_a_machine_names_each_target_once_when_two_shards_of_one_target_ran_on_it():
    shard = {"machine": "M-1", "cpu": {"model": "CPU", "arch": "x86_64", "flags": ["avx2"]}, "kernel_switches": {}}
    environments = [{**shard, "target": "mlx", "platform": "kernel 1"},
                    {**shard, "target": "mlx", "platform": "kernel 2"}, {**shard, "target": "jax", "platform": "kernel 1"}]
    [line] = machines(environments)
    assert line.endswith("(targets: jax, mlx)")
