"""Threads per process (run/threads.py): the processes a run starts share the cores; a user's OMP_NUM_THREADS
stands."""

from __future__ import annotations

import os

import pytest

from xentcompat.cli import shard_plan
from xentcompat.run import threads


@pytest.mark.parametrize("processes, cores, expected", [(2, 2, "1"), (2, 16, "8"), (3, 16, "5"), (4, 2, "1")])
def test_each_process_gets_its_share_of_the_cores(monkeypatch, processes, cores, expected):
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert threads.per_process(processes, {}) == {"OMP_NUM_THREADS": expected}


def test_a_single_process_keeps_every_core_and_a_users_setting_stands(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert threads.per_process(1, {}) == {} and threads.per_process(0, {}) == {}
    assert threads.per_process(4, {"OMP_NUM_THREADS": "3"}) == {}


def test_a_runs_shards_side_by_side_share_the_cores(monkeypatch):
    """`run` on 2 cores: two shards at once, one process each, one thread each; one target: one shard, two xdist
    workers, one thread each."""
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    for targets in (8, 1):
        at_once, per_shard = shard_plan(targets, 2)
        assert threads.per_process(at_once * per_shard, {}) == {"OMP_NUM_THREADS": "1"}
