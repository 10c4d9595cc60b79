"""The configured hosts, which one is connected and how it is doing; Enter switches."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from ..config import Host
from ..plain import one_line


class HostsScreen(ModalScreen[Host | None]):
    BINDINGS = [Binding("escape", "cancel", "Back", id="hosts.back")]

    def __init__(self, hosts: list[Host], current: str, link: str):
        super().__init__()
        self.hosts, self.current, self.link = hosts, current, link

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal hosts"):
            yield Label("Hosts (Enter switches, Escape goes back)", classes="modal-question")
            yield DataTable(id="hosts-table", cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("HOST", "WHERE", "STATE")
        for h in self.hosts:
            state = self.link if h.name == self.current else "not connected"
            table.add_row(Text(one_line(h.name)), Text(one_line(h.address())), Text(one_line(state)), key=h.name)
        table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.dismiss(next(h for h in self.hosts if h.name == event.row_key.value))

    def action_cancel(self) -> None:
        self.dismiss(None)
