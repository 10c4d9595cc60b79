"""Every key and what it does: help.md beside this file, then the action table."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from ..actions import ACTIONS

_KEYS = {"slash": "/", "colon": ":", "question_mark": "?", "enter": "Enter", "space": "Space"}


def help_markdown() -> str:
    intro = Path(__file__).with_name("help.md").read_text()
    rows = "\n".join(f"| `{_KEYS.get(a.key, a.key)}` | {a.label} | {a.help} |" for a in ACTIONS)
    return f"{intro}\n| key | action | what it does |\n|---|---|---|\n{rows}\n"


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="modal help"):
            yield Markdown(help_markdown())
