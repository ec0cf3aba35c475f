"""report.md's lines: none longer than `WIDTH`, and Markdown renders the wrapped text as the unwrapped
(the same HTML, whitespace aside; the same Python in every fenced block)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from hypothesis import example, given, settings, strategies as st
from markdown_it import MarkdownIt

from xentcompat.report.wrap import WIDTH, wrapped_markdown

KEPT = Path(__file__).resolve().parents[1] / "docs" / "report" / "report.md"


def _html(text: str) -> str:
    rendered = MarkdownIt("commonmark").enable("table").render(text)
    return re.sub(r"\s+", " ", rendered)


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_kept_report_has_no_long_line():
    """Prose wrapped here; tables fitted by `md_tables` (tests/test_md_tables.py)."""
    lines = KEPT.read_text(encoding="utf-8").splitlines()
    assert [line[:80] for line in lines if len(line) > WIDTH] == []


def test_wrapping_the_kept_report_changes_nothing_markdown_renders():
    """Wrapped again, narrower: the same HTML and the same Python; far fewer lines past the width."""
    text = KEPT.read_text(encoding="utf-8")
    wrapped = wrapped_markdown(text, width=120)
    assert _html(wrapped) == _html(text)
    for before, after in zip(_code_blocks(text), _code_blocks(wrapped), strict=True):
        assert ast.dump(ast.parse(after)) == ast.dump(ast.parse(before))
    past = [line for line in wrapped.splitlines() if len(line) > 120 and not line.startswith("|")]
    assert len(past) < 0.05 * sum(1 for line in text.splitlines() if len(line) > 120 and not line.startswith("|"))


WORD = st.one_of(st.text("abcxyz", min_size=1, max_size=12), st.sampled_from(
    ["-", "+", "*", "#", "##", ">", "|", "1.", "2)", "```", "`code span`", "[link](#xc-a)", "**bold**", "−inf", "×3",
     "---", "===", "***", "_", '<a id="xc-a"></a>', "&lt;img"]))


@settings(max_examples=300, deadline=None)
@given(words=st.lists(WORD, min_size=1, max_size=80), width=st.integers(10, 60), item=st.booleans())
@example(words=["+", "---", "a", "-", "-"], width=10, item=False)  # a list item whose first line was a rule alone
def test_a_wrapped_paragraph_or_list_item_renders_the_same(words, width, item):
    line = ("- " if item else "") + " ".join(words)
    wrapped = wrapped_markdown(line, width)
    assert _html(wrapped) == _html(line)


@pytest.mark.parametrize("line", [
    "x = torch.tensor([[0.1, 4.0, 3.6, -1.5, -0.89], [1.7, -0.16, 2.2, 0.5, 1.0]], dtype=torch.float32)",
    "y = f(['a, b', \"c, (d\", 3], key={'k': [1, 2, 3]})  # a comment, [with, commas]",
])
def test_a_long_code_line_breaks_inside_brackets_and_stays_the_same_python(line):
    wrapped = wrapped_markdown(f"```python\n{line}\n```", width=30).split("\n")[1:-1]
    assert len(wrapped) > 1 and all(len(part) <= 30 + 8 or ", " not in part for part in wrapped)
    assert ast.dump(ast.parse("\n".join(wrapped))) == ast.dump(ast.parse(line))
