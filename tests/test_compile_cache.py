"""The run's jax compilation cache: fresh for each run, removed after it, never over a cache the user set."""

import os

from xentcompat.run import compile_cache


def test_a_run_makes_its_own_cache_and_removes_it(monkeypatch, tmp_path):
    monkeypatch.delenv(compile_cache.DIRECTORY, raising=False)
    directory = compile_cache.start(tmp_path)
    try:
        assert directory is not None and directory.is_dir() and directory.parent == tmp_path
        assert os.environ[compile_cache.DIRECTORY] == str(directory)
        assert os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"  # an eager op compiles in ms
        assert compile_cache.start(tmp_path) is None  # a shard of the run uses the run's cache
    finally:
        compile_cache.stop(directory)
    assert not directory.exists() and compile_cache.DIRECTORY not in os.environ


def test_a_cache_the_user_set_is_left_alone(monkeypatch, tmp_path):
    monkeypatch.setenv(compile_cache.DIRECTORY, str(tmp_path))
    assert compile_cache.start() is None
    compile_cache.stop(None)
    assert os.environ[compile_cache.DIRECTORY] == str(tmp_path) and tmp_path.is_dir()


def test_only_targets_that_run_jax_get_one():
    assert compile_cache.runs_jax("jax") and compile_cache.runs_jax("keras-jax")
    assert not any(map(compile_cache.runs_jax, ("torch", "tensorflow", "keras-torch", "huggingface")))
