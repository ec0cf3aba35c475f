"""The compatibility matrix on options (reductions, class weights, ignore index, label smoothing, soft targets,
empty batch, C = 1, extra dimensions), each through every API that offers the option."""

AREAS = {"options"}


def test_options(cell, check_cell):
    check_cell(cell)
