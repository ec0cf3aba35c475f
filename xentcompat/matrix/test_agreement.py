"""The compatibility matrix on finite inputs: moderate, extreme and large-vocabulary logits, unnormalized
probability rows, and user cases."""

AREAS = {"accuracy", "extreme", "large-vocab", "scale-sweep", "unnormalized", "user"}


def test_agreement(cell, check_cell):
    check_cell(cell)
