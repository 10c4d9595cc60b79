"""Untrusted text made safe to show: the one boundary where control characters go.

Names, notes, descriptions, build errors and logs come from agents and the
manager. Printed raw, an ESC or a C1 byte drives the terminal (window title,
clipboard writes, hyperlinks), and bidi overrides reorder what the operator
reads. Each such character is replaced by a visible escape; newline and tab
are kept.
"""

from __future__ import annotations

import re

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f" + _BIDI + "]")


def _escape(m: re.Match) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def plain(text: str) -> str:
    """`text` with every control character but newline and tab shown as an escape."""
    return _UNSAFE.sub(_escape, text)


def one_line(text: str | None, width: int | None = None) -> str:
    """The first line of `text`, made plain, cut to `width` with an ellipsis."""
    if not text:
        return ""
    first, _, rest = text.partition("\n")
    line = plain(first).replace("\t", " ")
    if rest:
        line += " …"
    if width is not None and len(line) > width:
        line = line[: max(width - 1, 0)] + "…"
    return line
