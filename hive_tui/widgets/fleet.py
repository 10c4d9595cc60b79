"""The all-hosts view: every host of the hosts file in one screen.

Each host has a link of its own (client/fleet.py) with its own backoff, so
a slow, refused or dead host holds up no other: the screen draws at once,
with a header line per host saying how its link stands, and each host's
rows fill in as it answers. A link's change is posted as a message that a
newer one for the same host replaces, so a burst of pushes redraws that
host once. Every action goes to the host of the selected row or request;
with rows marked, start, stop, restart, rebuild and pause act on every
marked agent through one bulk action, each host at its own `parallel`.
The screen is dismissed with the host to show alone (or None).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Label

from .. import actions, keymap
from ..client.base import HiveClient
from ..client.fleet import BULK_ACTIONS, Bulk, Fleet, Opener, Request, Target
from ..commandlog import CLAIMED, CommandLog, already, denial, outcome_of_failure, refused, warned
from ..config import Host
from ..errors import HiveError, error_text
from ..models import Approval, Event
from ..plain import one_line, plain
from ..palette import EntryProvider
from ..roster import parent_of
from .confirm import ConfirmModal
from .fleetrows import FleetLog, FleetTable, RequestQueue
from .hosts import HostsScreen
from .marking import marks_line, one_at_a_time, pause_or_resume, run_bulk, running, still_running
from .prompt import PromptModal
from .purge import PurgeModal
from .titlebar import READ_ONLY

# What a call to a host can fail with: its refusals, and a link that broke or hung.
FAILURES = (HiveError, OSError, TimeoutError)
# The verb each action needs of a host's daemon: an action its daemon lacks is hidden there.
VERB = {"start": "start", "stop": "stop", "restart": "restart", "rebuild": "rebuild", "pause": "set_paused",
        "destroy": "destroy", "purge": "destroy", "history": "history", "logs": "log_page", "approve": "approve",
        "deny": "deny"}
AGENT_ACTIONS = frozenset(a.id for a in actions.ACTIONS if a.scope == "agent") | {"mark"}
# Actions this screen may refuse: pressing one's key says why.
REFUSABLE = tuple(a.id for a in actions.ACTIONS if a.id in actions.CHANGES or a.id == "mark")
# The keys whose offer changes with what is selected.
OFFERED = (*sorted(AGENT_ACTIONS), "approve", "deny")
# With rows marked, these act on every marked agent.
ON_MARKED = ("mark", "start", "stop", "restart", "rebuild", "pause")


class HostChanged(Message):
    """A host's link, rows or requests changed; a newer one for the same host replaces it."""

    def __init__(self, host: str):
        super().__init__()
        self.host = host

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, HostChanged) and message.host == self.host


class Pushed(Message):
    """An item a host pushed, for the deploy log."""

    def __init__(self, host: str, item: object):
        super().__init__()
        self.host, self.item = host, item


class FleetCommands(EntryProvider):
    """The palette on the all-hosts view: actions on the selected row or request, hosts, agents."""

    def _entries(self) -> list[tuple[str, str, Callable[[], Any]]]:
        screen = self.screen
        if not isinstance(screen, FleetScreen):
            return []
        entries: list[tuple[str, str, Callable[[], Any]]] = []

        keyed = self.keyed

        where = screen.selected()
        if where is not None and where[1]:
            host, agent = where
            for a in actions.ACTIONS:
                if a.id in AGENT_ACTIONS and screen.refusal(a.id) is None:
                    entries.append((f"{a.label.rstrip('…')} {host}/{agent}", keyed(a),
                                    partial(screen.take, a.id)))
        request = screen.requests.selected()
        if request is not None:
            for id in ("approve", "deny"):
                a = actions.by_id(id)
                if screen.refusal(id) is None:
                    entries.append((f"{a.label.rstrip('…')} request {request.host} #{request.approval.id} "
                                    f"({one_line(request.approval.agent)})", keyed(a), partial(screen.take, id)))
        for name in screen.fleet.links:
            entries.append((f"One host: {name}", f"leave the all-hosts view for {name} alone",
                            partial(screen.dismiss, screen.fleet.links[name].host)))
        for host, agent in screen.agents():
            entries.append((f"Go to {host}/{agent}", f"select {agent} on {host}", partial(screen.go_to, host, agent)))
        for id in ("filter", "faults", "group", "fold", "command_log", "help"):
            a = actions.by_id(id)
            entries.append((a.label, keyed(a), partial(screen.take, id)))
        return entries


