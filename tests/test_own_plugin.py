"""The pytest plugin and `xentcompat.testing` in a user's own tests: one test per case, failures carrying the cause,
and the plain assertion on a batch of the user's own."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import own_losses
from xentcompat.testing import CheckFailed, assert_cross_entropy_close, cases

ROOT = Path(__file__).resolve().parents[1]
USER_TEST = '''
import pytest
from losses import cross_entropy as stable
from own_losses import naive_log_softmax as naive

@pytest.mark.xentcompat(framework="numpy", dtypes=["float32"])
def test_stable(xentcompat_case):
    xentcompat_case.check(stable)

@pytest.mark.xentcompat(framework="numpy", dtypes=["float32"])
def test_naive(xentcompat_case):
    xentcompat_case.check(naive)
'''


def test_the_plugin_is_registered_for_pytest():
    found = {entry.name: entry.value for entry in importlib.metadata.entry_points(group="pytest11")}
    assert found.get("xentcompat") == "xentcompat.pytest_plugin"


def test_a_scratch_project_gets_one_test_per_case_and_failures_name_the_cause(tmp_path):
    shutil.copy(ROOT / "examples" / "stable_numpy.py", tmp_path / "losses.py")
    shutil.copy(ROOT / "tests" / "own_losses.py", tmp_path / "own_losses.py")
    (tmp_path / "test_losses.py").write_text(USER_TEST)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "-rf", "test_losses.py"], cwd=tmp_path, capture_output=True, text=True)
    per_function = len(cases(framework="numpy", dtypes=["float32"]))
    assert per_function > 40
    passed, failed = _counts(done.stdout)
    assert passed + failed == 2 * per_function, done.stdout[-2000:]
    assert "test_stable" not in "".join(line for line in done.stdout.splitlines() if line.startswith("FAILED"))
    assert failed >= 5
    assert "FAILED test_losses.py::test_naive[confident-wrong-gap10000-float32]" in done.stdout
    assert "deviates as XC-log-of-underflowed-softmax" in done.stdout
    assert "reproduce with:" in done.stdout


def test_declared_deviations_pass_in_the_plugin(tmp_path):
    """`expect=` in the marker: the naive loss's deviations declared by cause (and the cases no cause explains) pass."""
    shutil.copy(ROOT / "tests" / "own_losses.py", tmp_path / "own_losses.py")
    (tmp_path / "expected.toml").write_text(
        '[[expected]]\ncause = "log-of-underflowed-softmax"\nreason = "naive on purpose"\n\n'
        '[[expected]]\ncause = "label-wraps-negative"\nreason = "numpy indexing"\n\n'
        '[[expected]]\ncases = ["labels-too-few", "vocab-*", "confident-wrong-gap100"]\nreason = "not checked"\n')
    (tmp_path / "test_declared.py").write_text(
        "import pytest\nfrom own_losses import naive_log_softmax\n\n"
        "@pytest.mark.xentcompat(framework='numpy', dtypes=['float32'], expect='expected.toml')\n"
        "def test_naive(xentcompat_case):\n    xentcompat_case.check(naive_log_softmax)\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "test_declared.py"], cwd=tmp_path, capture_output=True, text=True)
    passed, failed = _counts(done.stdout)
    assert (failed, passed) == (0, len(cases(framework="numpy", dtypes=["float32"]))), done.stdout[-3000:]


def test_a_test_without_the_marker_is_a_usage_error(tmp_path):
    (tmp_path / "test_bare.py").write_text("def test_x(xentcompat_case):\n    pass\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_bare.py"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2 and "needs @pytest.mark.xentcompat(framework=...)" in done.stdout  # a collection error


def _stable():
    """examples/stable_numpy.py's loss (the examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("stable_numpy_example", ROOT / "examples" / "stable_numpy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cross_entropy


def _counts(output: str) -> tuple[int, int]:
    last = output.strip().splitlines()[-1]
    words = dict(reversed(part.strip().split(" ")[:2]) for part in last.split(" in ")[0].split(","))
    return int(words.get("passed", 0)), int(words.get("failed", 0))


def test_assert_close_passes_a_correct_loss_and_names_the_cause_of_a_naive_one():
    stable = _stable()
    logits = np.array([[0.0, 120.0, -3.0], [1.0, 2.0, 3.0]], np.float32)
    record = assert_cross_entropy_close(stable, logits, [2, 0], framework="numpy")
    assert record["loss"]["outcome"] == "ok"
    with pytest.raises(CheckFailed, match="XC-log-of-underflowed-softmax"):
        assert_cross_entropy_close(own_losses.naive_log_softmax, logits, [0, 0], framework="numpy")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.floats(-80, 80, width=32), min_size=3, max_size=3), min_size=1, max_size=5),
       st.sampled_from(["float32", "float64"]), st.data())
def test_the_stable_example_agrees_on_any_moderate_batch(rows, dtype, data):
    stable = _stable()
    labels = data.draw(st.lists(st.integers(0, 2), min_size=len(rows), max_size=len(rows)))
    assert_cross_entropy_close(stable, np.array(rows, dtype), labels, framework="numpy")
