"""The big-batch path (`reference.compact`): a batch held compact and walked in row chunks gives the numbers the
whole-array path gives; an .npz batch is memory-mapped; a cell over the memory budget says so."""

from __future__ import annotations

import numpy as np
import pytest

from xentcompat.adapters.base import LossApi
from xentcompat.expectations.conditions import holding
from xentcompat.reference import compact
from xentcompat.reference.case_file import load_cases
from xentcompat.reference.cases import Case
from xentcompat.reference.dtypes import DTYPE_NAMES, overflowing_values, round_to
from xentcompat.reference.errors import grad_units
from xentcompat.reference.softmax_xent import solve
from xentcompat.run import cell_memory
from xentcompat.run.verdict import judge_grad

ROWS, CLASSES = 64, 512  # 256 KiB as float64: big once the threshold is 64 KiB


def _batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = (3 * rng.standard_normal((ROWS, CLASSES))).astype(np.float32)
    labels = rng.integers(0, CLASSES, ROWS)
    logits[0, labels[0]] += 30  # a confident row
    logits[1, (labels[1] + 1) % CLASSES] = -np.inf
    logits[2, 3] = 70000.0  # overflows float16 (a dtype that does not run the case)
    return logits, labels


@pytest.fixture
def big(monkeypatch):
    monkeypatch.setenv("XENTCOMPAT_BIG_BATCH_BYTES", str(64 * 2**10))
    monkeypatch.setattr(compact, "CHUNK_ELEMENTS", 5 * CLASSES)  # several chunks, one of them short


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_compact_rounding_holds_the_rounded_values_without_a_float64_copy(big, dtype):
    logits, _ = _batch()
    held = compact.rounded_compact(logits, dtype)
    np.testing.assert_array_equal(held.astype(np.float64), round_to(logits, dtype))
    assert held.dtype == (np.float64 if dtype == "float64" and logits.dtype == np.float64 else np.float32)
    assert (held is logits) == (dtype in ("float32", "float64"))


def _whole_array_path(monkeypatch) -> None:
    monkeypatch.setenv("XENTCOMPAT_BIG_BATCH_BYTES", str(2**40))


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_chunked_overflow_scale_and_conditions_match_the_whole_array(big, monkeypatch, dtype):
    logits, labels = _batch()
    np.testing.assert_array_equal(compact.overflowing_in_chunks(logits, dtype), overflowing_values(logits, dtype))
    assert compact.largest_finite_magnitude(logits) == float(np.max(np.abs(logits[np.isfinite(logits)])))
    assert compact.overflowing_in_chunks(logits, dtype).size == (dtype == "float16")
    if dtype == "float16":
        return
    problem = Case("mine", "user", logits, labels).problem(dtype, "labels")
    chunked = holding(problem, dtype)
    _whole_array_path(monkeypatch)
    assert chunked == holding(problem, dtype) and "probability-zero" in chunked


@pytest.mark.parametrize("dtype", ["bfloat16", "float32", "float64"])
def test_chunked_gradient_verdict_matches_the_whole_array(big, monkeypatch, dtype):
    logits, labels = _batch()
    problem = Case("mine", "user", logits, labels).problem(dtype, "labels")
    reference = solve(problem)
    units = grad_units(problem, reference, dtype)
    grad = reference.grad.astype(np.float32)
    grad[5, 7] += 0.5  # one inaccurate element
    grad[9, 0] = np.nan
    chunked = judge_grad(grad, reference.grad, units.row, 3.4e38)
    _whole_array_path(monkeypatch)
    whole = judge_grad(grad, reference.grad, units.row, 3.4e38)
    assert chunked.outcome == whole.outcome == "nan"
    assert chunked.max_error_units == whole.max_error_units > 4
    assert (chunked.nan_count, chunked.inf_count) == (whole.nan_count, whole.inf_count) == (1, 0)
    assert chunked.reference_norm == pytest.approx(whole.reference_norm, rel=1e-12)
    assert chunked.elementwise_max_units is None  # the detail a big batch leaves out


def test_an_npz_batch_is_memory_mapped_and_keeps_its_dtype(tmp_path):
    logits, labels = _batch()
    np.savez(tmp_path / "batch.npz", logits=logits, labels=labels)
    [case] = load_cases(tmp_path / "batch.npz")
    assert case.logits.dtype == np.float32 and not case.logits.flags.writeable and not case.logits.flags.owndata
    np.testing.assert_array_equal(case.logits, logits)
    np.testing.assert_array_equal(case.labels, labels)
    np.savez_compressed(tmp_path / "packed.npz", logits=logits, labels=labels)  # read into memory instead
    np.testing.assert_array_equal(load_cases(tmp_path / "packed.npz")[0].logits, logits)


def _api(api_id: str, targets: str = "labels", framework: str = "torch",
         memory_batches: float | None = None) -> LossApi:
    return LossApi(api_id, framework, targets, api_id, lambda call: None, memory_batches=memory_batches)


def test_a_cell_over_the_memory_budget_is_refused_with_its_numbers(big, monkeypatch):
    logits, labels = _batch()
    case = Case("mine", "user", logits, labels)
    api = _api("torch.nn.CrossEntropyLoss", memory_batches=2.9)
    elements = ROWS * CLASSES
    need32, _ = cell_memory.cell_need(api, case, "float32")
    need64, _ = cell_memory.cell_need(api, case, "float64")
    # float32 logits held as they are; the framework's 2.9 + 1 batches, or the returned gradient + the reference
    assert need32 == max(int(3.9 * elements * 4), elements * (4 + 8))
    assert need64 == int(3.9 * elements * 8)
    monkeypatch.setenv("XENTCOMPAT_MEMORY_BUDGET", str(need32))
    assert cell_memory.refusal(api, case, "float32") is None
    reason = cell_memory.refusal(api, case, "float64")
    assert reason.startswith(f"not run: a {ROWS} x {CLASSES} batch in float64 needs about")
    assert "over the memory budget" in reason
    probs_need, _ = cell_memory.cell_need(_api("optax.softmax_cross_entropy", "probs", "jax", 4.8), case, "float16")
    assert probs_need == elements * 4 * 2 + int(5.8 * elements * 2)  # rounded logits and one-hot probs in float32
    monkeypatch.setenv("XENTCOMPAT_BIG_BATCH_BYTES", str(2**40))
    assert cell_memory.refusal(api, case, "float64") is None  # a small batch always runs
