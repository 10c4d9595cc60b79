"""Asks for a line of text, such as the reason for a denial; Escape backs out."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from ..plain import plain


class PromptModal(ModalScreen[str | None]):
    """Dismissed with the text (maybe empty) on Enter or OK, None on Escape or Cancel."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(self, question: str, placeholder: str = "", confirm: str = "OK", value: str = ""):
        super().__init__()
        self.question, self.placeholder, self.confirm, self.value = question, placeholder, confirm, value

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Static(Text(plain(self.question)), classes="modal-question")
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input")
            with Horizontal(classes="modal-buttons"):
                yield Button(self.confirm, variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self.dismiss(self.query_one(Input).value)
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
