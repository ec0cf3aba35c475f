"""The order in which `xentcompat run` starts its shards: the longest first (longest-processing-time scheduling), so
that the last to start are the short ones and no core idles at the end while one long shard runs alone."""

from __future__ import annotations

from xentcompat.adapters.base import TARGETS


def longest_first(targets: list[str]) -> list[str]:
    """`targets` in the order their shards start: the longest known first (an unknown one among the longest)."""
    known = {name: target.eager_seconds for name, target in TARGETS.items() if target.eager_seconds is not None}
    return sorted(targets, key=lambda target: -known.get(target, max(known.values())))
