"""The case catalogue: named inputs, as data, that every API runs at every dtype that can hold them.

A case holds float64 logits (±inf and NaN allowed), class-index labels or probability targets, and options. At run
time the logits are rounded to the dtype; a dtype in which a finite logit would overflow does not run the case (that
is an input-cast limit of the dtype, listed by `unrunnable_dtypes`, not an API error).

The `unnormalized` cases feed the APIs that take a row of probabilities that does not sum to 1 (`exp(logits)`);
every other API runs them as ordinary logits.

Each case has a tier: `realistic` (what models produce: gaps up to 1e4, vocabularies up to 256k, masks, ignored rows,
NaN from a diverged step; a user's own batch) or `stress` (values at the dtype's maximum, gaps of 1e30, subnormals,
+inf logits). Stress results never decide a report row's headline verdict.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from xentcompat.reference.accumulation_cases import ACCUMULATION_CASES
from xentcompat.reference.case import Case
from xentcompat.reference.dtypes import overflowing_values
from xentcompat.reference.linear_cases import LINEAR_CASES, LinearCase
from xentcompat.reference.option_cases import INVALID_CASES, OPTION_CASES, VALID_LABEL_DTYPES
from xentcompat.reference.options import Options

INF, NAN = float("inf"), float("nan")


def unrunnable_dtypes(case: Case) -> dict[str, str]:
    """dtype -> why the case does not run in it."""
    reasons = {}
    for dtype in case.dtypes:
        overflow = case.overflowing(dtype) if isinstance(case, Case) else overflowing_values(case.logits, dtype)
        if overflow.size:
            reasons[dtype] = f"logit {overflow[0]:g} overflows {dtype}"
    return reasons


def _labels(n: int, num_classes: int) -> np.ndarray:
    return np.arange(n) * 3 % num_classes


def _case(case_id: str, area: str, logits, labels=None, description: str = "", code: str | None = None,
          tier: str = "realistic") -> Case:
    logits = np.asarray(logits, dtype=np.float64)
    labels = _labels(*logits.shape) if labels is None else np.asarray(labels, dtype=np.int64)
    return Case(case_id, area, logits, labels, description=description, logits_code=code, tier=tier)


def _gap_cases(gap: float, tier: str = "realistic") -> list[Case]:
    n, num_classes = 4, 10
    labels = _labels(n, num_classes)
    right = np.zeros((n, num_classes))
    right[np.arange(n), labels] = gap
    wrong = np.zeros((n, num_classes))
    wrong[np.arange(n), (labels + 1) % num_classes] = gap
    name = f"{gap:g}".replace("+", "")
    return [
        _case(f"confident-right-gap{name}", "extreme", right, labels, f"target logit {gap:g} above the rest",
              tier=tier),
        _case(f"confident-wrong-gap{name}", "extreme", wrong, labels, f"a wrong class {gap:g} above the target",
              tier=tier),
    ]


def _random(seed: int, shape: tuple[int, int], sigma: float) -> tuple[np.ndarray, str]:
    code = f"np.random.default_rng({seed}).normal(0, {sigma}, {shape})"
    return np.random.default_rng(seed).normal(0, sigma, shape), code


def _many_classes(num_classes: int, label: str) -> list[Case]:
    random, code = _random(num_classes, (2, num_classes), 2.0)
    return [
        _case(f"many-classes-{label}-zeros", "large-vocab", np.zeros((2, num_classes)), [0, num_classes - 1],
              f"C = {num_classes}, all logits 0", f"np.zeros((2, {num_classes}))"),
        _case(f"many-classes-{label}-random", "large-vocab", random, [7, num_classes - 3],
              f"C = {num_classes}, normal(0, 2) logits", code),
    ]


LLM_VOCABULARIES = {"128k": 128256, "152k": 151936}  # Llama 3 and Qwen 2 vocabularies; 256k (Gemma) is below
SWEEP_SCALES = (5, 10, 20, 40, 80, 160, 320, 640)
SWEEP_SHAPE = (4, 128256)


def _vocabulary_cases() -> list[Case]:
    """Real vocabularies with uniform logits: the loss is ln V exactly, the gradient 1/V - [j = y]."""
    return [_case(f"vocab-{label}-uniform", "large-vocab", np.zeros((2, size)), [0, size - 1],
                  f"V = {size}, all logits 0: loss ln V = {np.log(size):.4f}", f"np.zeros((2, {size}))")
            for label, size in LLM_VOCABULARIES.items()]


def _uniform_float16_row() -> Case:
    """One float16 row of V = 128,256 equal logits (the loss ln V): a batch of one. The gradient of -log p at the
    target's probability, -1 / (D p) with D the mean's one row, is -128,256, past float16's 65,504, so a loss that
    takes the log of float16 probabilities passes back inf; with two rows (vocab-128k-uniform) it is -64,128 and fits."""
    size = LLM_VOCABULARIES["128k"]
    case = _case("vocab-128k-uniform-one-row", "large-vocab", np.zeros((1, size)), [0],
                 f"V = {size}, float16, a batch of one row, all logits 0: loss ln V = {np.log(size):.4f}",
                 f"np.zeros((1, {size}))")
    return replace(case, dtypes=("float16",))


CONFIDENT_GAP = 17.0


def _confident_vocabulary_case() -> Case:
    """A confident row over a real vocabulary: the target logit 17 above the other 128,255 (p_y = 0.9947). Each
    small term of the softmax sum, e^-17 = 4e-8, is under half an ulp of the largest term in float32, so whether they
    survive depends on the order of the additions; the loss, ln(1 + 128255 e^-17) = 0.00530, is carried by them
    alone. The target sits at the first, a middle and the last class."""
    size = LLM_VOCABULARIES["128k"]
    labels = np.array([0, 5, size // 2, size - 1])
    logits = np.full((len(labels), size), -CONFIDENT_GAP)
    logits[np.arange(len(labels)), labels] = 0.0
    case = _case("vocab-128k-confident-17", "large-vocab", logits, labels,
                 f"V = {size}, float32: the target logit 17 above all the others (loss 0.0053)",
                 f"np.where(np.arange({size}) == np.array({labels.tolist()})[:, None], 0.0, -17.0)")
    return replace(case, dtypes=("float32",))


CONFIDENT_ROW_GAP = 15.0


def _confident_float16_row() -> Case:
    """One float16 row over a real vocabulary, the target logit 15 above the other 128,255 (p_y = 0.962): a batch of
    one, as a served model scores one position. Each e^-15 = 3.06e-7 lies between 2 and 3 half-ulps of 1 in float32
    (ulp 1.19e-7), so a float32 sum that adds them in order after the 1 rounds each up to 3.58e-7, 17 % high, and the
    loss, ln(1 + 128255 e^-15) = 0.0385, comes out 0.0449: more than float16's rounding of the loss allows. A sum in
    several lanes keeps most terms exact. Float16 only: the float32 rows of vocab-128k-confident-17 show the same
    sums at float32's own tolerance."""
    size = LLM_VOCABULARIES["128k"]
    logits = np.full((1, size), -CONFIDENT_ROW_GAP)
    logits[0, 0] = 0.0
    case = _case("vocab-128k-confident-15-one-row", "large-vocab", logits, [0],
                 f"V = {size}, float16, a batch of one row: the target logit 15 above all the others (loss 0.0385)",
                 f"np.where(np.arange({size}) == 0, 0.0, -15.0)[None, :]")
    return replace(case, dtypes=("float16",))


