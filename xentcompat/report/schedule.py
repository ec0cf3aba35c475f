"""The order in which `xentcompat run` starts its shards: the longest first (longest-processing-time scheduling), so
that the last to start are the short ones and no core idles at the end while one long shard runs alone."""

from __future__ import annotations

# seconds of each target's eager shard on 2 cores (`xentcompat run`, every target, two shards at a time, 2026-12)
EAGER_SECONDS = {"jax": 525, "keras-jax": 242, "keras-torch": 154, "torch": 97, "huggingface": 62, "tensorflow": 58}


def longest_first(targets: list[str]) -> list[str]:
    """`targets` in the order their shards start: the longest known first (an unknown one among the longest)."""
    return sorted(targets, key=lambda target: -EAGER_SECONDS.get(target, max(EAGER_SECONDS.values())))
