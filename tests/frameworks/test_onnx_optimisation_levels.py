"""The optimisation level of an ONNX Runtime session changes a float16 loss (`tox -e onnxruntime`): the float16
SoftmaxCrossEntropyLoss runs as its function body in float32, and at ORT_ENABLE_ALL the optimised graph sums a one-row
softmax in one float32 accumulator, in order, where ORT_DISABLE_ALL sums it in 8 interleaved lanes. Both values are
what numpy's float32 sums in that order give, so the cause `optimised-graph-sums-in-one-accumulator` states measured
arithmetic, not a tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from xentcompat.adapters.base import Call
from xentcompat.reference.cases import by_id
from xentcompat.reference.options import Problem

CASE = "vocab-128k-confident-15-one-row"


@pytest.fixture
def onnx_runtime():
    pytest.importorskip("onnxruntime", reason="the onnxruntime env has ONNX Runtime")
    from xentcompat.adapters import onnx_runtime
    return onnx_runtime


def _float32_sum_in_lanes(terms: np.ndarray, lanes: int) -> np.float32:
    """`lanes` float32 accumulators, lane i adding terms i, i + lanes, ... in order; then the lanes, in order."""
    total = np.float32(0.0)
    for lane in range(lanes):
        total = np.float32(total + np.cumsum(terms[lane::lanes], dtype=np.float32)[-1])
    return total


def _loss(onnx_runtime, mode: str) -> float:
    case = by_id(CASE)
    call = Call(Problem(case.logits, case.labels), "float16", "cpu", mode)
    loss, grad = onnx_runtime.cross_entropy(call)
    assert grad is None
    return float(loss)


def test_the_default_level_sums_the_row_in_one_accumulator_and_no_optimisation_in_eight_lanes(onnx_runtime):
    case = by_id(CASE)
    terms = np.exp((case.logits[0] - case.logits[0].max()).astype(np.float32))
    eager, compiled = _loss(onnx_runtime, "eager"), _loss(onnx_runtime, "compiled")
    assert compiled == float(np.float16(np.log(_float32_sum_in_lanes(terms, 1))))
    assert eager == float(np.float16(np.log(_float32_sum_in_lanes(terms, 8))))
    exact = np.log1p(128255 * np.exp(-15.0))
    assert compiled == pytest.approx(0.04486, abs=1e-5) and compiled / exact == pytest.approx(1.166, abs=1e-3)
    assert eager == pytest.approx(0.03928, abs=1e-5)
