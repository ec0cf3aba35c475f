"""The pytest plugin (registered as `xentcompat` through the `pytest11` entry point, so installing xentcompat enables
it): a test that takes the `xentcompat_case` fixture and carries the `xentcompat` marker runs once per catalogue case
and dtype its claims cover, each a test of its own.

    @pytest.mark.xentcompat(framework="torch", options=["reduction"], expect="expected.toml")
    def test_my_loss(xentcompat_case):
        xentcompat_case.check(my_cross_entropy)

The marker takes the arguments of `xentcompat.testing.cases`. A deviation fails the test with the cause, both
values and a repro; a declared one passes.
"""

from __future__ import annotations

import pytest

FIXTURE = "xentcompat_case"


def pytest_configure(config):
    config.addinivalue_line("markers", "xentcompat(framework, targets='labels', options=(), dtypes=..., modes=..., "
                                       "device='cpu', expect=()): run the test once per catalogue case (and dtype) "
                                       f"the claims cover, with the `{FIXTURE}` fixture")


def pytest_generate_tests(metafunc):
    if FIXTURE not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("xentcompat")
    if marker is None:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: the {FIXTURE} fixture needs "
                                "@pytest.mark.xentcompat(framework=...) saying what the loss takes")
    from xentcompat.testing import cases

    try:
        params = cases(*marker.args, **marker.kwargs)
    except (TypeError, ValueError) as error:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: @pytest.mark.xentcompat: {error}") from None
    metafunc.parametrize(FIXTURE, params, ids=str)
