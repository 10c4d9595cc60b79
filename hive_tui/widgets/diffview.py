"""A proposal's diff against the applied main: files changed, then the patch in colour.

The patch is coloured line by line from the stylesheet's `diff--*` classes
(theme variables), so it reads in a light theme as in a dark one and follows
a switch of theme while it is on show.
"""

from __future__ import annotations

from rich.text import Span, Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from ..plain import one_line, plain
from .themed import Themed

TAB = 4


def patch_lines(patch: str) -> list[tuple[int, int, str]]:
    """(start, end, component class) of each line of `patch` worth a colour.

    A file's header runs from its `diff ` line to its first hunk; inside a
    hunk, `+` and `-` are lines added and removed, whatever follows them (a
    removed line may well read `--- x`)."""
    spans = []
    start = 0
    in_hunk = False
    for line in patch.splitlines(keepends=True):
        end = start + len(line.rstrip("\n"))
        if line.startswith("diff "):
            in_hunk = False
        if line.startswith("@@"):
            in_hunk = True
            name = "diff--hunk"
        elif not in_hunk or line.startswith("\\"):
            name = "diff--file"
        else:
            name = {"+": "diff--added", "-": "diff--removed"}.get(line[:1], "")
        if name and end > start:
            spans.append((start, end, name))
        start += len(line)
    return spans


class DiffView(VerticalScroll, Themed):
    COMPONENT_CLASSES = {"diff--title", "diff--file", "diff--hunk", "diff--added", "diff--removed"}
    # What is on show, as plain text: the title, or the message.
    shown = ""
    # The diff on show, drawn again when a theme switch changes its colours.
    _diff: tuple[str, dict] | None = None

    def compose(self):
        yield Static(Text(""), id="diff-body")
        yield Static(Text(""), id="diff-patch")

    def show_message(self, message: str) -> None:
        self.shown = plain(message)
        self._diff = None
        self.query_one("#diff-body", Static).update(Text(self.shown))
        self._patch(None)

    def show(self, title: str, diff: dict, home: bool = True) -> None:
        self._diff = (title, diff)
        lines = [plain(title), ""]
        for f in diff.get("files", []):
            moved = f" (from {one_line(f['old_path'])})" if f.get("old_path") != f.get("path") else ""
            counts = "binary" if f.get("binary") else f"+{f.get('additions', 0)} -{f.get('deletions', 0)}"
            lines.append(f"  {one_line(f.get('status'), 2)} {one_line(f.get('path'))}{moved}  {counts}")
        if diff.get("truncated"):
            lines.append("  (the patch is cut at 1 MiB)")
        lines.append("")
        head = Text.assemble((lines[0], self.themed("diff--title")), "\n" + "\n".join(lines[1:]))
        # What the patch shows is its plain text, never markup; only the colours are added.
        patch = plain(diff.get("patch", ""))
        self.shown = "\n".join([*lines, patch])
        self.query_one("#diff-body", Static).update(head)
        self._patch(Text(patch, spans=[Span(s, e, self.themed(name)) for s, e, name in patch_lines(patch)]))
        if home:
            self.scroll_home(animate=False)

    def _patch(self, text: Text | None) -> None:
        view = self.query_one("#diff-patch", Static)
        view.display = text is not None
        if text is not None:
            text.expand_tabs(TAB)
            view.update(text)

    def restyle(self) -> None:
        if self._diff is not None:
            self.show(*self._diff, home=False)
