"""One agent's past: its applied repo's tags with their notes, the meta
flake's log, and its own log (read lazily, followed live, searchable)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from ..client.base import HiveClient
from ..errors import error_text
from ..plain import one_line, plain
from . import logview
from .logview import LogView, LogViewChanged, LogViewFailed
from .prompt import PromptModal


def default_save_path(agent: str, now: float | None = None) -> Path:
    """Where the shown lines are saved unless the operator says otherwise: a new file in
    the current folder, named after the agent and the time."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", agent)[:40] or "agent"
    return Path.cwd() / f"{safe}-log-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}.txt"


class HistoryScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back", id="history.back"),
        *logview.BINDINGS,
    ]

    def __init__(self, client: HiveClient, agent: str, tab: str = "tags"):
        super().__init__()
        self.client, self.agent, self.tab = client, agent, tab
        self.saved: tuple[Path, int] | None = None  # the last save: where, and how many lines
        # Held here: the panes mount after the screen does.
        self.viewer = LogView(client, agent, id="log-view")
        self.tags: DataTable = DataTable(id="tags-table", cursor_type="row")
        self.tags.add_columns("TAG", "STATE", "AT", "SHA", "NOTE")
        self.meta: DataTable = DataTable(id="meta-table", cursor_type="row")
        self.meta.add_columns("SHA", "MESSAGE")

    def compose(self) -> ComposeResult:
        yield Label(Text(f"{plain(self.agent)}: history"), id="history-title")
        with TabbedContent(initial=self.tab):
            with TabPane("Tags", id="tags"):
                yield self.tags
            with TabPane("Meta log", id="meta"):
                yield self.meta
            with TabPane("Log", id="log"):
                with Vertical():
                    yield Input(placeholder="search the log: Enter finds the next line holding it",
                                id="log-search", classes="hidden")
                    yield self.viewer
                    yield Label("", id="log-status")
        yield Footer()

    def on_mount(self) -> None:
        self.load()
        if self.tab == "log":
            self.call_after_refresh(self.viewer.focus)

    @work(exclusive=True, group="history", exit_on_error=False)
    async def load(self) -> None:
        tags = await self.client.history(self.agent)
        for t in tags:
            self.tags.add_row(Text(one_line(t.tag)), Text(one_line(t.state)), Text(one_line(t.at)),
                          Text(t.sha[:12]), Text(one_line(t.message, 100) or "-"))
        for c in await self.client.meta_log():
            message = str(c.get("message", ""))
            if self.agent in message.split():
                self.meta.add_row(Text(str(c.get("sha", ""))[:12]), Text(one_line(message, 100)))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and isinstance(event.worker.error, Exception):
            self._failed(event.worker)

    def on_log_view_failed(self, event: LogViewFailed) -> None:
        self._failed(event.worker)

    def _failed(self, worker: Worker) -> None:
        # The agent may have been purged while this is open: the screen says
        # so, and the app reports it as it reports every failed worker.
        error = worker.error
        assert isinstance(error, Exception)
        self.query_one("#history-title", Label).update(Text(
            f"{plain(self.agent)}: history (cannot be read: {one_line(error_text(error), 120)})"))
        report = getattr(self.app, "report_failure", None)
        if report is not None:
            report(worker)

    # -- the log tab -----------------------------------------------------------------

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()
        if self.query_one(TabbedContent).active == "log":
            self.viewer.focus()

    def on_log_view_changed(self, event: LogViewChanged) -> None:
        for status in self.query("#log-status").results(Label):
            status.update(Text(self.viewer.status()))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The log's keys act on the log tab alone (and are only in the footer there).
        if action.startswith("log_"):
            tabs = self.query(TabbedContent)
            return bool(tabs) and tabs.first().active == "log"
        return True

    def action_log_follow(self) -> None:
        self.viewer.following = not self.viewer.following

    def action_log_wrap(self) -> None:
        self.viewer.wrap = not self.viewer.wrap

    def action_log_timestamps(self) -> None:
        self.viewer.stamps = not self.viewer.stamps

    @work(group="log-window", exclusive=True, exit_on_error=False)
    async def action_log_window(self) -> None:
        view = self.viewer
        await view.set_window((view.window + 1) % len(logview.WINDOWS))
        self.notify(f"showing {logview.WINDOWS[view.window][0]}: {logview.lines(view.count)}", markup=False)

    def action_back(self) -> None:
        """Out of the search field first, then off this screen."""
        search = self.query("#log-search").results(Input)
        field = next(search, None)
        if field is not None and field.has_focus:
            field.add_class("hidden")
            self.viewer.focus()
            return
        self.app.pop_screen()

    def action_log_search(self) -> None:
        search = self.query_one("#log-search", Input)
        search.remove_class("hidden")
        search.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "log-search":
            return
        view = self.viewer
        view.search_for(event.value)
        # The status line says what is searched: the field goes until / again.
        event.input.add_class("hidden")
        view.focus()
        if not event.value:
            return
        self._find(False, True)

    def action_log_next(self) -> None:
        self._find(False)

    def action_log_previous(self) -> None:
        self._find(True)

    @work(group="log-search", exclusive=True, exit_on_error=False)
    async def _find(self, backward: bool, either: bool = False) -> None:
        """The next (previous) match; a new search that finds nothing below looks above."""
        view = self.viewer
        if not view.needle:
            self.notify("nothing to find yet: / to search", severity="warning")
            return
        found = await view.find(backward)
        if found is None and either:
            backward = True
            found = await view.find(backward)
        if found is None:
            where = "before" if backward else "after"
            self.notify(f"no line {where} this one holds {view.needle!r}", severity="warning", markup=False)

    def action_log_start(self) -> None:
        self.viewer.jump_start()

    def action_log_end(self) -> None:
        self.viewer.jump_end()

    def action_log_save(self) -> None:
        default = default_save_path(self.agent)

        def answered(path: str | None) -> None:
            if path is not None:
                self._save(Path(path.strip() or default).expanduser().absolute())

        self.app.push_screen(PromptModal(f"Save the {logview.lines(self.viewer.count)} shown to a new file:",
                                         placeholder=str(default), confirm="Save", value=str(default)), answered)

    @work(group="log-save", exit_on_error=False)
    async def _save(self, path: Path) -> None:
        try:
            count = await self.viewer.save(path)
        except FileExistsError:
            self.notify(f"not saved: {path} exists (a save never overwrites)", severity="warning",
                        markup=False, timeout=15)
            return
        except OSError as e:
            self.notify(f"not saved: {plain(str(e))}", severity="error", markup=False, timeout=15)
            return
        self.saved = (path, count)
        self.notify(f"saved {logview.lines(count)} to {path}", markup=False, timeout=15)
