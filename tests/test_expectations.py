"""Causes as data: selectors, input conditions, versions, kernel paths; no order semantics (two claims on one cell
are an error naming both); malformed files refused by name; the shipped causes load and claim no cell twice."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from xentcompat import expectations
from xentcompat.expectations import CauseConflict, expectation
from xentcompat.expectations.conditions import PROBABILITY_CONDITIONS, holding
from xentcompat.expectations.model import KINDS
from xentcompat.reference.cases import CATALOGUE, by_id
from xentcompat.reference.dtypes import round_to
from xentcompat.reference.options import Options, Problem
from xentcompat.run.harness import finding_id
from xentcompat.run.shard import MODES

CELL = {"api": "torch.nn.CrossEntropyLoss", "case": "neg-inf-row", "dtype": "float16", "device": "cpu",
        "mode": "eager", "backend": None}
CAUSE = '''
[overflow-one]
kind = "overflow"
title = "A row loss overflows"
explanation = "The row losses are computed in the input dtype."
upstream = ["https://github.com/pytorch/pytorch/issues/1"]

[[overflow-one.cells]]
framework = "torch"
apis = ["torch.nn.CrossEntropyLoss"]
cases = ["neg-inf-*"]
versions = ">=2.5,<3"
loss = "inf"
grad = "ok"
'''


def _load(tmp_path, *texts: str, name: str = "x.toml"):
    directory = tmp_path / "causes"
    directory.mkdir(parents=True, exist_ok=True)
    for index, text in enumerate(texts):
        (directory / f"{index}-{name}").write_text(text)
    return expectations.load("torch", directory), expectations.causes(directory)


def test_globs_and_versions_select_cells(tmp_path):
    [effect], _ = _load(tmp_path, CAUSE)
    assert expectation([effect], CELL, "2.13.0+cpu").cause.id == "overflow-one"
    assert expectation([effect], {**CELL, "case": "random-moderate"}, "2.13.0") is None
    assert expectation([effect], CELL, "2.4.1") is None


def test_two_causes_claiming_one_cell_fail_naming_both(tmp_path):
    other = CAUSE.replace("overflow-one", "overflow-two").replace('loss = "inf"', 'loss = "nan"')
    effects, _ = _load(tmp_path, CAUSE, other)
    with pytest.raises(CauseConflict, match=r"overflow-one: inf/ok\) and by .*overflow-two: nan/ok"):
        expectations.check_claims(effects, [(CELL, "2.13.0", frozenset)])


def test_an_except_or_an_unless_takes_cells_out(tmp_path):
    narrowed = CAUSE.replace("overflow-one", "overflow-two") + '[[overflow-two.cells.except]]\ncases = ["neg-inf-row"]\n'
    effects, _ = _load(tmp_path, CAUSE, narrowed)
    assert expectations.check_claims(effects, [(CELL, "2.13.0", frozenset)]) == 1
    conditional = CAUSE.replace('cases = ["neg-inf-*"]', 'when = ["probability-zero"]\nunless = ["target-underflows"]')
    [effect], _ = _load(tmp_path / "c", conditional)
    assert expectation([effect], CELL, None, lambda: frozenset({"probability-zero"})) is effect
    assert expectation([effect], CELL, None, lambda: frozenset({"probability-zero", "target-underflows"})) is None
    assert expectation([effect], CELL, None, frozenset) is None


def test_rewording_a_cause_keeps_its_finding_id(tmp_path):
    ids = []
    for explanation in ("The row losses are computed in the input dtype.", "Reworded entirely, at length."):
        [effect], _ = _load(tmp_path / explanation[:3], CAUSE.replace(
            "The row losses are computed in the input dtype.", explanation))
        promised = effect.on({}, "eager")
        ids.append(finding_id(("inf", "ok"), ("ok", "ok"), promised, "torch", None, CELL["api"]))
    assert ids == ["XC-overflow-one", "XC-overflow-one"]


def test_a_deviation_no_cause_predicts_is_an_unexplained_finding_of_its_api_and_outcome():
    nothing = expectations.Expected("ok", "ok", None, None, None)
    found = finding_id(("inf", "nan"), ("ok", "ok"), nothing, "torch", None, "torch.nn.NLLLoss(log(softmax))")
    assert found.startswith("XC-unexplained-")
    assert found == finding_id(("inf", "nan"), ("ok", "ok"), nothing, "torch", None, "torch.nn.NLLLoss(log(softmax))")
    assert found != finding_id(("inf", "ok"), ("ok", "ok"), nothing, "torch", None, "torch.nn.NLLLoss(log(softmax))")


@pytest.mark.parametrize("edit, message", [
    (('kind = "overflow"', 'kind = "numerics"'), "field 'kind': 'numerics' is not one of"),
    (('title = "A row loss overflows"\n', ''), "field 'title'"),
    (('upstream = ["https://github.com/pytorch/pytorch/issues/1"]\n', ''), "needs 'upstream' links or 'no_upstream'"),
    (('upstream = ["https://github.com/pytorch/pytorch/issues/1"]', 'upstream = "pytorch#1"'), "field 'upstream'"),
    (('cases = ["neg-inf-*"]', 'cases = ["neg-inf-rows"]'), "field 'cases': 'neg-inf-rows' matches no case"),
    (('cases = ["neg-inf-*"]', 'dtypes = ["fp16"]'), "field 'dtypes': 'fp16' matches no dtype"),
    (('cases = ["neg-inf-*"]', 'modes = ["jit"]'), "field 'modes': 'jit' matches no mode"),
    (('cases = ["neg-inf-*"]', 'backends = ["numpy"]'), "field 'backends': 'numpy' matches no backend"),
    (('cases = ["neg-inf-*"]', 'when = ["row-is-big"]'), "field 'when'"),
    (('versions = ">=2.5,<3"', 'versions = "2.x"'), "field 'versions': '2.x' is not a version specifier"),
    (('loss = "inf"', 'loss = "wrong"'), "'wrong' is not an outcome"),
    (('loss = "inf"', 'colour = 1\nloss = "inf"'), "unknown field 'colour'"),
    (('apis = ["torch.nn.CrossEntropyLoss"]\n', ''), "missing field 'apis'"),
    (('[[overflow-one.cells]]', '[[overflow-one.cell]]'), "unknown field 'cell'"),
    (('grad = "ok"', 'grad = "ok"\nalso = [["crashed"]]'), "field 'also': expected a list of \\[loss, grad\\]"),
    (('grad = "ok"', 'grad = "ok"\nalso = [["crashed", "broken"]]'), "field 'also'"),
    (('loss = "inf"\ngrad = "ok"', 'mechanism = "softmax-twice"\nalso = [["crashed", "crashed"]]'),
     "only an entry of fixed outcomes lists other outcomes"),
])
def test_malformed_causes_refused(tmp_path, edit, message):
    with pytest.raises(ValueError, match=message):
        _load(tmp_path, CAUSE.replace(*edit))


def test_a_cause_defined_twice_is_refused(tmp_path):
    with pytest.raises(ValueError, match="cause 'overflow-one' is defined twice"):
        _load(tmp_path, CAUSE, CAUSE)


def test_shipped_causes_have_a_kind_a_title_and_upstream_or_what_was_searched():
    causes = expectations.causes()
    assert 10 <= len(causes) <= 80  # one per mechanism over 11 targets: far fewer than the 22,000 cells they cover
    for cause in causes.values():
        assert cause.kind in KINDS and cause.title and cause.explanation
        assert cause.upstream or cause.no_upstream
        assert all(link.startswith("https://") for link in cause.upstream)


def test_an_outcome_that_depends_on_memory_outside_the_array_is_the_cause_s_either_way(tmp_path):
    """An unchecked read outside the row returns what lies there (silent) or faults (crashed): `also` names the
    other pair, and both are the cause's finding; any third outcome is not."""
    unchecked = CAUSE.replace('loss = "inf"\ngrad = "ok"', 'loss = "silent"\ngrad = "silent"\nalso = [["crashed", "crashed"]]')
    [effect], _ = _load(tmp_path, unchecked)
    promised = effect.on({}, "eager")
    found = [finding_id(observed, ("raised", "raised"), promised, "torch", None, CELL["api"])
             for observed in (("silent", "silent"), ("crashed", "crashed"), ("nan", "nan"))]
    assert found[:2] == ["XC-overflow-one", "XC-overflow-one"] and found[2].startswith("XC-unexplained-")
    assert promised.allows(("crashed", "crashed")) and not promised.allows(("silent", "crashed"))