def _bindings() -> list[Binding]:
    keep = ("approve", "deny", "mark", "filter", "faults", "jump", "hosts", "fleet", "group", "fold", "command_log",
            "help", "quit")
    shown = [a for a in actions.ACTIONS if a.id in AGENT_ACTIONS or a.id in keep]
    # Here the all-hosts key goes back to one host.
    labels = {"fleet": "One host"}
    # The console's ids: a key config.yaml moves, moves here too.
    return [Binding(a.key, a.id, labels.get(a.id, a.label), id=a.id, tooltip=a.help,
                    show=a.key not in ("enter", "colon", "slash") and a.id not in actions.FOOTERLESS)
            for a in shown]


class FleetScreen(Screen[Host | None]):
    BINDINGS = [*_bindings(), Binding("escape", "clear", "Clear marks", show=False, id="clear")]
    COMMANDS = {FleetCommands}

    def __init__(self, hosts: list[Host], opener: Opener, read_only: bool = False,
                 now: Callable[[], datetime] | None = None, clock: Callable[[], float] | None = None,
                 command_log: CommandLog | None = None, change_markers: float = 10.0,
                 marker_clock: Callable[[], float] | None = None, grouped: bool = False,
                 folds: set[tuple[str, str | None]] | None = None, **link_options: Any):
        super().__init__()
        # Where each action and its outcome is recorded: the console's own log unless given one.
        self._command_log = command_log
        # Grouped by parent, and the folded groups (the console's set, kept while it runs).
        self.grouped, self.folds = grouped, folds
        self.session_read_only = read_only
        self.now, self.clock = now, clock
        self.change_markers, self.marker_clock = change_markers, marker_clock
        self.fleet = Fleet(hosts, opener, self._changed, on_push=self._pushed, **link_options)
        self.bulk: Bulk | None = None
        # Set once every widget is mounted: a host that answers sooner is drawn then.
        self.drawn = False
        # The keys the footer offers, as last drawn.
        self.offered: tuple[bool | None, ...] = ()

    # -- the screen -------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        # Each link runs in a task of its own, dialling while the screen is put together: the first
        # frame draws without waiting for any host, and rows fill in as hosts answer.
        self.fleet.start()
        self.table = FleetTable(self.fleet.links, self.read_only, now=self.now, clock=self.clock,
                                change_markers=self.change_markers, marker_clock=self.marker_clock,
                                grouped=self.grouped, folds=self.folds, id="fleet-agents")
        self.requests = RequestQueue(now=self.now, id="fleet-requests")
        self.log_view = FleetLog(id="fleet-log")
        self.filter_box = Input(placeholder="filter hosts, agents and requests (Escape clears)", id="fleet-filter",
                                classes="hidden")
        self.progress = Label("", id="fleet-progress", classes="hidden")
        yield Header()
        yield self.filter_box
        # Stacked, each the full width: a host's header line (its state, a fingerprint) needs it.
        with Vertical(id="fleet-panes"):
            with Vertical(id="fleet-agents-pane"):
                yield Label("Every host's agents", classes="pane-title", id="fleet-agents-title")
                yield self.table
            with Vertical(id="fleet-requests-pane"):
                yield Label("Requests, every host, oldest first", classes="pane-title")
                yield self.requests
        yield self.log_view
        yield self.progress
        yield Footer()

    def on_mount(self) -> None:
        names = [n for n in self.fleet.links if self.read_only(n)]
        every = len(names) == len(self.fleet.links)
        self.title = f"hive-tui · all hosts{f' · {READ_ONLY}' if every else ''}"
        if names and not every:
            self.title += f" · {len(names)} of {len(self.fleet.links)} hosts {READ_ONLY}"
        self.sub_title = self._live_count()
        self.log_view.can_focus = False
        self.table.focus()
        self.set_interval(1.0, self.table.tick)
        # What the hosts said while the screen was being put together.
        self.drawn = True
        for name in self.fleet.links:
            self._draw(name)

    async def on_unmount(self) -> None:
        await self.fleet.close()

    def _live_count(self) -> str:
        live = sum(1 for link in self.fleet.links.values() if link.link.state == "live")
        return f"{live} of {len(self.fleet.links)} hosts live"

    # -- the links ---------------------------------------------------------------------

    def _changed(self, host: str) -> None:
        self.post_message(HostChanged(host))

    def _pushed(self, host: str, item: object) -> None:
        self.post_message(Pushed(host, item))

    @on(HostChanged)
    def _host_changed(self, message: HostChanged) -> None:
        if self.drawn:
            self._draw(message.host)

    def _draw(self, name: str) -> None:
        self.table.show_host(name)
        # Dimmed while down, lit when back.
        self.table.relight(name)
        self.requests.set_queue(self.fleet.requests())
        self.sub_title = self._live_count()
        self._retitle()
        self.keys_may_have_changed()

    def _retitle(self) -> None:
        self.query_one("#fleet-agents-title", Label).update(self.table.title())

    @on(Pushed)
    def _on_pushed(self, message: Pushed) -> None:
        self.log_view.pushed(message.host, message.item)
        item = message.item
        if isinstance(item, Event) and item.kind == "ApprovalResolved":
            self.command_log.resolved(message.host, item.id, item.status, item.tag, item.error)
            outcome = " ".join(filter(None, [item.status, item.tag]))
            self.notify(f"{message.host} #{item.id} {one_line(item.agent)}: {one_line(outcome)}", markup=False,
                        severity="error" if item.status == "failed" else "information")

    # -- what is selected --------------------------------------------------------------

    def read_only(self, host: str) -> bool:
        return self.session_read_only or self.fleet.links[host].host.read_only

    def selected(self) -> tuple[str, str] | None:
        return self.table.selected_key()

    def agents(self) -> list[tuple[str, str]]:
        return [(host, row.name) for host, row in self.fleet.agents()]

    def go_to(self, host: str, agent: str) -> None:
        table = self.table
        row = self.fleet.links[host].rows.get(agent) if host in self.fleet.links else None
        if table.grouped and row is not None and (host, parent_of(row)) in table.folds:
            # Into a folded group: it unfolds.
            table.toggle_fold(host, parent_of(row))
        if table.select(host, agent):
            self.table.focus()

    def host_of_selection(self) -> Host | None:
        where = self.selected()
        if where is None:
            return next((link.host for link in self.fleet.links.values()), None)
        return self.fleet.links[where[0]].host

    @on(DataTable.RowHighlighted)
    def _moved(self) -> None:
        self.keys_may_have_changed()

    def keys_may_have_changed(self) -> None:
        """Redraw the footer if the keys it offers changed. Only then: it is rebuilt
        whole, and pushes and cursor moves come far more often than a key changes."""
        offered = tuple(self.check_action(id, ()) for id in OFFERED)
        if offered != self.offered:
            self.offered = offered
            self.refresh_bindings()

    # -- what may be done here ---------------------------------------------------------

    def refusal(self, action: str) -> str | None:
        """Why `action` cannot be taken on what is selected now; None when it can.

        Read-only hosts and what a host's daemon lacks hide the key; the other
        reasons (nothing selected, rows marked) are said when it is pressed.
        """
        if action in ("approve", "deny"):
            request = self.requests.selected()
            host = request.host if request is not None else None
        elif action in AGENT_ACTIONS:
            where = self.selected()
            host = where[0] if where is not None else None
        else:
            return None
        if host is None:
            if (action in actions.CHANGES or action == "mark") and all(map(self.read_only, self.fleet.links)):
                return f"every host is {READ_ONLY}: nothing is sent"
            return None
        if action in actions.CHANGES or action == "mark":
            if self.read_only(host):
                return f"{host} is {READ_ONLY}: {actions.by_id(action).label.rstrip('…').lower()} is not sent"
        if action in ("destroy", "purge") and self.table.marks:
            return one_at_a_time(action, len(self.table.marks))
        offer = self.fleet.links[host].offer
        verb = VERB.get(action)
        if verb is not None and offer and verb not in offer:
            return f"{actions.by_id(action).label.rstrip('…').lower()} is not available on {host}"
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.app.screen is not self:
            return False
        if action in ON_MARKED and self.table.marks:
            # With rows marked these act on them, whatever row is selected.
            return True
        return self.refusal(action) is None

    def on_key(self, event: events.Key) -> None:
        # A key hidden here still says why when it is pressed.
        action = next((id for id in REFUSABLE if event.key in keymap.keys_in_force(self.app, id)), None)
        if action is not None and self.app.screen is self and not self.check_action(action, ()):
            reason = self.refusal(action)
            if reason:
                event.stop()
                self.notify(reason, severity="warning", markup=False)
                self._log_refusal(action, reason)

    def take(self, id: str) -> None:
        """An action by id, as a key would take it (the palette's entries)."""
        reason = self.refusal(id)
        if reason is not None:
            self.notify(reason, severity="warning", markup=False)
            self._log_refusal(id, reason)
            return
        getattr(self, f"action_{id}")()

    # -- the command log -------------------------------------------------------------

    @property
    def command_log(self) -> CommandLog:
        if self._command_log is None:
            self._command_log = getattr(self.app, "command_log", None) or CommandLog()
        return self._command_log

    def _record(self, host: str, agent: str, action: str, outcome: str) -> None:
        self.command_log.record(host, agent, action, outcome)

    def _log_refusal(self, action: str, why: str) -> None:
        """A refused action, logged against what it would have acted on (marking is not an action on a hive)."""
        if action in ("approve", "deny"):
            request = self.requests.selected()
            if request is not None:
                self._record(request.host, request.approval.agent, f"{action} #{request.approval.id}", refused(why))
        elif action in actions.CHANGES:
            where = self.selected()
            if where is not None and where[1]:
                self._record(where[0], where[1], action, refused(why))

    # -- one agent, or every marked one ------------------------------------------------

    def _agent(self, action: str) -> tuple[str, str] | None:
        if not self.table.has_focus:
            self.notify(f"{actions.by_id(action).label.rstrip('…')} acts on the selected agent: Tab to the "
                        f"agents first", severity="warning")
            return None
        where = self.selected()
        if where is None or not where[1]:
            self._no_agent()
            return None
        return where

    def _no_agent(self) -> None:
        header = "a group's" if self.table.on_group_header() else "a host's"
        self.notify(f"select an agent: that is {header} header line", severity="warning")

    @work(group="fleet-actions", exit_on_error=False)
    async def _do(self, host: str, what: str, call: Callable[[HiveClient], Awaitable[object]], agent: str,
                  action: str, outcome: Callable[[object], str] = lambda result: "done",
                  failed: Callable[[BaseException], None] | None = None) -> None:
        """Send one action to `host`; its outcome to a toast and the command log (to `outcome`'s
        wording, or `failed`'s when it has its own way to log a failure)."""
        try:
            result = await call(self.fleet.client(host))
        except Exception as e:
            if failed is not None:
                failed(e)
            else:
                self._record(host, agent, action, outcome_of_failure(e))
            if not isinstance(e, FAILURES):
                raise
            self.notify(plain(error_text(e)), title=f"{host}: {plain(what)}", severity="error", markup=False,
                        timeout=15)
            return
        said = outcome(result)
        if said:
            self._record(host, agent, action, said)
        self.notify(f"{host}: {plain(what)}", markup=False)

    def _one_or_marked(self, action: str, done: str, call: Callable[[HiveClient, str], Awaitable[object]],
                       outcome: Callable[[object], str] = lambda result: "done") -> None:
        if self.table.marks:
            self._bulk(action)
            return
        where = self._agent(action)
        if where is not None:
            host, agent = where
            self._do(host, f"{done} {agent}", lambda c: call(c, agent), agent, action, outcome)

    def action_start(self) -> None:
        self._one_or_marked("start", "started", lambda c, n: c.start(n), already("running"))

    def action_stop(self) -> None:
        self._one_or_marked("stop", "stopped", lambda c, n: c.stop(n), already("stopped"))

    def action_restart(self) -> None:
        self._one_or_marked("restart", "restarted", lambda c, n: c.restart(n))

    def action_rebuild(self) -> None:
        self._one_or_marked("rebuild", "rebuilt", lambda c, n: c.rebuild(n))

    def action_pause(self) -> None:
        if self.table.marks:
            self._bulk("pause")
            return
        where = self._agent("pause")
        if where is None:
            return
        host, agent = where
        row = self.fleet.links[host].rows.get(agent)
        paused = bool(row and row.paused)
        self._do(host, f"{'resumed' if paused else 'paused'} {agent}", lambda c: c.set_paused(agent, not paused),
                 agent, "resume" if paused else "pause")

    def _one_only(self, action: str) -> tuple[str, str] | None:
        reason = self.refusal(action)
        if reason is not None:
            self.notify(reason, severity="warning", markup=False)
            self._log_refusal(action, reason)
            return None
        return self._agent(action)

    def action_destroy(self) -> None:
        where = self._one_only("destroy")
        if where is None:
            return
        host, agent = where
        question = f"Destroy {agent}'s container on {host}? Its repos and state are kept, so it can be spawned again."

        def answered(yes: bool | None) -> None:
            # No is no action: nothing was sent, nothing is logged.
            if yes:
                self._do(host, f"destroyed {agent}", lambda c: c.destroy(agent), agent, "destroy", warned)

        self.app.push_screen(ConfirmModal(question, yes="Destroy"), answered)

    def action_purge(self) -> None:
        where = self._one_only("purge")
        if where is None:
            return
        host, agent = where

        def answered(yes: bool | None) -> None:
            if yes:
                self._do(host, f"purged {agent}", lambda c: c.destroy(agent, purge=True), agent, "purge", warned)

        self.app.push_screen(PurgeModal(agent), answered)

    def action_history(self, tab: str = "tags") -> None:
        where = self._agent("logs" if tab == "log" else "history")
        if where is None:
            return
        from .history import HistoryScreen

        host, agent = where
        try:
            client = self.fleet.client(host)
        except HiveError as e:
            self.notify(plain(str(e)), severity="warning", markup=False)
            return
        self.app.push_screen(HistoryScreen(client, agent, tab))

    def action_logs(self) -> None:
        self.action_history("log")

    @on(DataTable.RowSelected, "#fleet-agents")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        # Enter on a row: DataTable takes the key before the screen's binding does.
        if self.table.on_group_header():
            self.action_fold()
        elif self.refusal("history") is None:
            self.action_history()

    # -- marks and bulk actions ------------------------------------------------------

    def action_mark(self) -> None:
        where = self.selected()
        if where is None or not where[1]:
            self._no_agent()
            return
        reason = self.refusal("mark")
        if reason is not None:
            self.notify(reason, severity="warning", markup=False)
            return
        self.table.toggle_mark(*where)
        # Down to the next agent, as a file manager does, so Space Space Space marks a run.
        below = self.table.cursor_row + 1
        while below < self.table.row_count and not self.table.is_agent_row(below):
            below += 1
        if below < self.table.row_count:
            self.table.move_cursor(row=below)
        self._show_marks()
        self.keys_may_have_changed()

    def action_clear(self) -> None:
        if self.filter_box.has_focus or self.filter_box.value:
            self.filter_box.value = ""
            self.filter_box.add_class("hidden")
            self.table.focus()
        elif self.table.marks:
            self.table.set_marks(set())
            self._show_marks()
            self.keys_may_have_changed()

    def _show_marks(self) -> None:
        if running(self.bulk):
            return
        marks = self.table.marks
        hosts = {host for host, _ in marks}
        self.progress.set_class(not marks, "hidden")
        self.progress.update(marks_line(len(marks), f" on {len(hosts)} host{'s' if len(hosts) != 1 else ''}"))

    def _bulk(self, action: str) -> None:
        marks = sorted(self.table.marks)
        if action == "pause":
            rows = [self.fleet.links[h].rows.get(a) for h, a in marks]
            action = pause_or_resume(r is not None and r.paused for r in rows)
        what = f"{action} (bulk of {len(marks)})"
        if self.bulk is not None and running(self.bulk):
            self.notify(still_running(self.bulk), severity="warning")
            for host, agent in marks:
                self._record(host, agent, what, refused(still_running(self.bulk)))
            return
        read_only = sorted({host for host, _ in marks if self.read_only(host)})
        if read_only:
            why = (f"{', '.join(read_only)} {'is' if len(read_only) == 1 else 'are'} {READ_ONLY}: unmark "
                   f"{'its' if len(read_only) == 1 else 'their'} agents first")
            self.notify(why, severity="warning", markup=False)
            # Nothing is sent, to any marked agent.
            for host, agent in marks:
                self._record(host, agent, what, refused(why))
            return
        assert action in BULK_ACTIONS
        self._run_bulk(Bulk(action, [Target(h, a) for h, a in marks]))

    @work(group="fleet-bulk", exit_on_error=False)
    async def _run_bulk(self, bulk: Bulk) -> None:
        self.bulk = bulk
        self.progress.remove_class("hidden")
        failed = await run_bulk(bulk, self.fleet.client, lambda h: self.fleet.links[h].host.parallel,
                                self.progress.update, self.notify, lambda line: self.log_view.note("", line),
                                self.command_log)
        # Failed ones stay marked: the same key tries them again.
        self.table.set_marks({(t.host, t.agent) for t in failed})
        self.keys_may_have_changed()

    # -- requests --------------------------------------------------------------------

    def _request(self) -> Request | None:
        request = self.requests.selected()
        if request is None:
            self.notify("no pending request selected", severity="warning")
        return request

    def action_approve(self) -> None:
        r = self._request()
        if r is None:
            return
        a, host, log, action = r.approval, r.host, self.command_log, f"approve #{r.approval.id}"

        async def approve(c: HiveClient) -> Approval:
            # Awaited before it is sent: the deploy's end may be pushed before the answer comes back.
            log.await_outcome(host, a.id, a.agent, action)
            return await c.approve(a.id, wait=False)

        def claimed(outcome: str) -> str:
            log.claimed(host, a.id, outcome)
            return ""

        self._do(host, f"approved #{a.id} ({one_line(a.agent)}); carrying it out", approve, a.agent, action,
                 lambda result: claimed(CLAIMED), lambda e: log.claimed(host, a.id, outcome_of_failure(e)))

    def action_deny(self) -> None:
        r = self._request()
        if r is None:
            return
        a = r.approval
        what = f"denied #{a.id} ({one_line(a.agent)})"
        question = f"Deny #{a.id} on {r.host} ({a.agent} {a.kind})?"
        if "note" not in self.fleet.links[r.host].offer.get("deny", frozenset({"note"})):
            # hyperhive's daemon takes no reason: ask no question it cannot carry.
            def confirmed(yes: bool | None) -> None:
                if yes:
                    self._do(r.host, what, lambda c: c.deny(a.id), a.agent, f"deny #{a.id}",
                             lambda result: denial(result, ""))

            self.app.push_screen(ConfirmModal(f"{question} {r.host} takes no reason with a denial.", yes="Deny"),
                                 confirmed)
            return

        def answered(note: str | None) -> None:
            # Escape is no action: nothing was sent, nothing is logged.
            if note is not None:
                self._do(r.host, what, lambda c: c.deny(a.id, note or None), a.agent, f"deny #{a.id}",
                         lambda result: denial(result, note))

        self.app.push_screen(PromptModal(f"{question} Reason (optional, sent to the manager):",
                                         placeholder="why not", confirm="Deny"), answered)

    # -- the rest --------------------------------------------------------------------

    def action_filter(self) -> None:
        self.filter_box.remove_class("hidden")
        self.filter_box.focus()

    @on(Input.Changed, "#fleet-filter")
    def _filter(self, event: Input.Changed) -> None:
        self.table.refilter(event.value)
        self.requests.refilter(event.value, self.fleet.requests())
        self._retitle()

    def action_faults(self) -> None:
        self.table.toggle_faults()
        self._retitle()

    @on(Input.Submitted, "#fleet-filter")
    def _filter_done(self) -> None:
        self.table.focus()

    def action_jump(self) -> None:
        self.app.action_command_palette()

    def action_group(self) -> None:
        self.table.set_grouped(not self.table.grouped)
        self.keys_may_have_changed()

    def action_fold(self) -> None:
        if not self.table.grouped:
            self.notify("fold acts on groups: group the agents by parent first", severity="warning")
            return
        where = self.table.cursor_group()
        if where is None:
            self.notify("no group selected: that is a host's header line", severity="warning")
            return
        self.table.toggle_fold(*where)
        self.keys_may_have_changed()

    def action_hosts(self) -> None:
        hosts = [link.host for link in self.fleet.links.values()]
        where = self.selected()

        def chosen(host: Host | None) -> None:
            if host is not None:
                self.dismiss(host)

        state = self.fleet.links[where[0]].link.describe() if where else ""
        self.app.push_screen(HostsScreen(hosts, where[0] if where else "", state), chosen)

    def action_fleet(self) -> None:
        """Back to one host: the selected row's."""
        self.dismiss(self.host_of_selection())

    def action_command_log(self) -> None:
        from .commandlog import CommandLogScreen

        self.app.push_screen(CommandLogScreen(self.command_log))

    async def action_help(self) -> None:
        # The console's help: every binding set, with the keys in force.
        await self.app.run_action("help")

    def action_quit(self) -> None:
        self.app.exit()

    def refresh_link_clock(self) -> None:
        """Redraw every header line (a test's fixed clock moved)."""
        self.table.tick()