SMOOTHED_VOCABULARIES = {"4k": 4096, "8k": 8192}


def _smoothing_cases() -> list[Case]:
    """Label smoothing 0.1 over 4,096 and 8,192 classes, normal(0, 1) logits (loss about ln C + 0.5). The smoothed
    term is the mean of a row's C log-probabilities; summed first, a row's comes to about -C (ln C + 0.5): past
    float16's largest finite value, 65,504, for one row at 8,192 classes, and for the four rows of a batch at 4,096."""
    cases = []
    for label, size in SMOOTHED_VOCABULARIES.items():
        logits, code = _random(size, (4, size), 1.0)
        labels = np.random.default_rng(size + 1).integers(0, size, 4)
        case = _case(f"label-smoothing-{label}-classes", "large-vocab", logits, labels,
                     f"label smoothing 0.1 over C = {size} classes, normal(0, 1) logits", code)
        cases.append(replace(case, options=Options(label_smoothing=0.1)))
    return cases


def _scale_sweep() -> list[Case]:
    """bfloat16 logits normal(0, s) over V = 128256, s from 5 to 640: where an API's bfloat16 loss stops being
    usable, and whether it comes back in bfloat16 (quantised) or upcast. Scales up to 40 are what models produce
    (realistic), larger ones stress."""
    cases = []
    for scale in SWEEP_SCALES:
        logits, code = _random(scale, SWEEP_SHAPE, float(scale))
        labels = np.random.default_rng(scale + 1).integers(0, SWEEP_SHAPE[1], SWEEP_SHAPE[0])
        case = _case(f"bf16-scale-{scale}", "scale-sweep", logits, labels,
                     f"bfloat16 logits normal(0, {scale}), V = {SWEEP_SHAPE[1]}", code,
                     tier="realistic" if scale <= 40 else "stress")
        cases.append(replace(case, dtypes=("bfloat16",)))
    return cases


