"""Every key and what it does: help.md beside this file, then the keys of
each binding set (the console's, then each screen's and dialog's), every
key as it is in force, config.yaml's `keys:` applied."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from ..actions import ACTIONS
from ..keymap import BindingSet, keys_of, shown

# In help.md, `[[id]]` stands for the keys in force of that action.
_KEY_REF = re.compile(r"\[\[([a-z][a-z0-9._-]*)\]\]")


def help_markdown(sets: list[BindingSet] | None = None, keymap: Mapping[str, str] | None = None) -> str:
    """The help text. With no binding sets, the action table's rows alone, at their default keys."""
    keymap = keymap or {}

    def keys(id: str) -> str:
        found = next((s for s in sets or [] if any(b.id == id for b in s.bindings)), None)
        default = next((a.key for a in ACTIONS if a.id == id), id)
        listed = keys_of(found, id, keymap) if found is not None else keymap.get(id, default).split(",")
        return " ".join(f"`{_cell(shown(k))}`" for k in listed)

    intro = _KEY_REF.sub(lambda m: keys(m.group(1)), Path(__file__).with_name("help.md").read_text())
    table = "| key | action | what it does |\n|---|---|---|\n"
    # The action table first, in its order; then what each set has besides.
    sections: list[tuple[str, list[tuple[str, str, str]]]] = [
        ("Console", [(keys(a.id), a.label, a.help) for a in ACTIONS])]
    listed = {a.id for a in ACTIONS}
    for s in sets or []:
        rows = []
        for b in s.bindings:
            if b.id and b.id not in listed:
                listed.add(b.id)
                rows.append((" ".join(f"`{_cell(shown(k))}`" for k in keys_of(s, b.id, keymap)),
                             b.description, b.tooltip))
        same = next((rows_ for title, rows_ in sections if title == s.title), None)
        if same is not None:
            same.extend(rows)
        elif rows:
            sections.append((s.title, rows))
    body = "\n".join(f"## {title}\n\n{table}" + "\n".join(f"| {k} | {_cell(label)} | {_cell(what)} |"
                                                           for k, label, what in rows) + "\n"
                     for title, rows in sections)
    return f"{intro}\n{body}"


def _cell(text: str) -> str:
    # A `|` would end the table's cell.
    return text.replace("|", "\\|")


class HelpScreen(ModalScreen[None]):
    """Help"""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close",
                        tooltip="close this help")]

    def __init__(self, sets: list[BindingSet] | None = None, keymap: Mapping[str, str] | None = None):
        super().__init__()
        self.sets, self.keymap = sets, keymap

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="modal help"):
            yield Markdown(help_markdown(self.sets, self.keymap))