API_PREFIXES = {"torch": ("torch.",), "keras": ("keras.",), "tensorflow": ("tf.",),
                "jax": ("optax.", "jax.", "log(jax."), "mlx": ("mlx.", "mx."),
                "timm": ("timm.",), "torchtune": ("torchtune.",), "onnxruntime": ("ort.",), "sklearn": ("sklearn.",)}  # these two: measured by `xentcompat check`


@pytest.mark.parametrize("framework", sorted(API_PREFIXES))
def test_shipped_entries_name_their_framework_s_apis(framework):
    effects = expectations.load(framework)
    assert effects
    assert all(api.startswith(API_PREFIXES[framework]) for effect in effects for api in effect.apis)


def test_shipped_causes_claim_no_catalogue_cell_twice_and_every_entry_covers_one():
    """Every catalogue case × dtype × mode × device × backend of every API the causes name (the framework envs check
    their real cells again before a shard starts); an entry that covers no cell is stale (the framework fixed it, or
    a selector is wrong)."""
    checked, covered, effects_seen, inputs = 0, set(), [], {}
    for framework in API_PREFIXES:
        effects = expectations.load(framework)
        effects_seen += [effect.where for effect in effects]
        apis = sorted({api for effect in effects for api in effect.apis})
        backends = ("tensorflow", "jax", "torch") if framework == "keras" else (None,)
        for api, case, dtype, mode, device, backend in itertools.product(
                apis, CATALOGUE, ("float16", "bfloat16", "float32", "float64"), MODES,
                ("cpu", "cuda"), backends):
            cell = {"api": api, "case": case.id, "area": case.area, "tier": case.tier, "tags": case.facts,
                    "dtype": dtype, "device": device, "mode": mode, "backend": backend}
            targets = "labels" if case.labels is not None else "probs"
            conditions = _once(inputs, (case.id, dtype),
                               lambda case=case, dtype=dtype: holding(case.problem(dtype, targets), dtype))
            checked += expectations.check_claims(effects, [(cell, None, conditions)])
            covered |= {effect.where for effect in effects if effect.covers(cell, None, conditions)}
    assert checked > 10_000
    assert [where for where in effects_seen if where not in covered] == []


