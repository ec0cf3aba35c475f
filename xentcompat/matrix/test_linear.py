"""The compatibility matrix of linear cross-entropy: the loss of h @ W.T from the hidden states and the weight, fused
(`linear_cross_entropy`, its reference and chunked paths) and materialised (`cross_entropy(h @ W.T)`), each judged
on dL/dh and, as its `[dW]` twin, on dL/dW."""

AREAS = {"linear"}


def test_linear(cell, check_cell):
    check_cell(cell)
