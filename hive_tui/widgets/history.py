"""One agent's past: its applied repo's tags with their notes, the meta
flake's log, and its own log (followed live, searchable)."""

from __future__ import annotations

from contextlib import aclosing

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, RichLog, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from ..client.base import HiveClient
from ..errors import error_text
from ..plain import one_line, plain


class HistoryScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="history.back"),
        Binding("slash", "search", "Search log", id="history.search"),
    ]

    def __init__(self, client: HiveClient, agent: str):
        super().__init__()
        self.client, self.agent = client, agent
        self.lines: list[str] = []

    def compose(self) -> ComposeResult:
        yield Label(Text(f"{plain(self.agent)}: history"), id="history-title")
        with TabbedContent():
            with TabPane("Tags", id="tags"):
                yield DataTable(id="tags-table", cursor_type="row")
            with TabPane("Meta log", id="meta"):
                yield DataTable(id="meta-table", cursor_type="row")
            with TabPane("Log", id="log"):
                with Vertical():
                    yield Input(placeholder="search the log", id="log-search", classes="hidden")
                    yield RichLog(id="log-view", max_lines=5000, markup=False, highlight=False)
        yield Footer()

    def on_mount(self) -> None:
        tags = self.query_one("#tags-table", DataTable)
        for column in ("TAG", "STATE", "AT", "SHA", "NOTE"):
            tags.add_column(column)
        self.query_one("#meta-table", DataTable).add_columns("SHA", "MESSAGE")
        self.load()
        self.follow()

    @work(exclusive=True, group="history", exit_on_error=False)
    async def load(self) -> None:
        tags = await self.client.history(self.agent)
        table = self.query_one("#tags-table", DataTable)
        for t in tags:
            table.add_row(Text(one_line(t.tag)), Text(one_line(t.state)), Text(one_line(t.at)),
                          Text(t.sha[:12]), Text(one_line(t.message, 100) or "-"))
        meta = self.query_one("#meta-table", DataTable)
        for c in await self.client.meta_log():
            message = str(c.get("message", ""))
            if self.agent in message.split():
                meta.add_row(Text(str(c.get("sha", ""))[:12]), Text(one_line(message, 100)))

    @work(exclusive=True, group="log", exit_on_error=False)
    async def follow(self) -> None:
        view = self.query_one("#log-view", RichLog)
        async with aclosing(self.client.follow_logs(self.agent, 500)) as lines:
            async for line in lines:
                self.lines.append(line)
                if self._matches(line):
                    view.write(Text(plain(line)))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The agent may have been purged while this is open: the screen says
        # so, and the app reports it as it reports every failed worker.
        if event.state is WorkerState.ERROR and isinstance(event.worker.error, Exception):
            self.query_one("#history-title", Label).update(Text(
                f"{plain(self.agent)}: history (cannot be read: {one_line(error_text(event.worker.error), 120)})"))
            report = getattr(self.app, "report_failure", None)
            if report is not None:
                report(event.worker)

    def _matches(self, line: str) -> bool:
        needle = self.query_one("#log-search", Input).value.lower()
        return not needle or needle in line.lower()

    def action_search(self) -> None:
        self.query_one(TabbedContent).active = "log"
        search = self.query_one("#log-search", Input)
        search.remove_class("hidden")
        search.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        view = self.query_one("#log-view", RichLog)
        view.clear()
        for line in self.lines[-5000:]:
            if self._matches(line):
                view.write(Text(plain(line)))
