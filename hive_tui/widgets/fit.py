"""Text cut to the room there is: at a word's end, never in the middle of one."""

from __future__ import annotations

from rich.cells import cell_len

ELLIPSIS = "…"


def fit(text: str, width: int) -> str:
    """`text` as it fits `width` cells: whole, or its first words and an ellipsis, or nothing.

    A single word longer than the room is cut, as it has no end to cut at."""
    if cell_len(text) <= width:
        return text
    if width < 2:
        return ""
    head = text[: width - 1]
    while cell_len(head) > width - 1:
        head = head[:-1]
    if not (text[len(head)].isspace() or head[-1].isspace()):
        space = head.rfind(" ")
        head = head[:space] if space > 0 else head
    return head.rstrip(" ·,;:-") + ELLIPSIS
