"""Hypothesis strategies for softmax cross-entropy problems, extreme and non-finite logits included."""

from __future__ import annotations

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from xentcompat.reference.options import Options, Problem, validate

MODERATE = st.floats(-60, 60, allow_nan=False)
EXTREME = st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False)
TINY = st.floats(-1e-300, 1e-300, allow_nan=False)
NONFINITE = st.sampled_from([-np.inf, np.inf, np.nan])


def logit_values(nonfinite: bool) -> st.SearchStrategy[float]:
    choices = [MODERATE, MODERATE, EXTREME, TINY, st.just(0.0)]
    if nonfinite:
        choices += [st.just(-np.inf), NONFINITE]
    return st.one_of(*choices)


@st.composite
def problems(draw, nonfinite: bool = True, max_rows: int = 4, max_classes: int = 8,
             reductions=("none", "sum", "mean"), min_weight: float = 0.0, signed: bool = False) -> Problem:
    """A valid problem: class-index or probability targets, any reduction, weights, ignore_index, smoothing.

    Class weights lie in [0, 10] ([-10, 10] when `signed`); with `min_weight` > 0 a weight's size is either 0 or at
    least `min_weight`. A signed draw whose weighted mean would divide by 0 is rejected.
    """
    n = draw(st.integers(1, max_rows))
    num_classes = draw(st.integers(1, max_classes))
    logits = np.array(draw(st.lists(logit_values(nonfinite), min_size=n * num_classes,
                                    max_size=n * num_classes))).reshape(n, num_classes)
    weights = st.floats(0, 10) if min_weight == 0 else st.just(0.0) | st.floats(min_weight, 10)
    if signed:
        weights = st.tuples(weights, st.sampled_from([1.0, -1.0])).map(lambda pair: pair[0] * pair[1])
    weight = draw(st.none() | st.lists(weights, min_size=num_classes, max_size=num_classes).map(tuple))
    options = dict(reduction=draw(st.sampled_from(reductions)), weight=weight,
                   label_smoothing=draw(st.sampled_from([0.0, 0.0, 0.1, 0.5, 1.0])))
    if draw(st.booleans()):
        probs = np.array(draw(st.lists(st.floats(0, 1), min_size=n * num_classes, max_size=n * num_classes)))
        problem = Problem(logits, probs=probs.reshape(n, num_classes), options=Options(**options))
    else:
        labels = np.array(draw(st.lists(st.integers(0, num_classes - 1), min_size=n, max_size=n)))
        ignore = draw(st.none() | st.sampled_from(sorted(set(labels.tolist()))))
        problem = Problem(logits, labels=labels, options=Options(**options, ignore_index=ignore))
    try:
        validate(problem)
    except ValueError:
        assume(not signed)  # the signed weights of the counted labels sum to 0: no weighted mean
        raise
    return problem
