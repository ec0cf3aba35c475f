"""Tables fitted to report.md's width: left alone when they fit, links made references, columns split, rows made list
items; every cell kept, and what Markdown renders keeps every link and value."""

from __future__ import annotations

import re

from hypothesis import given, settings, strategies as st
from markdown_it import MarkdownIt

from xentcompat.report.md_tables import fitted_tables
from xentcompat.report.wrap import wrapped_markdown


def _html(text: str) -> str:
    return re.sub(r"\s+", " ", MarkdownIt("commonmark").enable("table").render(text))


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _cells(html: str) -> list[str]:
    return re.findall(r"<t[dh]>(.*?)</t[dh]>", html)


def test_a_table_that_fits_is_left_as_it_is():
    text = _table(["api", "loss"], [["torch", "[✗ NaN](#xc-a)"]]) + "\n"
    assert fitted_tables(text, width=80) == text


def test_links_become_references_and_render_the_same():
    text = "intro\n\n" + _table(["api", "a", "b"], [["torch", "[✗ NaN gradient](#xc-long-anchor-name)",
                                                       "[✓ ok](#xc-other) [+](#xc-long-anchor-name)"]]) + "\n\nafter\n"
    fitted = fitted_tables(text, width=70)
    assert max(map(len, fitted.splitlines())) <= 70
    assert "[✗ NaN gradient][1]" in fitted and "[+][1]" in fitted and "[✓ ok][2]" in fitted
    assert fitted.rstrip().endswith("[1]: #xc-long-anchor-name\n[2]: #xc-other")
    assert _html(fitted) == _html(text)


def test_columns_split_into_tables_that_each_start_with_the_row_name():
    header = ["choice", *(f"column {i}" for i in range(6))]
    rows = [[f"api {r}", *(f"value {r}.{i} " + "x" * 20 for i in range(6))] for r in range(3)]
    fitted = fitted_tables(_table(header, rows), width=120)
    lines = fitted.splitlines()
    assert max(map(len, lines)) <= 120
    tables = [block.splitlines() for block in fitted.split("\n\n")]
    assert len(tables) > 1 and all(table[0].startswith("| choice |") for table in tables)
    assert all(table[2 + r].startswith(f"| api {r} |") for table in tables for r in range(3))
    cells = set(_cells(_html(fitted)))
    assert {cell for row in rows for cell in row} <= cells and set(header) <= cells


def test_a_cell_too_wide_for_any_table_turns_each_row_into_a_list_item():
    rows = [["class-weights", "1.786", ", ".join(f"torch.nn.Api{i}" for i in range(30))], ["ignore-index", "3.8", "x"]]
    fitted = wrapped_markdown(fitted_tables(_table(["case", "loss", "apis"], rows), width=100), width=100)
    assert max(map(len, fitted.splitlines())) <= 100
    assert fitted.startswith("- class-weights: loss: 1.786; apis: torch.nn.Api0, ")
    assert "- ignore-index: loss: 3.8; apis: x" in fitted
    items = re.findall(r"<li>(.*?)</li>", _html(fitted))
    assert len(items) == 2 and all(f"torch.nn.Api{i}," in items[0] or i == 29 for i in range(30))


def test_a_long_row_name_is_not_repeated_in_split_tables_but_each_row_made_an_item():
    rows = [[", ".join(f"api{i}" for i in range(12)), "1.5", "2.5", "3.5", "4.5"]]
    fitted = fitted_tables(_table(["apis", "loss " + "l" * 30, "a " + "a" * 30, "b " + "b" * 30, "c"], rows), width=90)
    assert fitted.count("api11") == 1 and fitted.startswith("- api0, api1")


def test_pipes_escaped_in_a_cell_and_code_fences_stay_as_they_are():
    row = ["a \\| b", "y" * 60]
    fence = "```\n| not | a table |\n|---|---|\n| " + "z" * 80 + " |\n```"
    text = _table(["name", "value"], [row]) + "\n\n" + fence + "\n"
    fitted = fitted_tables(text, width=50)
    assert fence in fitted
    assert "- a \\| b: value: " + "y" * 60 in fitted


WORDS = st.text("abcdefghij", min_size=1, max_size=9)
CELLS = st.lists(WORDS, min_size=1, max_size=8).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(columns=st.integers(2, 7), rows=st.integers(1, 4), data=st.data(), width=st.integers(40, 160))
def test_every_fitted_line_fits_and_every_cell_is_kept(columns, rows, data, width):
    header = [f"h{i}" for i in range(columns)]
    body = [[data.draw(CELLS) for _ in range(columns)] for _ in range(rows)]
    fitted = wrapped_markdown(fitted_tables(_table(header, body), width=width), width=width)
    assert max(map(len, fitted.splitlines())) <= width
    words = re.sub(r"<[^>]+>|[:;|]", " ", _html(fitted)).split()
    for cell in (cell for row in body for cell in row):
        assert " ".join(cell.split()) in " ".join(words)
