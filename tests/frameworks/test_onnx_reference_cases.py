"""ONNX's own test cases of SoftmaxCrossEntropyLoss (`onnx.backend.test.case.node.softmax_cross_entropy_loss`, 34 in
onnx 1.23: reductions, class weights, ignore_index in and out of range, extra dimensions, with and without the
`log_prob` output) check this project's reference (`tox -e onnxruntime`, where onnx is installed): its loss is ONNX's
expected loss, and x - lse is ONNX's expected `log_prob` on every position the loss counts. On an ignored position the
reference's lse is log C by convention (its softmax is not needed there), where ONNX's `log_prob` keeps the row's
log-softmax: those positions are compared with the log-softmax of the logits instead.
"""

from __future__ import annotations

import numpy as np
import pytest

from xentcompat.reference.options import Options, Problem
from xentcompat.reference.softmax_xent import solve

LOSS_RELATIVE = 5e-7  # the largest seen is 2.0e-7: ONNX computes its expected values in float32 (np.float32 gathers, weights), the reference in
# float64: float32's rounding of a loss of a few units


def _onnx_cases() -> list[tuple[str, dict, list, list]]:
    """(name, attributes, inputs, expected outputs) of every case ONNX's generator for the operator writes."""
    from onnx.backend.test.case.node import softmax_cross_entropy_loss as module

    found = []

    def collect(node, inputs, outputs, name, **_):
        attributes = {a.name: _attribute(a) for a in node.attribute}
        found.append((name, attributes, list(inputs), list(outputs)))

    original = module.expect
    module.expect = collect
    try:
        for name in dir(module.SoftmaxCrossEntropyLoss):
            if name.startswith("export"):
                getattr(module.SoftmaxCrossEntropyLoss, name)()
    finally:
        module.expect = original
    return found


def _attribute(attribute):
    from onnx import helper

    value = helper.get_attribute_value(attribute)
    return value.decode() if isinstance(value, bytes) else value


def _problem(attributes: dict, inputs: list) -> Problem:
    """The reference's problem of an ONNX case: logits (N, C, d1, ...) as rows (N·d1·..., C), the labels with them."""
    x, labels = np.asarray(inputs[0], np.float64), np.asarray(inputs[1])
    weight = None if len(inputs) < 3 else tuple(float(w) for w in inputs[2])
    rows = np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])
    options = Options(reduction=attributes.get("reduction", "mean"), weight=weight,
                      ignore_index=attributes.get("ignore_index"), extra_dims=tuple(x.shape[2:]))
    return Problem(rows, labels.reshape(-1).astype(np.int64), None, options)


@pytest.fixture
def cases(target):
    if target != "onnxruntime":
        pytest.skip("onnx's test cases: the onnxruntime env has onnx")
    return _onnx_cases()


def test_onnx_writes_the_34_cases_this_test_reads(cases):
    assert len(cases) == 34
    assert sum(len(outputs) == 2 for _, _, _, outputs in cases) == 17  # half of them with log_prob


def test_the_reference_loss_is_onnxs_expected_loss(cases):
    for name, attributes, inputs, outputs in cases:
        result = solve(_problem(attributes, inputs))
        expected = np.asarray(outputs[0], np.float64).reshape(-1)
        np.testing.assert_allclose(np.reshape(result.loss, -1), expected, rtol=LOSS_RELATIVE, atol=1e-7,
                                   err_msg=name)


def test_x_minus_lse_is_onnxs_log_prob_where_the_loss_counts(cases):
    with_log_prob = [case for case in cases if len(case[3]) == 2]
    assert with_log_prob
    for name, attributes, inputs, outputs in with_log_prob:
        problem = _problem(attributes, inputs)
        result = solve(problem)
        x = np.asarray(inputs[0], np.float64)
        expected = np.moveaxis(np.asarray(outputs[1], np.float64), 1, -1).reshape(problem.logits.shape)
        counted = problem.labels != attributes.get("ignore_index", object())
        log_prob = problem.logits - result.lse[:, None]
        np.testing.assert_allclose(log_prob[counted], expected[counted], rtol=LOSS_RELATIVE, atol=1e-6, err_msg=name)
        rows = np.moveaxis(x, 1, -1).reshape(problem.logits.shape)
        log_softmax = rows - np.log(np.sum(np.exp(rows - rows.max(axis=1, keepdims=True)), axis=1,
                                           keepdims=True)) - rows.max(axis=1, keepdims=True)
        np.testing.assert_allclose(log_softmax[~counted], expected[~counted], rtol=LOSS_RELATIVE, atol=1e-6,
                                   err_msg=name)