def _once(found: dict, key: tuple, compute):
    """`compute()`, called the first time any cell of one case and dtype needs its input conditions."""
    return lambda: found[key] if key in found else found.setdefault(key, compute())


def test_a_user_batch_gets_the_catalogue_s_cause_through_its_input_conditions():
    """[[200, 0, 0]] with label 1 in float32: the target's probability e^-200 underflows, as in the catalogue's
    confident-wrong cases, so NLLLoss(log(softmax)) is expected inf/nan for the same cause."""
    effects = expectations.load("torch")
    mine = Problem(np.array([[200.0, 0.0, 0.0]]), np.array([1]))
    cell = {**CELL, "api": "torch.nn.NLLLoss(log(softmax))", "case": "mine", "dtype": "float32"}
    found = expectation(effects, cell, "2.13.0", lambda: holding(mine, "float32"))
    catalogue = by_id("confident-wrong-gap10000")
    theirs = expectation(effects, {**cell, "case": catalogue.id}, "2.13.0",
                         lambda: holding(catalogue.problem("float32", "labels"), "float32"))
    assert found.cause.id == theirs.cause.id == "log-of-underflowed-softmax"
    assert (found.loss, found.grad) == ("inf", "nan")


@pytest.mark.parametrize("logits, label, dtype, expected", [
    ([[200.0, 0.0, 0.0]], 1, "float32", {"target-underflows", "probability-zero", "target-outside-keras-clip"}),
    ([[100.0, 0.0, 0.0]], 1, "float32", {"target-subnormal", "probability-subnormal", "target-outside-keras-clip",
                                         "target-gradient-overflows"}),  # 1 / e^-100 = 2.7e43 is past float32
    ([[12.0, 0.0, 0.0]], 1, "float16", {"target-subnormal", "probability-subnormal",
                                        "target-gradient-overflows"}),  # 1 / e^-12 = 163,000 is past 65,504
    ([[10.0, 0.0, 0.0]], 1, "float16", {"target-subnormal", "probability-subnormal"}),  # 1 / e^-10 = 22,000 fits
    ([[100.0, 0.0, 0.0]], 1, "float16", {"target-underflows", "probability-zero", "target-outside-keras-clip"}),
    ([[100.0, 0.0, 0.0]], 0, "float32", {"probability-subnormal", "target-outside-keras-clip"}),
    ([[1.0, 0.0, -np.inf]], 0, "float64", {"probability-zero"}),
    ([[1.0, 0.0, np.nan]], 0, "float32", set()),
    ([[800.0, 0.0, 0.0]], 1, "float64", {"target-underflows", "probability-zero", "target-outside-keras-clip"}),
    ([[1.0, 0.0, 0.0]], 0, "float16", set()),
])
def test_input_conditions(logits, label, dtype, expected):
    assert holding(Problem(np.array(logits), np.array([label])), dtype) & set(PROBABILITY_CONDITIONS) == expected


