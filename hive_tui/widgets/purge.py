"""The purge confirmation: it names what goes, and its button stays off until
the agent's name is typed. Escape backs out with nothing done."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from ..plain import plain


class PurgeModal(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="purge.cancel")]

    def __init__(self, name: str):
        super().__init__()
        self.agent = name

    def compose(self) -> ComposeResult:
        name = plain(self.agent)
        with Vertical(classes="modal purge"):
            yield Static(Text(f"Purge {name}?"), classes="modal-question")
            yield Static(Text(
                f"This destroys {name}'s container and deletes, with no undo:\n"
                f"  • its config history (applied/{name} and proposed/{name})\n"
                f"  • its state folder agents/{name} (credentials, notes)\n\n"
                f"Type {name} to confirm."))
            yield Input(placeholder=name, id="purge-name")
            with Horizontal(classes="modal-buttons"):
                yield Button("Purge", variant="error", id="purge", disabled=True)
                yield Button("Cancel", id="cancel")

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#purge", Button).disabled = event.value != self.agent

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value == self.agent:
            self.dismiss(True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "purge" and self.query_one(Input).value == self.agent)

    def action_cancel(self) -> None:
        self.dismiss(False)
