"""The compatibility matrix on labels: invalid ones (a clear error is the good outcome; `silent` is a deviation;
they run in a child process, so a crash is recorded) and valid labels of other integer dtypes."""

AREAS = {"labels"}


def test_labels(cell, check_cell):
    check_cell(cell)