def _catalogue() -> list[Case]:
    moderate, moderate_code = _random(0, (8, 10), 3.0)
    offset, _ = _random(1, (4, 10), 1.0)
    fp16_max, fp32_max = 65504.0, 3.0e38
    cases = [
        _case("random-moderate", "accuracy", moderate, description="normal(0, 3) logits, 8 x 10",
              code=moderate_code),
        _case("uniform-zeros", "accuracy", np.zeros((4, 10)), description="all logits 0: loss log C"),
        _case("large-offset-1e4", "accuracy", offset + 1e4, description="normal(0, 1) + 1e4: shift invariance"),
        _case("tiny-gap-1e-7", "accuracy", 1.0 + np.array([[0, 1e-7, -1e-7, 2e-7]] * 3),
              description="logits 1 apart by 1e-7"),
        *_gap_cases(30.0), *_gap_cases(100.0), *_gap_cases(1e4), *_gap_cases(1e30, "stress"),
        _case("near-max-float16", "extreme", [[fp16_max, 0, -fp16_max, 1], [fp16_max, fp16_max, 0, -1],
                                              [-fp16_max, 0, 1, 2]], [0, 2, 0],
              "logits at +-65504, the float16 maximum; the last loss exceeds it", tier="stress"),
        _case("near-max-float32", "extreme", [[fp32_max, 0, -fp32_max, 1], [fp32_max, fp32_max, 0, -1],
                                              [-fp32_max, 0, 1, 2]], [0, 2, 0],
              "logits at +-3e38, near the bfloat16/float32 maximum", tier="stress"),
        _case("subnormals", "extreme", [[1e-40, -1e-40, 0, 5e-39], [6e-8, -3e-8, 1e-7, 0]], [0, 2],
              "subnormal logits (float32 and float16 ranges)", tier="stress"),
        *_many_classes(32768, "32k"), *_many_classes(262144, "256k"),
        _case("neg-inf-nontarget", "masking", [[2, -INF, 0, 1], [-INF, 3, -INF, 0], [0, 0, 0, -INF]], [0, 1, 2],
              "-inf (masked) logits at non-target classes"),
        _case("neg-inf-target", "masking", [[-INF, 1, 2, 0], [0, 1, 2, 3]], [0, 3],
              "the target's logit is -inf: loss +inf, gradient finite"),
        _case("neg-inf-row", "masking", [[-INF] * 4, [0, 1, 2, 3]], [0, 3],
              "one row entirely -inf: no softmax (NaN); the other row unaffected"),
        _case("pos-inf-nontarget", "nonfinite", [[0, INF, 1, 2], [0, 1, 2, 3]], [0, 3], "+inf at a non-target",
              tier="stress"),
        _case("pos-inf-target", "nonfinite", [[INF, 0, 1, 2], [0, 1, 2, 3]], [0, 3], "+inf at the target",
              tier="stress"),
        _case("nan-logit", "nonfinite", [[0, NAN, 1, 2], [0, 1, 2, 3]], [0, 3],
              "a NaN logit: its row NaN, the other row's gradient unaffected"),
    ]
    return (cases + _vocabulary_cases() + [_uniform_float16_row(), _confident_vocabulary_case(), _confident_float16_row()]
            + _smoothing_cases() + _scale_sweep() + _unnormalized_cases())


def _unnormalized_cases() -> list[Case]:
    """Logits whose exp (an unnormalized probability row, as `from_logits=False` may be handed one) sums to other than
    1: below 1 everywhere, above 1 at one class, and below the 1e-7 a Keras clip raises to. Float32."""
    rows = {"unnormalized-below-1": [[-1.0, -2.0, -0.5, -3.0], [-0.2, -1.5, -2.5, -0.7]],
            "unnormalized-above-1": [[1.0, -0.5, 0.0, -2.0], [2.5, 0.3, -1.0, 0.0]],
            "unnormalized-tiny": [[-20.0, -20.5, -21.0, -19.5], [-18.0, -17.0, -22.0, -20.0]]}
    words = {"unnormalized-below-1": "exp(logits) rows summing to less than 1",
             "unnormalized-above-1": "exp(logits) rows summing to more than 1, one entry above 1",
             "unnormalized-tiny": "exp(logits) rows of entries below 1e-7"}
    return [replace(_case(case_id, "unnormalized", logits, [1, 2], words[case_id]), dtypes=("float32",))
            for case_id, logits in rows.items()]


def _with_option_cases() -> tuple[Case, ...]:
    return tuple(_catalogue()) + OPTION_CASES + VALID_LABEL_DTYPES + INVALID_CASES + ACCUMULATION_CASES


CATALOGUE: tuple[Case | LinearCase, ...] = _with_option_cases() + LINEAR_CASES


def by_id(case_id: str) -> Case:
    for case in CATALOGUE:
        if case.id == case_id:
            return case
    raise KeyError(f"no case {case_id!r} in the catalogue")
