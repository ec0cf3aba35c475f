"""A results document is checked whole before anything is written: `render` of a document with any one field
changed, removed or added renders it or refuses it in one line (exit 2), never with a traceback, and on refusal
leaves --out as it was. A sealed document (one `render`, `merge` or `rejudge` wrote) also names a record edited,
removed or added after it was written."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xentcompat import cli
from xentcompat.results.digests import record_digest, sealed, tampering
from xentcompat.results.documents import read_results, write_json_atomic

KEPT = Path(__file__).resolve().parent.parent / "docs" / "report" / "results.json"
ODD_VALUES = [None, True, 0, -1, 3, 2.5, 1e308, "nan", "-inf", "", "x", "<b>", [], [None], ["x"], {}, {"a": 1}, [[]]]


def _slice_of_the_kept_report() -> dict:
    """Records of every area, with the kept report's environments, targets, not-run entries and causes."""
    kept = json.loads(KEPT.read_text())
    by_area = {}
    for record in kept["records"]:
        by_area.setdefault(record["area"], []).append(record)
    records = [record for found in by_area.values() for record in found[:3]]
    return {"schema_version": kept["schema_version"], "environments": kept["environments"],
            "targets": kept["targets"], "not_run": kept["not_run"][:6], "set_aside": kept["set_aside"][:2],
            "duplicates_dropped": 0, "conflicts": kept["conflicts"][:2], "causes": kept["causes"], "records": records}


BASE = _slice_of_the_kept_report()


def _paths(value, prefix=()):
    """Every place in `value` a field or an item lies, as a path of keys and indices."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, item in items:
        yield (*prefix, key)
        yield from _paths(item, (*prefix, key))


PATHS = list(_paths(BASE))


def _mutated(document: dict, path: tuple, how: str, odd) -> dict:
    changed = copy.deepcopy(document)
    parent = changed
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if how == "remove":
        del parent[last]
    elif how == "add" and isinstance(parent, dict):
        parent["unexpected_field"] = odd
    else:
        parent[last] = odd
    return changed


def _render(tmp_path: Path, document: dict, capsys) -> tuple[int, str]:
    source = tmp_path / "in.json"
    source.write_text(json.dumps(document))
    status = cli.main(["render", str(source), "--out", str(tmp_path / "out")])
    return status, capsys.readouterr().err.strip()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), how=st.sampled_from(["replace", "remove", "add"]),
       odd=st.sampled_from(ODD_VALUES))
def test_render_of_a_document_with_one_field_changed_renders_or_refuses_in_one_line(tmp_path_factory, capsys, path,
                                                                                       how, odd):
    tmp_path = tmp_path_factory.mktemp("fuzz")
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("earlier")
    status, error = _render(tmp_path, _mutated(BASE, path, how, odd), capsys)
    assert status in (0, 2), (path, how, odd, error)
    if status == 2:
        assert "\n" not in error and "Traceback" not in error and error.startswith("xentcompat: error:"), error
        assert (out / "results.json").read_text() == "earlier"
        assert sorted(p.name for p in out.iterdir()) == ["results.json"]


def test_the_unchanged_slice_renders(tmp_path, capsys):
    assert _render(tmp_path, BASE, capsys)[0] == 0
    assert (tmp_path / "out" / "report.html").exists()


def test_render_writes_the_digest_of_each_record_before_the_records(tmp_path, capsys):
    _render(tmp_path, BASE, capsys)
    written = json.loads((tmp_path / "out" / "results.json").read_text())
    assert list(written)[-2:] == ["digests", "records"]
    assert written["digests"] == [record_digest(record) for record in written["records"]]
    assert len(set(written["digests"])) == len(written["records"])


def _sealed_on_disk(tmp_path: Path) -> dict:
    write_json_atomic(tmp_path / "sealed.json", sealed(BASE))
    return json.loads((tmp_path / "sealed.json").read_text())


def test_a_sealed_document_reads_back_unchanged(tmp_path):
    _sealed_on_disk(tmp_path)
    assert read_results(tmp_path / "sealed.json")["records"] == json.loads(json.dumps(BASE["records"]))


def _edit_verdict(document):
    document["records"][4]["loss"]["outcome"] = "ok" if document["records"][4]["loss"]["outcome"] != "ok" else "nan"


def _edit_value(document):
    document["records"][4]["loss"]["value"] = 0.5


def _remove_record(document):
    del document["records"][4]


def _add_record(document):
    document["records"].append({**document["records"][4], "dtype": "float64"})


@pytest.mark.parametrize("edit, message", [
    pytest.param(_edit_verdict, "record #4 (", id="verdict-edited"),
    pytest.param(_edit_value, "record #4 (", id="value-edited"),
    pytest.param(_remove_record, "1 of the", id="record-removed"),
    pytest.param(_add_record, f"record #{len(BASE['records'])} (", id="record-added"),
])
def test_render_names_a_record_changed_after_it_was_written(tmp_path, capsys, edit, message):
    document = _sealed_on_disk(tmp_path)
    edit(document)
    status, error = _render(tmp_path, document, capsys)
    assert status == 2 and message in error and "\n" not in error, error
    assert not (tmp_path / "out").exists()


def test_the_named_record_is_the_one_edited(tmp_path):
    document = _sealed_on_disk(tmp_path)
    _edit_value(document)
    record = document["records"][4]
    assert f"{record['api']}" in tampering(document) and record["case"] in tampering(document)


def test_a_document_without_digests_is_read_as_it_is(tmp_path):
    write_json_atomic(tmp_path / "plain.json", BASE)
    assert "digests" not in json.loads((tmp_path / "plain.json").read_text())
    assert tampering(read_results(tmp_path / "plain.json")) is None


def test_merge_seals_what_it_writes(tmp_path, capsys):
    write_json_atomic(tmp_path / "plain.json", BASE)
    assert cli.main(["merge", str(tmp_path / "plain.json"), "--out", str(tmp_path / "merged")]) == 0
    merged = read_results(tmp_path / "merged" / "results.json")
    assert merged["digests"] == [record_digest(record) for record in merged["records"]]