@pytest.mark.parametrize("logits, label, dtype, outside", [
    ([[0.0, 0.0, 0.0]], 0, "float32", False),  # 1/3
    ([[16.0, 0.0, 0.0]], 1, "float32", False),  # e^-16 = 1.1e-7: just inside
    ([[17.0, 0.0, 0.0]], 1, "float32", True),  # e^-17 = 4.1e-8 < 1e-7
    ([[0.0, -np.inf, -np.inf]], 1, "float64", True),  # a masked target: probability 0
    ([[17.0, 0.0, 0.0]], 0, "float64", True),  # 1 - 8e-8 > 1 - 1e-7 as float32 holds it (0.99999988)
    ([[17.0, 0.0, 0.0]], 0, "float16", True),  # rounds to 1 in float16
    ([[8.0, 0.0, 0.0]], 0, "float16", False),  # 1 - 6.7e-4 stays below 1 in float16 (0.99951)
])
def test_target_outside_keras_clip(logits, label, dtype, outside):
    holds = "target-outside-keras-clip" in holding(Problem(np.array(logits), np.array([label])), dtype)
    assert holds == outside


@pytest.mark.parametrize("logits, outside", [
    ([[-1.0, -2.0, -0.5]], False),  # exp in (0.13, 0.61): inside [1e-7, 1 - 1e-7]
    ([[1.0, -0.5, -2.0]], True),  # e > 1 - 1e-7
    ([[0.0, -1.0, -2.0]], True),  # exp(0) = 1 > 1 - 1e-7
    ([[-20.0, -1.0, -2.0]], True),  # e^-20 < 1e-7
    ([[-1.0, -np.inf, -2.0]], False),  # exp(-inf) = 0: raised to 1e-7 before or after dividing, alike
])
def test_exp_outside_keras_clip(logits, outside):
    holds = "exp-outside-keras-clip" in holding(Problem(np.array(logits), np.array([0])), "float32")
    assert holds == outside


KERNEL_PATHS = '''
[onednn-float16]
title = "oneDNN float16 kernels"
modes = ["eager"]
upstream = "https://github.com/tensorflow/tensorflow/blob/master/tensorflow/core/util/util.cc"
[[onednn-float16.when]]
cpu_flags = ["avx512bw", "avx512_fp16"]
switches_not = { TF_ENABLE_ONEDNN_OPTS = ["0"] }
'''
KERNEL_CAUSE = '''
[flush]
kind = "underflow"
title = "p flushes to 0"
explanation = "p flushes to 0."
no_upstream = "none found"
[[flush.cells]]
framework = "torch"
apis = ["torch.nn.CrossEntropyLoss"]
loss = "ok"
grad = "inaccurate"
[[flush.cells.kernel]]
path = "onednn-float16"
loss = "ok"
grad = "nan"
note = "p stays subnormal"
'''
XEON = {"cpu": {"flags": ["avx512bw", "avx512f", "avx512_fp16"]}, "kernel_switches": {}}
EPYC = {"cpu": {"flags": ["avx512bw", "avx512f"]}, "kernel_switches": {}}


