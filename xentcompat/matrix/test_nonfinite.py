"""The compatibility matrix on non-finite logits: -inf masking, +inf, NaN."""

AREAS = {"masking", "nonfinite"}


def test_nonfinite(cell, check_cell):
    check_cell(cell)
