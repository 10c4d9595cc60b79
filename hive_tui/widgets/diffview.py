"""A proposal's diff against the applied main: files changed, then the patch in colour."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from ..plain import one_line, plain


class DiffView(VerticalScroll):
    # What is on show, as plain text: the title, or the message.
    shown = ""
    # The diff on show, drawn again when the theme turns light or dark.
    _diff: tuple[str, dict] | None = None
    # The patch's colours, the light or the dark ones as the app's theme is.
    syntax_theme = "ansi_dark"

    def compose(self):
        yield Static(Text(""), id="diff-body")

    def on_mount(self) -> None:
        self.watch(self.app, "theme", self._retheme, init=False)

    def _retheme(self) -> None:
        if self._diff is not None:
            self.show(*self._diff)

    def show_message(self, message: str) -> None:
        self.shown = plain(message)
        self._diff = None
        self.query_one("#diff-body", Static).update(Text(self.shown))

    def show(self, title: str, diff: dict) -> None:
        self._diff = (title, diff)
        lines = [Text(plain(title), style="bold"), Text("")]
        for f in diff.get("files", []):
            moved = f" (from {one_line(f['old_path'])})" if f.get("old_path") != f.get("path") else ""
            counts = "binary" if f.get("binary") else f"+{f.get('additions', 0)} -{f.get('deletions', 0)}"
            lines.append(Text(f"  {one_line(f.get('status'), 2)} {one_line(f.get('path'))}{moved}  {counts}"))
        if diff.get("truncated"):
            lines.append(Text("  (the patch is cut at 1 MiB)"))
        lines.append(Text(""))
        # The lexer colours the patch; what it shows is the plain text, never markup.
        # Imported here: Pygments is no part of the console's first frame.
        from rich.syntax import Syntax

        self.syntax_theme = "ansi_dark" if self.app.current_theme.dark else "ansi_light"
        patch = Syntax(plain(diff.get("patch", "")), "diff", theme=self.syntax_theme, word_wrap=False)
        self.shown = "\n".join([*(line.plain for line in lines), patch.code])
        self.query_one("#diff-body", Static).update(Group(*lines, patch))
        self.scroll_home(animate=False)
