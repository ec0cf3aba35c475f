"""Markdown whose lines a person can read in a terminal or an editor: no line longer than `WIDTH` but table rows.

A paragraph or list item longer than `WIDTH` is broken at spaces into lines of at most `WIDTH` characters, a list
item's continuation indented under its text; Markdown renders the result as before (a line ending inside a paragraph,
a link's text or a code span is a space). A break is never put before a word that would start a list, a heading, a
table row, a quote or a fence on a line of its own. In fenced code (the reproducers) a long line is broken after a
comma inside brackets, where Python reads on, its continuation indented four more spaces. Table rows stay whole:
Markdown has no way to continue one.
"""

from __future__ import annotations

import re

WIDTH = 400
# what a line may not start with unless it starts a block: a list item, a heading, a quote, a table row, a fence, an
# HTML block, a thematic break or a setext underline (the last turning the line before into a heading)
_STARTS_A_BLOCK = re.compile(r"([-+*](\s|$)|#{1,6}(\s|$)|\d{1,9}[.)](\s|$)|[>|<]|```|~~~|[-=*_ ]+$)")
_RULE = re.compile(r"[-=*_ ]+")  # a line of these alone is a rule or a heading's underline
_LIST_ITEM = re.compile(r"(\s*)([-+*]|\d+[.)]) ")


def wrapped_markdown(text: str, width: int = WIDTH) -> str:
    out, fenced = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            out.append(line)
        elif len(line) <= width or line.lstrip().startswith(("|", "#")):
            out.append(line)
        elif fenced:
            out.extend(_code_lines(line, width))
        else:
            out.extend(_prose_lines(line, width))
    return "\n".join(out)


def _prose_lines(line: str, width: int) -> list[str]:
    item = _LIST_ITEM.match(line)
    indent = " " * (item.end() if item else len(line) - len(line.lstrip()))
    if _STARTS_A_BLOCK.match(line[len(indent):]):
        return [line]  # an item holding a heading, a nested list, a quote, ...: only paragraphs run on
    lines, rest = [], line
    while len(rest) > width:
        cut = _prose_break(rest, width, len(indent))
        if cut is None:
            break
        lines.append(rest[:cut].rstrip())
        rest = indent + rest[cut:].lstrip(" ")
    return lines + [rest]


def _prose_break(line: str, width: int, floor: int) -> int | None:
    """Where to break `line` (an index after a space, at most `width`), or None when no space allows it; the text
    before the break (after `floor`: a list item's marker or the continuation's indent) may not be a rule alone."""
    cut = line.rfind(" ", floor + 1, width + 1)
    while cut > floor:
        head = line[floor:cut].strip()
        if head and not _RULE.fullmatch(head) and not _STARTS_A_BLOCK.match(line[cut + 1:]):
            return cut + 1
        cut = line.rfind(" ", floor + 1, cut)
    return None


def _code_lines(line: str, width: int) -> list[str]:
    indent = " " * (len(line) - len(line.lstrip()) + 4)
    breaks = _code_breaks(line)
    lines, start, last = [], 0, 0
    for position in breaks:
        limit = width if not lines else width - len(indent)
        if position - start > limit and last > start:
            lines.append(line[start:last].rstrip())
            start = last
        last = position
    if len(line) - start > (width if not lines else width - len(indent)) and last > start:
        lines.append(line[start:last].rstrip())
        start = last
    lines.append(line[start:])
    return [lines[0]] + [indent + part.lstrip() for part in lines[1:]]


def _code_breaks(line: str) -> list[int]:
    """Indices just after each ", " inside brackets and outside strings: where Python reads on after a newline."""
    found, depth, quote, index = [], 0, None, 0
    while index < len(line):
        char = line[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#":
            break  # a comment runs to the end of the line
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth > 0 and line[index + 1:index + 2] == " ":
            found.append(index + 2)
        index += 1
    return found
