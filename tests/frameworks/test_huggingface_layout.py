"""The causal layout of the Hugging Face adapter (`tox -e huggingface`): after ForCausalLMLoss's own label shift the
targets are the case's labels, the extra position is ignored (its gradient exactly zero), and `num_items_in_batch`
is the count of counted targets, so the sum it divides is the case's mean; 0 is no "absent": it divides by zero."""

from __future__ import annotations

import numpy as np
import pytest

from xentcompat.adapters.base import Call
from xentcompat.reference.cases import by_id
from xentcompat.reference.softmax_xent import solve

CASES = ("random-moderate", "ignore-index", "extra-dims", "confident-wrong-gap30", "ignore-index-row-neg-inf")
COUNTS = (None, "int", "tensor")


@pytest.fixture
def hf(target):
    if target != "huggingface":
        pytest.skip("the Hugging Face adapter's layout")
    from xentcompat.adapters import huggingface

    return huggingface


@pytest.mark.parametrize("case_id", CASES)
@pytest.mark.parametrize("count", COUNTS)
def test_the_extra_position_is_ignored_and_the_targets_are_the_cases(hf, case_id, count):
    case = by_id(case_id)
    problem = case.problem("float32", "labels")
    loss, grad, padded = hf.causal_run(Call(problem, "float32"), hf._causal_lm, count)
    n, _ = hf.sequences(problem)
    assert padded.shape == (n, problem.num_classes) and np.all(padded == 0), padded
    reference = solve(problem)
    np.testing.assert_allclose(loss, reference.loss, rtol=1e-5, atol=1e-6)
    counted = np.asarray(problem.labels) != -100  # an ignored row's gradient may be NaN: ignored-row-still-computed
    np.testing.assert_allclose(grad[counted], reference.grad[counted], rtol=1e-4, atol=1e-6)


def test_the_count_is_the_targets_that_are_not_ignored(hf):
    problem = by_id("ignore-index").problem("float32", "labels")
    assert hf.counted(problem) == 3 == int(np.sum(problem.labels != -100))
    assert hf.causal_labels(problem).tolist() == [[0, 0, -100, 1, 4]]


def test_num_items_in_batch_zero_divides_the_sum_by_zero(hf):
    """`num_items_in_batch=0` is not None, so fixed_cross_entropy takes the sum path: sum / 0 = inf, not the mean."""
    import torch

    problem = by_id("random-moderate").problem("float32", "labels")
    x = torch.tensor(hf.causal_logits(problem), dtype=torch.float32)
    y = torch.as_tensor(hf.causal_labels(problem))
    loss = hf.ForCausalLMLoss(x, y, vocab_size=problem.num_classes, num_items_in_batch=0)
    assert torch.isinf(loss) and loss > 0, loss
    mean = hf.ForCausalLMLoss(x, y, vocab_size=problem.num_classes)
    np.testing.assert_allclose(float(mean), solve(problem).loss, rtol=1e-5)