def test_a_kernel_path_gives_its_own_outcomes_on_the_machines_that_take_it(tmp_path):
    (tmp_path / "causes").mkdir()
    (tmp_path / "causes" / "kernel_paths.toml").write_text(KERNEL_PATHS)
    [entry], _ = _load(tmp_path, KERNEL_CAUSE)
    on_xeon, on_epyc = entry.on(XEON, "eager"), entry.on(EPYC, "eager")
    assert (on_xeon.loss, on_xeon.grad, on_xeon.kernel_path, on_xeon.cause) == ("ok", "nan", "onednn-float16", "flush")
    assert on_xeon.upstream.endswith("util.cc") and on_xeon.reason == "p stays subnormal"
    assert (on_epyc.loss, on_epyc.grad, on_epyc.kernel_path) == ("ok", "inaccurate", None)
    off = entry.on({**XEON, "kernel_switches": {"TF_ENABLE_ONEDNN_OPTS": "0"}}, "eager")
    assert (off.grad, off.kernel_path) == ("inaccurate", None)
    assert [(v["path"], v["grad"]) for v in on_epyc.varies] == [("onednn-float16", "nan"), (None, "inaccurate")]
    compiled = entry.on(XEON, "compiled")
    assert (compiled.grad, compiled.kernel_path, compiled.varies) == ("inaccurate", None, ())


@pytest.mark.parametrize("edit, message", [
    (('path = "onednn-float16"', 'path = "onednn"'), "no kernel path 'onednn'"),
    (('grad = "nan"', 'grad = "NaN"'), "'NaN' is not an outcome"),
    (('note = "p stays subnormal"', 'cause = "elsewhere"\nnote = "p"'), "no cause 'elsewhere'"),
])
def test_malformed_kernel_outcomes_refused(tmp_path, edit, message):
    (tmp_path / "causes").mkdir()
    (tmp_path / "causes" / "kernel_paths.toml").write_text(KERNEL_PATHS)
    with pytest.raises(ValueError, match=message):
        _load(tmp_path, KERNEL_CAUSE.replace(*edit))


def test_an_entry_naming_an_api_no_adapter_registers_is_refused(tmp_path):
    effects, _ = _load(tmp_path, CAUSE.replace('"torch.nn.CrossEntropyLoss"', '"torch.nn.CrossEntropyLos"'))
    with pytest.raises(ValueError, match="'torch.nn.CrossEntropyLos', which no adapter registers"):
        expectations.check_apis(effects, {"torch.nn.CrossEntropyLoss"}, "torch")


@pytest.mark.parametrize("logits, labels, dtype, expected", [
    (np.zeros((1, 70000)), [0], "float16", {"softmax-sum-overflows", "rows-uniform"}),  # sum e^0 = 70000 > 65504
    (np.zeros((1, 70000)), [0], "float32", {"rows-uniform"}),
    ([[65504.0, 0.0, -65504.0]], [2], "float16", {"logit-spread-overflows", "row-loss-overflows",
                                                  "loss-sum-overflows"}),  # the loss 131008 rounds to inf
    ([[65504.0, 0.0, -65504.0]], [1], "float16", {"logit-spread-overflows"}),  # 65504: the loss fits, if only just
    ([[65504.0, 0.0], [65504.0, 0.0]], [1, 1], "float16", {"loss-sum-overflows"}),  # each row fits, their sum not
    ([[65504.0, 0.0], [65504.0, 0.0]], [1, 1], "float32", set()),
    ([[3e38, 0.0], [0.0, -3e38]], [1, 1], "float32", {"loss-sum-overflows"}),
    ([[1.0, 1.0, -np.inf], [2.0, 2.0, 2.0]], [0, 1], "float32", {"rows-uniform"}),  # equal over the finite logits
    ([[1.0, 1.0, 1.0], [2.0, 2.5, 2.0]], [0, 1], "float32", set()),
    ([[1.0, 1.0, 1.0], [2.0, 2.5, 2.0]], [0, -100], "float32", {"rows-uniform"}),  # an ignored row does not count
    ([[np.nan, 1.0, 1.0]], [0], "float32", set()),
])
def test_range_and_loss_conditions(logits, labels, dtype, expected):
    """The overflow conditions of a batch as the dtype rounds it, and rows-uniform over the counted rows."""
    names = {"softmax-sum-overflows", "logit-spread-overflows", "row-loss-overflows", "loss-sum-overflows",
             "rows-uniform"}
    problem = Problem(round_to(np.array(logits, dtype=np.float64), dtype), np.array(labels))
    assert holding(problem, dtype) & names == expected


