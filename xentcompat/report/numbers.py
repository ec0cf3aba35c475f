"""A record's measurement in a practitioner's words: "loss 16.1 for 100, gradient 0", "NaN gradient", "raises
IndexError". Units of the error model stay in the record as a detail; these words use only the values."""

from __future__ import annotations

import math

from xentcompat.reference.errors import TOLERANCE_UNITS
from xentcompat.results.record import Failure, GradVerdict, LossVerdict, Record


def number(value) -> float | None:
    """A record's number (non-finite ones are the strings "nan", "inf", "-inf" on disk), None when absent."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def shown(value) -> str:
    found = number(value)
    if found is None:
        return "—"
    if math.isnan(found):
        return "NaN"
    if math.isinf(found):
        return "inf" if found > 0 else "-inf"
    return f"{found:.3g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def loss_words(record: Record) -> str:
    """What the loss and the gradient came out as, against the reference, in values."""
    return words(record.loss, record.grad, record.error)


def words(loss: LossVerdict, grad: GradVerdict, error: Failure | None) -> str:
    """`loss_words` of a record's loss, grad and error objects."""
    parts = [_loss_part(loss, error)]
    grad_part = _grad_part(grad)
    if grad_part:
        parts.append(grad_part)
    return ", ".join(part for part in parts if part) or "agrees"


def _loss_part(loss: LossVerdict, error: Failure | None) -> str:
    outcome, value, reference = loss.outcome, loss.value, loss.reference
    if outcome == "ok":
        return ""
    if outcome == "raised":
        return f"raises {error.type if error else 'an error'}"
    if outcome == "crashed":
        return "crashes the process"
    if outcome == "silent":
        return f"returns {shown(value)}"
    if value is None and reference is None:
        return f"loss {outcome}"
    text = f"loss {shown(value)} for {shown(reference)}"
    relative = _relative(value, reference)
    if outcome == "inaccurate" and relative is not None and relative < 0.1:
        text += f" (rel. {relative:.2g})"
    return text


def _relative(value, reference) -> float | None:
    value, reference = number(value), number(reference)
    if value is None or reference is None or reference == 0 or not math.isfinite(reference):
        return None
    return abs(value - reference) / abs(reference)


def _grad_part(grad: GradVerdict) -> str:
    outcome = grad.outcome
    if outcome in ("ok", "raised", "crashed", "silent", "absent"):  # absent: the API offers no gradient
        return ""
    if outcome == "nan":
        return "NaN gradient"
    if outcome == "inf":
        return "inf gradient"
    if outcome == "finite":
        return "finite gradient where the reference is not"
    norm, reference = number(grad.norm), number(grad.reference_norm)
    if norm is None or reference is None:
        return "gradient off"
    if norm == 0 and reference > 0:
        return "gradient 0"
    if reference == 0 or not math.isfinite(reference) or not math.isfinite(norm):
        return f"gradient norm {shown(norm)} for {shown(reference)}"
    ratio = norm / reference  # its norm against the reference's
    if ratio < 1e-3:
        return f"gradient ≈ 0 (×{ratio:.0e})"
    if f"{ratio:.2g}" == "1":  # off in its elements, not in its size
        return f"gradient elements off {number(grad.max_error_units) / TOLERANCE_UNITS:.2g}× the tolerance (norm ×1)"
    return f"gradient ×{ratio:.2g}"
