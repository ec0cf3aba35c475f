"""Expectation files: matching by api, glob patterns and version range; malformed entries refused by name."""

from __future__ import annotations

import pytest

from xentcompat import expectations
from xentcompat.expectations import Deviation, expectation

CELL = {"api": "torch.nn.CrossEntropyLoss", "case": "neg-inf-row", "dtype": "float16", "device": "cpu",
        "mode": "eager", "backend": None}


def test_first_matching_entry_wins_and_globs_apply():
    entries = [Deviation(api=CELL["api"], loss="nan", grad="ok", reason="r1", cases=("neg-inf-*",),
                         dtypes=("float32",)),
               Deviation(api=CELL["api"], loss="inf", grad="ok", reason="r2", cases=("neg-inf-*",))]
    assert expectation(entries, CELL, "2.13.0").reason == "r2"
    assert expectation(entries, {**CELL, "case": "random-moderate"}, "2.13.0") is None


def test_version_range_and_local_version():
    entry = Deviation(api=CELL["api"], loss="nan", grad="ok", reason="r", versions=">=2.5,<3")
    assert entry.matches(CELL, "2.13.0+cpu")
    assert not entry.matches(CELL, "2.4.1")


@pytest.mark.parametrize("text, message", [
    ('[[deviation]]\napi = "a"\nloss = "ok"\ngrad = "ok"\n', "missing field 'reason'"),
    ('[[deviation]]\napi = "a"\ncases = ["neg-inf-rows"]\nloss = "ok"\ngrad = "ok"\nreason = "r"\n',
     "field 'cases': 'neg-inf-rows' matches no case"),
    ('[[deviation]]\napi = "a"\ndtypes = ["fp16"]\nloss = "ok"\ngrad = "ok"\nreason = "r"\n',
     "field 'dtypes': 'fp16' matches no dtype"),
    ('[[deviation]]\napi = "a"\nmodes = ["jit"]\nloss = "ok"\ngrad = "ok"\nreason = "r"\n',
     "field 'modes': 'jit' matches no mode"),
    ('[[deviation]]\napi = "a"\nbackends = ["numpy"]\nloss = "ok"\ngrad = "ok"\nreason = "r"\n',
     "field 'backends': 'numpy' matches no backend"),
    ('[[deviation]]\napi = "a"\nversions = "2.x"\nloss = "ok"\ngrad = "ok"\nreason = "r"\n',
     "field 'versions': '2.x' is not a version specifier"),
    ('[[deviation]]\napi = "a"\nloss = "wrong"\ngrad = "ok"\nreason = "r"\n', "'wrong' is not an outcome"),
    ('[[deviation]]\napi = "a"\nloss = "ok"\ngrad = "ok"\nreason = "r"\ncolour = 1\n', "unknown field 'colour'"),
])
def test_malformed_entries_refused(tmp_path, text, message):
    path = tmp_path / "x.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        expectations.load("x", path)


API_PREFIXES = {"torch": ("torch.",), "keras": ("keras.",), "tensorflow": ("tf.",),
                "jax": ("optax.", "jax.", "log(jax.")}
BACKENDS = {"torch": {"*"}, "tensorflow": {"*"}, "jax": {"*"}, "keras": {"tensorflow", "jax", "torch"}}


@pytest.mark.parametrize("framework", sorted(API_PREFIXES))
def test_shipped_files_load_with_reasons(framework):
    entries = expectations.load(framework)
    assert entries, f"no expectations file for {framework}"
    for entry in entries:
        assert entry.reason and entry.api.startswith(API_PREFIXES[framework])
        assert set(entry.backends) <= BACKENDS[framework]
        assert entry.upstream is None or entry.upstream.startswith("https://github.com/")


KERNEL_FILE = '''
[kernel_path.onednn-float16]
title = "oneDNN float16 kernels"
modes = ["eager"]
when = [{ cpu_flags = ["avx512bw", "avx512_fp16"], switches_not = { TF_ENABLE_ONEDNN_OPTS = ["0"] } }]
upstream = "https://github.com/tensorflow/tensorflow/blob/master/tensorflow/core/util/util.cc"

[[deviation]]
api = "keras.losses.SparseCategoricalCrossentropy(from_logits=False)"
loss = "ok"
grad = "inaccurate"
reason = "p flushes to 0"

[[deviation.kernel]]
path = "onednn-float16"
loss = "ok"
grad = "nan"
reason = "p stays subnormal"
'''
XEON = {"cpu": {"flags": ["avx512bw", "avx512f", "avx512_fp16"]}, "kernel_switches": {}}
EPYC = {"cpu": {"flags": ["avx512bw", "avx512f"]}, "kernel_switches": {}}


def test_a_kernel_path_gives_its_own_outcomes_on_the_machines_that_take_it(tmp_path):
    path = tmp_path / "keras.toml"
    path.write_text(KERNEL_FILE)
    [entry] = expectations.load("keras", path)
    on_xeon, on_epyc = entry.on(XEON, "eager"), entry.on(EPYC, "eager")
    assert (on_xeon.loss, on_xeon.grad, on_xeon.kernel_path) == ("ok", "nan", "onednn-float16")
    assert on_xeon.upstream.endswith("util.cc") and on_xeon.reason == "p stays subnormal"
    assert (on_epyc.loss, on_epyc.grad, on_epyc.kernel_path) == ("ok", "inaccurate", None)
    off = entry.on({**XEON, "kernel_switches": {"TF_ENABLE_ONEDNN_OPTS": "0"}}, "eager")
    assert (off.grad, off.kernel_path) == ("inaccurate", None)
    assert [(v["path"], v["grad"]) for v in on_epyc.varies] == [("onednn-float16", "nan"), (None, "inaccurate")]
    compiled = entry.on(XEON, "compiled")
    assert (compiled.grad, compiled.kernel_path, compiled.varies) == ("inaccurate", None, ())


@pytest.mark.parametrize("edit, message", [
    (('path = "onednn-float16"', 'path = "onednn"'), "no kernel_path 'onednn'"),
    (('grad = "nan"', 'grad = "NaN"'), "'NaN' is not an outcome"),
    (('modes = ["eager"]', 'modes = ["jit"]'), "field 'modes'"),
    (('title = "oneDNN float16 kernels"\n', ''), "needs a 'title'"),
    (("[kernel_path.", "[kernel_paths."), "unknown table 'kernel_paths'"),
])
def test_malformed_kernel_paths_refused(tmp_path, edit, message):
    path = tmp_path / "keras.toml"
    path.write_text(KERNEL_FILE.replace(*edit))
    with pytest.raises(ValueError, match=message):
        expectations.load("keras", path)


def test_an_entry_naming_an_api_no_adapter_registers_is_refused():
    entries = [Deviation(api="torch.nn.CrossEntropyLos", loss="nan", grad="ok", reason="a typo")]
    with pytest.raises(ValueError, match="'torch.nn.CrossEntropyLos', which no adapter registers"):
        expectations.check_apis(entries, {"torch.nn.CrossEntropyLoss"}, "torch.toml")
