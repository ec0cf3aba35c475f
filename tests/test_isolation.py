"""Crash isolation: invalid input runs in a child process; a crash becomes a `crashed` record and the run goes on."""

from __future__ import annotations

import os

import pytest

from tests import crashing_adapter
from xentcompat.adapters.base import AdapterError, registered
from xentcompat.reference.cases import by_id
from xentcompat.run.harness import Cell, check
from xentcompat.run.isolation import Setup, close_children, describe_exit

SETUP = Setup((("XC_ISOLATION_TEST", "1"),), ("tests.crashing_adapter",))


@pytest.fixture(scope="module")
def fake_apis():
    apis = {api.id: api for api in registered(crashing_adapter.__name__)}
    yield apis
    close_children()


def test_a_crash_becomes_a_record_and_later_cells_still_run(fake_apis):
    invalid = by_id("label-equals-C")
    crashed = check(Cell(fake_apis["fake.aborts"], invalid, "float32"), [], SETUP).record
    assert (crashed["loss"]["outcome"], crashed["grad"]["outcome"]) == ("crashed", "crashed")
    assert crashed["error"] == {"type": "crashed", "message": "killed by signal SIGABRT (-6)"}
    assert crashed["finding"] and crashed["invalid"] == invalid.invalid
    after = check(Cell(fake_apis["fake.checks_labels"], invalid, "float32"), [], SETUP).record
    assert (after["loss"]["outcome"], after["grad"]["outcome"]) == ("raised", "raised")
    assert after["error"]["type"] == "IndexError" and after["finding"] is None  # a clear error is the good outcome


def test_valid_cases_run_in_process_and_invalid_ones_in_the_child(fake_apis):
    calm = check(Cell(fake_apis["fake.checks_labels"], by_id("random-moderate"), "float32"), [], SETUP).record
    assert (calm["loss"]["outcome"], calm["grad"]["outcome"]) == ("ok", "ok")
    assert "XC_ISOLATION_TEST" not in os.environ  # only the child set the target's environment
    api = fake_apis["fake.reports_its_process"]
    valid = check(Cell(api, by_id("random-moderate"), "float32"), [], SETUP).record
    invalid = check(Cell(api, by_id("label-minus-1"), "float32"), [], SETUP).record
    assert valid["loss"]["value"] == os.getpid()  # ran here
    assert invalid["loss"]["outcome"] == "silent" and invalid["loss"]["value"] != os.getpid()  # ran in the child


@pytest.mark.parametrize("case", ["random-moderate", "label-minus-1"])
def test_an_adapter_bug_fails_the_cell_instead_of_counting_as_raised(fake_apis, case):
    """Valid input in process, invalid in the child: either way a NameError in the adapter is no outcome."""
    with pytest.raises(AdapterError, match=r"(?s)fake.broken_conversion, not the framework, raised NameError.*"
                                           r"undefined_name"):
        check(Cell(fake_apis["fake.broken_conversion"], by_id(case), "float32"), [], SETUP)


def test_exit_statuses_in_words():
    assert describe_exit(-11) == "killed by signal SIGSEGV (-11)"
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(None) == "the child process did not exit"


def test_a_value_for_invalid_input_is_silent(fake_apis):
    record = check(Cell(fake_apis["fake.ignores_labels"], by_id("label-minus-1"), "float32"), [], SETUP).record
    assert (record["loss"]["outcome"], record["grad"]["outcome"]) == ("silent", "silent")
    assert record["loss"]["value"] == 1.25 and record["error"] is None and record["finding"]
