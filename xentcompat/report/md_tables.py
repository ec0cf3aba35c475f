"""Markdown tables whose rows fit `WIDTH`, so that report.md reads in a terminal or an editor.

A table whose rows all fit is left as it is. Otherwise, in this order until every line fits:

1. its links to the report's own anchors become reference links, `[text][7]`, the numbered definitions
   (`[7]: #xc-...`) listed once at the end of the document: Markdown renders the same links;
2. its columns are split into tables of a few columns each, every one repeating the first column (the row's name);
3. where the first column is too long to repeat (over a third of the width) or even it and one other column do not
   fit, each row becomes a list item ("first cell: column: value;
   ..."), which the wrapping (`wrap`) then breaks at spaces.

Nothing is dropped: every cell of the table is in the result.
"""

from __future__ import annotations

import re

from xentcompat.report.inert import inert_markdown
from xentcompat.report.wrap import WIDTH, wrapped_markdown

_CELL_BREAK = re.compile(r"(?<!\\)\|")  # a cell boundary: a pipe that is not escaped
_LOCAL_LINK = re.compile(r"\]\((#[^()\s]+)\)")  # the target of a link to an anchor of the report


def readable_markdown(text: str) -> str:
    """A rendered Markdown file as it is written: data made inert (`inert`), tables fitted, prose wrapped."""
    return wrapped_markdown(fitted_tables(inert_markdown(text)))


def fitted_tables(text: str, width: int = WIDTH) -> str:
    """`text` with every table fitted to `width` (see the module's text)."""
    lines, out, labels = text.split("\n"), [], {}
    start, fenced = 0, False
    while start < len(lines):
        line = lines[start]
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        if fenced or not _starts_table(lines, start):
            out.append(line)
            start += 1
            continue
        end = start
        while end < len(lines) and lines[end].startswith("|"):
            end += 1
        out.extend(_fitted(lines[start:end], width, labels))
        start = end
    return _with_definitions(out, labels)


def _starts_table(lines: list[str], at: int) -> bool:
    return lines[at].startswith("|") and at + 1 < len(lines) and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[at + 1]) \
        is not None


def _fitted(block: list[str], width: int, labels: dict[str, int]) -> list[str]:
    if max(map(len, block)) <= width:
        return block
    rows = [[_reference_links(cell, labels) for cell in _cells(line)] for line in block]
    if max(len(_row_line(row)) for row in rows) <= width:
        return [_row_line(row) for row in rows]
    groups = _column_groups(rows, width) if _widest(rows, [0]) <= width // 3 else None
    if groups is None:  # a row name too long to repeat in each part, or a cell too wide for any table
        return _as_list(rows)
    tables = [[_row_line([row[column] for column in group]) for row in rows] for group in groups]
    return [line for table in tables for line in [*table, ""]][:-1]


def _cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [cell.strip() for cell in _CELL_BREAK.split(inner)]


def _row_line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _reference_links(cell: str, labels: dict[str, int]) -> str:
    """`[text](#anchor)` -> `[text][n]`, n numbering the anchors in order of first use."""
    def label(match: re.Match) -> str:
        number = labels.setdefault(match.group(1), len(labels) + 1)
        return f"][{number}]"
    return _LOCAL_LINK.sub(label, cell)


def _column_groups(rows: list[list[str]], width: int) -> list[list[int]] | None:
    """Columns packed into tables of at most `width` a row, each starting with column 0; None where column 0 and one
    other do not fit."""
    groups: list[list[int]] = []
    for column in range(1, len(rows[0])):
        if groups and _widest(rows, groups[-1] + [column]) <= width:
            groups[-1].append(column)
        elif _widest(rows, [0, column]) <= width:
            groups.append([0, column])
        else:
            return None
    return groups


def _widest(rows: list[list[str]], columns: list[int]) -> int:
    return max(len(_row_line([row[column] for column in columns])) for row in rows)


def _as_list(rows: list[list[str]]) -> list[str]:
    """One list item per row: its first cell, then each other column's name and value."""
    header, body = rows[0], rows[2:]
    items = []
    for row in body:
        values = "; ".join(f"{name}: {value}" for name, value in zip(header[1:], row[1:], strict=True))
        items.append(f"- {row[0]}: {values}")
    return items


def _with_definitions(lines: list[str], labels: dict[str, int]) -> str:
    """The document, then the reference links' definitions."""
    if not labels:
        return "\n".join(lines)
    while lines and lines[-1] == "":
        lines.pop()
    definitions = [f"[{number}]: {target}" for target, number in labels.items()]
    return "\n".join([*lines, "", *definitions, ""])