def _confident_row(classes: int, gap: float) -> np.ndarray:
    row = np.full((1, classes), -gap)
    row[0, 0] = 0.0
    return row


@pytest.mark.parametrize("logits, dtype, overflows", [
    (np.zeros((1, 70000)), "float16", True),  # p = 1/C: the second sum is C = 70000 > 65504
    (np.zeros((1, 70000)), "float32", False),
    (np.zeros((1, 60000)), "float16", False),
    (_confident_row(128256, 15.0), "float16", False),  # p_max = 0.962: the others add e^-0.962 each, 49,000 in all
    (_confident_row(128256, 0.5), "float16", True),  # p_max = 1.3e-5: every term near 1 again
])
def test_second_softmax_sum_overflows_where_the_sum_over_probabilities_passes_the_dtype(logits, dtype, overflows):
    """A softmax applied twice sums exp(p - max p) over its row: between C / e and C, so C alone does not decide."""
    problem = Problem(round_to(np.array(logits, dtype=np.float64), dtype), np.array([0]))
    assert ("second-softmax-sum-overflows" in holding(problem, dtype)) == overflows


@pytest.mark.parametrize("classes, rows, reduction, dtype, expected", [
    (8192, 1, "mean", "float16", True),  # one row's sum of -log p, about 8192 x 9.5, is past 65504
    (4096, 1, "mean", "float16", False),  # about 4096 x 8.8 = 36000 fits
    (4096, 4, "mean", "float16", True),  # four rows of 36000 do not, summed before the mean
    (4096, 4, "none", "float16", False),  # per-row losses never add them up
    (8192, 4, "mean", "bfloat16", False),  # bfloat16 reaches 3e38
])
def test_smoothing_sum_overflows_where_the_smoothed_term_passes_the_dtype(classes, rows, reduction, dtype, expected):
    logits = round_to(np.random.default_rng(classes).normal(0, 1, (rows, classes)), dtype)
    options = Options(label_smoothing=0.1, reduction=reduction)
    assert ("smoothing-sum-overflows" in holding(Problem(logits, np.zeros(rows, dtype=np.int64), None, options),
                                                 dtype)) is expected
    unsmoothed = Options(reduction=reduction)
    assert "smoothing-sum-overflows" not in holding(Problem(logits, np.zeros(rows, dtype=np.int64), None, unsmoothed),
                                                    dtype)


MERGED = '''
[overflow-old]
kind = "overflow"
title = "Once thought a row loss overflow"
explanation = "Its cells are the sum's."
no_upstream = "none"
merged_into = "overflow-one"
'''


def test_a_merged_cause_keeps_its_id_and_covers_nothing(tmp_path):
    effects, causes = _load(tmp_path, CAUSE, MERGED)
    assert causes["overflow-old"].summary()["merged_into"] == "overflow-one"
    assert {effect.cause.id for effect in effects} == {"overflow-one"}


@pytest.mark.parametrize("edit, message", [
    (lambda text: text.replace('"overflow-one"', '"overflow-two"'), "'overflow-two' is not a cause in use"),
    (lambda text: text + '\n[[overflow-old.cells]]\nframework = "torch"\napis = ["torch.nn.CrossEntropyLoss"]\n'
                         'loss = "inf"\ngrad = "ok"\n', "merged into 'overflow-one', so it covers no cells"),
])
def test_a_merged_cause_must_name_a_cause_in_use_and_cover_nothing(tmp_path, edit, message):
    with pytest.raises(ValueError, match=message):
        _load(tmp_path, CAUSE, edit(MERGED))


@pytest.mark.parametrize("classes, rows, dtype, holding_now", [
    (128256, 2, "float16", "uniform-gradient-fits"),  # C/N = 64128 <= 65504
    (151936, 2, "float16", "uniform-gradient-overflows"),  # 75968
    (151936, 4, "float16", "uniform-gradient-fits"),
    (151936, 2, "float32", "uniform-gradient-fits"),
])
def test_uniform_gradient_conditions(classes, rows, dtype, holding_now):
    """-1/(N p) at p = 1/C: whether the mean's gradient of a uniform row's log-probability fits the dtype."""
    found = holding(Problem(np.zeros((rows, classes)), np.zeros(rows, np.int64)), dtype)
    assert found & {"uniform-gradient-fits", "uniform-gradient-overflows"} == {holding_now}
