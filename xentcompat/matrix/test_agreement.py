"""The compatibility matrix on finite inputs: moderate, extreme and large-vocabulary logits, and user cases."""

AREAS = {"accuracy", "extreme", "large-vocab", "user"}


def test_agreement(cell, check_cell):
    check_cell(cell)
