"""Markdown that is safe to open: no HTML but the report's own anchors, no terminal control characters.

Case ids, API names, error messages and notes come from users' files and frameworks' exceptions; one holding
`<img src=x onerror=...>` would be live HTML in a Markdown viewer, and one holding ESC [ ... would recolour or rewrite
the terminal of whoever runs `cat report.md`. Every `<` that does not open the report's own `<a id="xc-...">` or close
it becomes `&lt;`, and each control character (tab and newline aside) is written as its escape, `\\x1b`.
"""

from __future__ import annotations

import re

_NOT_OUR_TAG = re.compile(r'<(?!a id="xc-[a-z0-9-]+">|/a>)')
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def inert_markdown(text: str) -> str:
    text = _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)
    return _NOT_OUR_TAG.sub("&lt;", text)
