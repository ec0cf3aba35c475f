"""The compatibility matrix on options (reductions, class weights, ignore index, label smoothing, soft targets,
empty batch, C = 1, extra dimensions), each through every API that offers the option; and gradient accumulation
(one batch as micro-batches, by the documented recipe and the naive one) through every API with a reduction."""

AREAS = {"options", "accumulation"}


def test_options(cell, check_cell):
    check_cell(cell)
