"""Hypothesis profiles. The default draws new examples every run (exploration); `ci` is derandomized, the same
examples every run, so a CI verdict is repeatable. Choose with XENTCOMPAT_HYPOTHESIS_PROFILE=ci (`.ci/run` does)."""

from __future__ import annotations

import importlib.util
import os

if importlib.util.find_spec("hypothesis") is not None:
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, print_blob=True)
    settings.load_profile(os.environ.get("XENTCOMPAT_HYPOTHESIS_PROFILE", "default"))
