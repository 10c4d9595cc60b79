"""The command log's view: every action taken in the console and what came of it, newest first.

It shows this session's entries and earlier sessions' (read back from the
log's file), and follows new ones while it is open. A line, or every line
shown, can be copied to the clipboard. Names, notes and errors in it are
agents' and hosts' words: each cell is plain text, one line.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label

from ..commandlog import CommandLog, Entry, shown
from ..plain import one_line

COLUMNS = (("time", "TIME"), ("host", "HOST"), ("agent", "AGENT"), ("action", "ACTION"), ("outcome", "OUTCOME"))


class CommandLogScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="command_log.back"),
        Binding("c", "copy", "Copy line", id="command_log.copy"),
        Binding("C", "copy_all", "Copy all", id="command_log.copy_all"),
    ]
    DEFAULT_CSS = """
    CommandLogScreen #command-log-table { height: 1fr; }
    CommandLogScreen #command-log-title { padding: 0 1; }
    """

    def __init__(self, log: CommandLog):
        super().__init__()
        self.command_log = log
        # The entries shown, oldest first, each with a row key that stays its own as new ones come in.
        self.entries: list[tuple[str, Entry]] = []
        self.shown: dict[str, Entry] = {}
        self._count = 0

    def compose(self) -> ComposeResult:
        # The keys are the footer's: a key named here would be wrong once config.yaml moves it.
        yield Label(Text("Command log, newest first"), id="command-log-title")
        yield DataTable(id="command-log-table", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.table = self.query_one(DataTable)
        for key, label in COLUMNS:
            self.table.add_column(label, key=key)
        for entry in reversed(self.command_log.entries()):
            self._keep(entry)
        self._redraw()
        self.command_log.listeners.append(self._added)
        self.table.focus()

    def on_unmount(self) -> None:
        if self._added in self.command_log.listeners:
            self.command_log.listeners.remove(self._added)

    def _keep(self, entry: Entry) -> None:
        self._count += 1
        self.entries.append((str(self._count), entry))
        # No more than the log itself holds.
        del self.entries[: -self.command_log.keep]

    def _added(self, entry: Entry) -> None:
        self._keep(entry)
        self._redraw()

    def _redraw(self) -> None:
        """Every entry, newest first, the cursor kept on the entry it was on."""
        table = self.table
        was = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value if table.row_count else None
        table.clear()
        self.shown = {}
        for key, entry in reversed(self.entries):
            self.shown[key] = entry
            table.add_row(*(Text(shown(value)) for value in
                            (entry.when(), entry.host, entry.agent, entry.action, entry.outcome)), key=key)
        if was is not None and was in self.shown:
            table.move_cursor(row=table.get_row_index(was))

    def selected(self) -> Entry | None:
        table = self.table
        if not table.row_count:
            return None
        return self.shown.get(str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value))

    def action_copy(self) -> None:
        entry = self.selected()
        if entry is None:
            self.notify("the command log is empty: nothing to copy", severity="warning")
            return
        line = entry.line()
        self.app.copy_to_clipboard(line)
        self.notify(f"copied: {one_line(line, 100)}", markup=False)

    def action_copy_all(self) -> None:
        lines = [self.shown[str(row.value)].line() for row in self.table.rows]
        if not lines:
            self.notify("the command log is empty: nothing to copy", severity="warning")
            return
        self.app.copy_to_clipboard("\n".join(lines) + "\n")
        self.notify(f"copied {len(lines)} line{'s' if len(lines) != 1 else ''}, newest first", markup=False)
