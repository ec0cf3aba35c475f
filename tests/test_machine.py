"""The machine a shard ran on: CPU flags and kernel switches as recorded, and the conditions of kernel paths."""

from __future__ import annotations

import pytest

from xentcompat import machine
from xentcompat.machine import condition

XEON = {"cpu": {"model": "Intel Xeon", "arch": "x86_64", "flags": ["avx2", "avx512bw", "avx512f", "avx512_fp16"]},
        "kernel_switches": {}}
EPYC = {"cpu": {"model": "AMD EPYC", "arch": "x86_64", "flags": ["avx2", "avx512bw", "avx512f", "avx512_bf16"]},
        "kernel_switches": {}}
ONEDNN_FP16 = {"cpu_flags": ["avx512bw", "avx512_fp16"], "switches_not": {"TF_ENABLE_ONEDNN_OPTS": ["0", "false"]}}


def test_cpu_lists_only_flags_that_select_kernels(monkeypatch):
    text = "model name\t: Some CPU\nflags\t\t: fpu sse2 avx2 avx512f avx512_fp16 amx_tile amx_bf16 sha_ni\n"
    monkeypatch.setattr(machine, "_cpuinfo", lambda: ("Some CPU", set(text.split(":")[-1].split())))
    machine.cpu.cache_clear()
    try:
        assert machine.cpu()["flags"] == ["amx_bf16", "amx_tile", "avx2", "avx512_fp16", "avx512f"]
        assert machine.cpu()["model"] == "Some CPU"
    finally:
        machine.cpu.cache_clear()


def test_kernel_switches_keep_only_the_isa_part_of_xla_flags():
    environ = {"TF_ENABLE_ONEDNN_OPTS": "0", "XLA_FLAGS": "--xla_dump_to=/tmp/x --xla_cpu_max_isa=AVX2", "HOME": "/"}
    assert machine.kernel_switches(environ) == {"TF_ENABLE_ONEDNN_OPTS": "0", "XLA_FLAGS": "--xla_cpu_max_isa=AVX2"}
    assert machine.kernel_switches({"XLA_FLAGS": "--xla_dump_to=/tmp/x"}) == {}


def test_machine_id_changes_with_the_cpu_and_with_the_switches():
    ids = {machine.machine_id(m) for m in (XEON, EPYC, {**EPYC, "kernel_switches": {"ATEN_CPU_CAPABILITY": "avx2"}})}
    assert len(ids) == 3
    assert machine.machine_id(dict(EPYC)) == machine.machine_id(EPYC)


@pytest.mark.parametrize("switches, on_xeon, on_epyc", [
    ({}, True, False),
    ({"TF_ENABLE_ONEDNN_OPTS": "1"}, True, False),
    ({"TF_ENABLE_ONEDNN_OPTS": "0"}, False, False),
    ({"TF_ENABLE_ONEDNN_OPTS": "False"}, False, False),
])
def test_condition_needs_every_flag_and_honours_switches(switches, on_xeon, on_epyc):
    rule = condition(ONEDNN_FP16, "here")
    assert rule.holds({**XEON, "kernel_switches": switches}) is on_xeon
    assert rule.holds({**EPYC, "kernel_switches": switches}) is on_epyc


def test_condition_in_words():
    assert condition(ONEDNN_FP16, "here").text() == ("CPU with avx512bw and avx512_fp16, "
                                                      "TF_ENABLE_ONEDNN_OPTS not 0 or false")


@pytest.mark.parametrize("entry, message", [
    ({"cpu_flag": ["avx2"]}, "unknown condition field 'cpu_flag'"),
    ({"cpu_flags": ["avx512-fp16"]}, "'avx512-fp16' is not a kernel-selecting CPU flag"),
    ({"cpu_flags": "avx2"}, "must be a list"),
    ({"switches": {"TF_ONEDNN": "0"}}, "must map kernel switches"),
    ({"switches": {"TF_ENABLE_ONEDNN_OPTS": 0}}, "must be strings"),
])
def test_malformed_condition_refused_by_name(entry, message):
    with pytest.raises(ValueError, match=message):
        condition(entry, "keras.toml: kernel_path 'x'")
