"""Non-finite numbers in strict JSON: NaN and the infinities are written as the strings "nan", "inf" and "-inf"."""

from __future__ import annotations

import math

NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def encode(value):
    """`value` with every non-finite float replaced by "nan", "inf" or "-inf" (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: encode(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(item) for item in value]
    return value


def decode_number(value):
    """A number from results.json: the strings "nan", "inf", "-inf" back to floats."""
    return NONFINITE.get(value, value) if isinstance(value, str) else value
