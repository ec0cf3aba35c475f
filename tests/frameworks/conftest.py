"""The framework env's target (`--framework`, set by `tox -e <target>`), for the end-to-end tests of this folder."""

from __future__ import annotations

import pytest

from xentcompat.adapters import base


@pytest.fixture
def target(request) -> str:
    name = request.config.getoption("framework")
    if name is None:
        pytest.skip("needs a target: --framework (tox -e <target>)")
    reason = base.missing_requirement(name)
    if reason:
        pytest.skip(reason)
    return name
