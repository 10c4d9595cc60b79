"""The console: containers, approvals and deploys of one hive, driven by keys.

It knows the hive only through a HiveClient, so the embedded demo, a local
socket and a host over SSH look the same. It draws first and connects in a
worker; after that the push feed keeps every list current in place, and a
dropped link shows as reconnecting, with the lists dimmed, until it is back
and read afresh. Actions run in workers too, and report back as toasts.
"""

from __future__ import annotations

import contextlib
import importlib.resources
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.dom import DOMNode
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Input, Label
from textual.worker import Worker, WorkerState

from . import actions, keymap
from .client.base import HiveClient, LinkState
from .client.fleet import Bulk, Target
from .commandlog import CLAIMED, CommandLog, already, denial, outcome_of_failure, refused, warned
from .commands import HiveCommands
from .config import DEFAULT_PARALLEL, ConfigError, Host, default_config_path
from .settings import Settings
from .errors import HiveError, error_text
from .models import AgentStatus, Approval, DeployStep, Event, Lagged, Transient
from .plain import one_line, plain
from .presentation import link_word, request_title
from .widgets.approvals import ApprovalTable
from .widgets.commandlog import CommandLogScreen
from .widgets.confirm import ConfirmModal
from .widgets.containers import ContainerTable
from .widgets.deploylog import DeployLog
from .widgets.diffview import DiffView
from .widgets.hosts import HostsScreen
from .widgets.marking import marks_line, one_at_a_time, pause_or_resume, run_bulk, running, still_running
from .widgets.prompt import PromptModal
from .widgets.purge import PurgeModal
from .widgets.titlebar import READ_ONLY, paint_accent

if TYPE_CHECKING:
    from .client.fleet import Opener

Connect = Callable[[Host | None], Awaitable[HiveClient]]

# What a call to the hive can fail with: its refusals, and a link that broke or hung.
FAILURES = (HiveError, OSError, TimeoutError)

# What each group of workers was doing, to say what failed.
DOING = {"link": "connection", "reload": "reading the hive", "actions": "action", "diff": "reading the change",
         "history": "reading the history", "log": "following the log", "bulk": "bulk action",
         "log-pages": "reading the log", "log-tail": "following the log", "log-window": "reading the log's times",
         "log-search": "searching the log", "log-save": "saving the log"}


def stylesheet(name: str = "app.tcss") -> Path:
    """A stylesheet: shipped in the wheel as hive_tui.styles, or beside the package in a checkout."""
    try:
        path = importlib.resources.files("hive_tui.styles") / name
        if path.is_file():
            return Path(str(path))
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parent.parent / "styles" / name


# -- every binding set of the console ------------------------------------------------

# The help screen's title for a set; a set not named here is titled by its class's docstring.
TITLES = {"HiveApp": "Console", "ContainerTable": "Containers pane", "ApprovalTable": "Requests pane",
          "FleetScreen": "All hosts", "HistoryScreen": "History", "HostsScreen": "Hosts", "HelpScreen": "Help",
          "ConfirmModal": "Yes-or-no dialogs", "PromptModal": "Text dialogs", "PurgeModal": "Purge dialog"}


def binding_sets() -> list[keymap.BindingSet]:
    """Every binding set of the console: the app's, then each widget's and
    screen's that defines bindings, found in hive_tui.widgets, so a new
    screen's keys are checked, remappable and in the help without a list to keep."""
    import importlib
    import pkgutil

    from . import widgets

    for module in pkgutil.iter_modules(widgets.__path__):
        importlib.import_module(f"{widgets.__name__}.{module.name}")
    found: list[type] = []
    stack: list[type] = [DOMNode]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith(f"{widgets.__name__}.") and "BINDINGS" in cls.__dict__ and cls not in found:
            found.append(cls)
    found.sort(key=lambda c: (c.__module__, c.__qualname__))
    first = [ContainerTable, ApprovalTable]
    owners = [HiveApp, *first, *(c for c in found if c not in first)]
    return [keymap.binding_set(c, TITLES.get(c.__name__) or _title(c)) for c in owners]


def _title(cls: type) -> str:
    doc = (cls.__doc__ or "").strip()
    return doc.splitlines()[0].rstrip(".") if doc else cls.__name__


def keymap_for(settings: Settings) -> keymap.Keymap:
    """config.yaml's keys as a keymap, checked against every binding set; ConfigError if wrong."""
    if not settings.keys:
        return {}
    return keymap.check(settings, binding_sets())


class HiveApp(App[None]):
    CSS_PATH = [stylesheet(), stylesheet("fleet.tcss"), stylesheet("logview.tcss")]
    TITLE = "hive-tui"
    # Request keys act on the selected request whatever has focus; agent keys
    # act in the containers pane, and elsewhere say so (see `agent_pane`).
    BINDINGS = [*actions.bindings("global", via_app=False),
                *actions.bindings("approval", via_app=False),
                *actions.elsewhere("agent"),
                Binding("ctrl+q", "quit", "Quit", show=False, id="quit-ctrl",
                        tooltip="leave the console, from any screen"),
                # Textual's own palette key, with an id so that it can be moved too.
                Binding("ctrl+p", "command_palette", "palette", show=False, id="palette",
                        tooltip="every action, agent, view and host, found by name")]
    COMMANDS = App.COMMANDS | {HiveCommands}
    # Narrower than this, the panes stack rather than squeeze (styles/app.tcss).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]

    def __init__(self, connect: Connect, hosts: list[Host] | None = None, host: Host | None = None,
                 now: Callable[[], datetime] | None = None, pulse: bool = True, hosts_file: Path | None = None,
                 open_host: Opener | None = None, all_hosts: bool = False, read_only: bool = False,
                 settings: Settings | None = None, command_log: CommandLog | None = None,
                 clock: Callable[[], float] | None = None):
        super().__init__()
        # config.yaml's keys, change markers, grouping and theme.
        self.settings = settings or Settings()
        # The keys config.yaml moves, as set_keymap takes them; a mistake in
        # them is raised here, before anything is drawn.
        self.keymap = keymap_for(self.settings)
        self.set_keymap(self.keymap)
        if self.settings.theme:
            # Set before the first frame, which is drawn in it. A theme picked in the
            # palette lasts the session: the setting is what the console starts in.
            self.theme = self._known_theme(self.settings.theme)
        # The all-hosts view's opener (each link redials on its own backoff), whether
        # to open on that view, and a read-only session (--read-only).
        self.open_host, self.all_hosts, self.read_only = open_host, all_hosts, read_only
        self.connect, self.hosts, self.host, self.now = connect, list(hosts or []), host, now
        self.pulse = pulse
        # What times the change markers (monotonic seconds); a test moves it on.
        self.clock = clock
        self.hosts_file = hosts_file or default_config_path()
        # The request the detail pane shows, as (id, status): redrawn when either changes.
        self.shown_request: tuple[int, str] | None = None
        self.client: HiveClient | None = None
        self.link = "connecting…"
        # Why the console ended itself at start, for the CLI to print once the terminal is back.
        self.refused: str | None = None
        # The bulk action on the marked agents, running or last run.
        self.bulk: Bulk | None = None
        # Every action taken here and what came of it, kept in the data folder across sessions.
        self.command_log = command_log or CommandLog()
        self._log_failure_said = False
        # The all-hosts view's folded groups, as (host, parent): kept while the console runs.
        self.fleet_folds: set[tuple[str, str | None]] = set()

    def _known_theme(self, name: str) -> str:
        if name not in self.available_themes:
            where = self.settings.path or "config.yaml"
            raise ConfigError(f"{where}: theme: {name!r} is not one of the console's themes: "
                              f"{', '.join(sorted(self.available_themes))}")
        return name

    def compose(self) -> ComposeResult:
        # Kept by reference: feed items keep arriving while another screen
        # (history, help) is on top, where a query would not find them.
        self.containers = ContainerTable(now=self.now, pulse=self.pulse, clock=self.clock,
                                         change_markers=self.settings.change_markers,
                                         grouped=self.settings.group_by_parent, id="containers")
        self.approvals = ApprovalTable(now=self.now, id="approvals")
        self.diff = DiffView(id="diff")
        self.deploys = DeployLog(id="deploys")
        self.filter_box = Input(placeholder="filter agents and requests (Escape clears)", id="filter",
                                classes="hidden")
        self.panes = Horizontal(id="panes")
        self.progress = Label("", id="progress", classes="hidden")
        yield Header()
        yield self.filter_box
        with self.panes:
            with Vertical(id="left"):
                yield Label("Containers", classes="pane-title", id="containers-title")
                yield self.containers
            with Vertical(id="right"):
                yield Label("Requests", classes="pane-title")
                yield self.approvals
                yield self.diff
        yield self.deploys
        yield self.progress
        yield Footer()

    def on_mount(self) -> None:
        # Tab stops: the containers, the requests and the change (to scroll it by
        # key); the deploy log scrolls with the mouse and is read, not driven.
        self.deploys.can_focus = False
        self.containers.focus()
        if self.all_hosts and self.hosts:
            self._set_link("every host: A shows one", stale=True)
            self.action_fleet()
        else:
            self.connect_to(self.host, first=True)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        # A pane lights its title while the focus is inside it. Set as a class:
        # `:focus-within` alone does not restyle the title beside the focused table.
        focused = event.widget
        for title in self.query(".pane-title"):
            pane = title.parent
            if pane is not None:
                pane.set_class(pane in focused.ancestors_with_self, "has-focus")

    def _label(self) -> str:
        return self.host.address() if self.host else "demo hive (in this process)"

    def _set_link(self, state: str, stale: bool) -> None:
        self.link = state
        self.sub_title = f"{self._label()} · {state}"
        self.panes.set_class(stale, "stale")

    # -- the link -------------------------------------------------------------------

    @work(exclusive=True, group="link", exit_on_error=False)
    async def connect_to(self, host: Host | None, first: bool = False, again: bool = False) -> None:
        """Dial `host`, subscribe, read everything, then apply the feed; `again`
        keeps saying why it reconnects until it is live."""
        if host != self.host:
            # Marks name agents of the host they were made on.
            self.containers.set_marks(set())
            self._show_marks()
            # Another hive: its first fill marks no change.
            self.containers.changes.reset()
        self.host = host
        self.dress()
        if not again:
            self._set_link("connecting…", stale=True)
        old, self.client = self.client, None
        if old is not None:
            await old.close()
        async with contextlib.AsyncExitStack() as stack:
            try:
                self.client = await self.connect(host)
                # Subscribed before the lists are read, so no change falls between
                # them; and live only once both are done.
                feed = await stack.enter_async_context(self.client.feed())
                await self.reload()
            except FAILURES as e:
                # Imported here: only an SSH host loads asyncssh, which is a good part
                # of the console's start-up otherwise.
                from .client.ssh import HostKeyRefused

                if first and isinstance(e, HostKeyRefused):
                    # Nothing in here can settle a host key (that is `hive-tui trust-host`),
                    # and an empty console would hide the reason: end with it.
                    self.refused = str(e)
                    self.exit(return_code=1)
                    return
                self._set_link("not connected", stale=True)
                self.notify(plain(error_text(e)), title="cannot connect", severity="error", markup=False,
                            timeout=30)
                return
            self._set_link("live", stale=False)
            async for item in feed:
                try:
                    await self.apply(item)
                except FAILURES as e:
                    # The lists may now be behind the hive: stale until read afresh,
                    # on a new connection (this worker makes way for it).
                    self._set_link(f"reconnecting… (reading the hive failed: {one_line(error_text(e), 80)})",
                                   stale=True)
                    self.notify(plain(error_text(e)), title="reading the hive failed; reconnecting",
                                severity="error", markup=False, timeout=15)
                    self.call_later(self.connect_to, self.host, again=True)
                    return

    async def reload(self) -> None:
        """Read everything afresh: on connect, after a gap in the feed."""
        assert self.client is not None
        rows = await self.client.status()
        # hyperhive's daemon has no actions in flight to show: left out, not an error.
        in_flight = await self.client.transients() if await self.client.offers("transients") else []
        moving = {t.agent: t.kind for t in in_flight}
        pending = await self.client.approvals() if self.approvals.show_resolved else await self.client.pending()
        table = self.containers
        was, at = table.selected(), table.cursor_row
        table.set_rows(rows, moving)
        if was is not None and was not in table.rows and table.row_count:
            # The selected row went (destroyed, purged): its neighbour takes the
            # cursor, never the top row, so a next key cannot hit an agent far off.
            table.move_cursor(row=min(at, table.row_count - 1))
        self.approvals.set_items(pending)
        self.follow_request()
        await self._settle_approvals()

    async def _settle_approvals(self) -> None:
        """Approvals claimed here whose end was pushed while the link was down, or in a gap
        of the feed: read each once and log its outcome if it has one by now."""
        assert self.client is not None
        host, log = self._host_name(), self.command_log
        ids = log.awaiting(host)
        if not ids or not await self.client.offers("approval"):
            return
        for id in ids:
            try:
                a = await self.client.approval(id)
            except HiveError:
                log.forget(host, id)
                continue
            if a.terminal_tag or a.status in ("failed", "denied"):
                log.resolved(host, id, a.status, a.terminal_tag, a.error)

    async def apply(self, item: object) -> None:
        if isinstance(item, AgentStatus):
            self.containers.update_row(item)
        elif isinstance(item, Transient):
            self.containers.set_transient(item.agent, None if item.ended else item.kind)
            if item.ended and item.kind in ("Spawning", "Destroying"):
                await self.reload()
        elif isinstance(item, Approval):
            self.approvals.upsert(item)
            self.follow_request()
        elif isinstance(item, DeployStep):
            self.deploys.step(item)
        elif isinstance(item, Event):
            self.deploys.event(item)
            if item.kind == "ApprovalResolved":
                self.command_log.resolved(self._host_name(), item.id, item.status, item.tag, item.error)
                self._say_log_failure()
                outcome = " ".join(filter(None, [item.status, item.tag]))
                self.notify(f"#{item.id} {one_line(item.agent)}: {one_line(outcome)}", markup=False,
                            severity="error" if item.status == "failed" else "information")
        elif isinstance(item, Lagged):
            await self.reload()
        elif isinstance(item, LinkState):
            if item.connected:
                # Live only once read afresh: what was pushed in the gap is lost.
                await self.reload()
                self._set_link("live", stale=False)
            else:
                self._set_link(f"reconnecting… ({one_line(link_word(item.detail), 80)})", stale=True)

    # -- what is selected ---------------------------------------------------------------

    def selected_agent(self) -> str | None:
        return self.containers.selected()

    def selected_approval(self) -> Approval | None:
        return self.approvals.selected()

    def agent_names(self) -> list[str]:
        return sorted(self.containers.rows_by_name)

    def jump_to(self, name: str) -> None:
        table = self.containers
        if table.grouped and name in table.group_of and table.group_of[name] in table.folded:
            # Into a folded group: it unfolds.
            table.toggle_fold(table.group_of[name])
        if name in table.rows:
            table.move_cursor(row=table.get_row_index(name))
            table.focus()

    def switch_host(self, host: Host) -> None:
        self.connect_to(host)

    # -- actions ----------------------------------------------------------------------

    def do_action(self, id: str) -> object:
        # Returned: Textual's own actions (quit) are coroutines, which the palette awaits.
        return getattr(self, f"action_{id}")()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "command_log" and isinstance(self.screen, CommandLogScreen):
            # Open already.
            return False
        if action == "fleet" and (not self.hosts or self.open_host is None):
            # No hosts file to show every host of.
            return False
        # On a read-only host the keys that change something are hidden (and
        # on_key says why when one is pressed anyway).
        changes = actions.CHANGES | {"mark"}
        if self.read_only_here() and (action in changes or (parameters and parameters[0] in changes)):
            return False
        # The console's keys act on its main screen only: under help, history or
        # a dialog they are that screen's letters, never an approval.
        if action in actions.IDS or action in ("agent_pane", "faults", "group", "fold"):
            return self.screen is self.screen_stack[0]
        return True

    def _live(self, *logged: tuple[str, str]) -> bool:
        """Whether an action can be sent now; says why not (and logs it for each
        (agent, action) in `logged`). An action is never held for a link that is
        down and sent later, unseen."""
        if self.client is None or self.link != "live":
            self.notify(f"not done: the hive is {self.link}", severity="warning", markup=False)
            for agent, action in logged:
                self._record(agent, action, refused(f"the hive is {self.link}"))
            return False
        return True

    def _host_name(self) -> str:
        return self.host.name if self.host else "demo"

    def _record(self, agent: str, action: str, outcome: str) -> None:
        """Record an action's outcome in the command log; say once if the log's file cannot be written."""
        log = self.command_log
        log.record(self._host_name(), agent, action, outcome)
        self._say_log_failure()

    def _say_log_failure(self) -> None:
        if self.command_log.error and not self._log_failure_said:
            self._log_failure_said = True
            self.notify(plain(f"{self.command_log.path}: {self.command_log.error}"),
                        title="the command log cannot be written", severity="warning", markup=False, timeout=15)

    @work(group="actions", exit_on_error=False)
    async def _do(self, what: str, call: Callable[[HiveClient], Awaitable[object]], agent: str, action: str,
                  outcome: Callable[[object], str] = lambda result: "done",
                  failed: Callable[[BaseException], None] | None = None) -> None:
        """Send one action; its outcome to a toast and the command log (to `outcome`'s
        wording, or `failed`'s when it has its own way to log a failure)."""
        # Checked again: the link may have dropped while a dialog was open.
        if not self._live((agent, action)):
            return
        assert self.client is not None
        try:
            result = await call(self.client)
        except Exception as e:
            if failed is not None:
                failed(e)
            else:
                self._record(agent, action, outcome_of_failure(e))
            if not isinstance(e, FAILURES):
                raise
            self.notify(plain(error_text(e)), title=plain(what), severity="error", markup=False, timeout=15)
            return
        said = outcome(result)
        if said:
            self._record(agent, action, said)
        self.notify(plain(what), markup=False)

    def _agent(self, verb: str, action: str) -> str | None:
        """The selected agent, if `action` can act on it now; else None, having said why."""
        name = self.selected_agent()
        if name is None:
            self._no_agent()
            return None
        row = self.containers.rows_by_name.get(name)
        if row is not None and row.kept and verb != "purge":
            self.notify(f"{one_line(name)} is destroyed, its repos kept: only purge (D) acts on it; "
                        f"spawning it again brings it back", severity="warning", markup=False)
            self._record(name, action, refused("destroyed, its repos kept: only purge acts on it"))
            return None
        return name if self._live((name, action)) else None

    def _agent_action(self, verb: str, action: str, call: Callable[[HiveClient, str], Awaitable[object]],
                      outcome: Callable[[object], str] = lambda result: "done") -> None:
        name = self._agent(verb, action)
        if name is not None:
            self._do(f"{verb} {name}", lambda c: call(c, name), name, action, outcome)

    def _no_agent(self) -> None:
        if self.containers.on_header():
            self.notify("select an agent: that is a group's header line", severity="warning")
        else:
            self.notify("no agent selected", severity="warning")

    def action_agent_pane(self, id: str) -> None:
        """An agent key pressed outside the containers pane."""
        action = actions.by_id(id)
        self.notify(f"{action.label.rstrip('…')} acts on the selected agent: Tab to the containers first",
                    severity="warning")

    def action_start(self) -> None:
        if self._on_marked("start"):
            return
        self._agent_action("started", "start", lambda c, n: c.start(n), already("running"))

    def action_stop(self) -> None:
        if self._on_marked("stop"):
            return
        self._agent_action("stopped", "stop", lambda c, n: c.stop(n), already("stopped"))

    def action_restart(self) -> None:
        if self._on_marked("restart"):
            return
        self._agent_action("restarted", "restart", lambda c, n: c.restart(n))

    def action_rebuild(self) -> None:
        if self._on_marked("rebuild"):
            return
        self._agent_action("rebuilt", "rebuild", lambda c, n: c.rebuild(n))

    def action_pause(self) -> None:
        if self._on_marked("pause"):
            return
        name = self.selected_agent()
        row = self.containers.rows_by_name.get(name) if name else None
        paused = bool(row and row.paused)
        self._agent_action("resumed" if paused else "paused", "resume" if paused else "pause",
                           lambda c, n: c.set_paused(n, not paused))

    def action_destroy(self) -> None:
        name = self._one_only("destroy")
        if name is None:
            return
        question = f"Destroy {name}'s container? Its repos and state are kept, so it can be spawned again."

        def answered(yes: bool | None) -> None:
            # No is no action: nothing was sent, nothing is logged.
            if yes:
                self._do(f"destroyed {name}", lambda c: c.destroy(name), name, "destroy", warned)

        self.push_screen(ConfirmModal(question, yes="Destroy"), answered)

    def action_purge(self) -> None:
        name = self._one_only("purge")
        if name is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._do(f"purged {name}", lambda c: c.destroy(name, purge=True), name, "purge", warned)

        self.push_screen(PurgeModal(name), answered)

    def _one_only(self, verb: str) -> str | None:
        """The selected agent for destroy or purge, which are never sent to many at once."""
        if self.containers.marks:
            why = one_at_a_time(verb, len(self.containers.marks))
            self.notify(why, severity="warning", markup=False)
            name = self.selected_agent()
            if name is not None:
                self._record(name, verb, refused(why))
            return None
        return self._agent(verb, verb)

    # -- marks and bulk actions ----------------------------------------------------

    def action_mark(self) -> None:
        table = self.containers
        name = self.selected_agent()
        if name is None:
            self._no_agent()
            return
        row = table.rows_by_name.get(name)
        if row is None or row.kept:
            why = "is being spawned" if row is None else "is destroyed, its repos kept"
            self.notify(f"{one_line(name)} {why}: it cannot be marked", severity="warning", markup=False)
            return
        table.set_marks(table.marks ^ {name})
        # Down to the next agent, as a file manager does, so Space Space Space marks a run.
        below = table.cursor_row + 1
        while below < table.row_count and table.is_header_row(below):
            below += 1
        if below < table.row_count:
            table.move_cursor(row=below)
        self._show_marks()

    def _show_marks(self) -> None:
        if running(self.bulk):
            return
        marks = self.containers.marks
        self.progress.set_class(not marks, "hidden")
        self.progress.update(marks_line(len(marks)))

    def _on_marked(self, action: str) -> bool:
        """With agents marked, `action` on them all (True); else False, for the selected agent."""
        marks = sorted(self.containers.marks)
        if not marks:
            return False
        if action == "pause":
            rows = [self.containers.rows_by_name.get(n) for n in marks]
            action = pause_or_resume(bool(r and r.paused) for r in rows)
        logged = [(n, f"{action} (bulk of {len(marks)})") for n in marks]
        if self.bulk is not None and running(self.bulk):
            self.notify(still_running(self.bulk), severity="warning")
            for agent, what in logged:
                self._record(agent, what, refused(still_running(self.bulk)))
        elif self._live(*logged):
            assert self.client is not None
            host = self.host.name if self.host else "demo"
            self._run_bulk(Bulk(action, [Target(host, n) for n in marks]), self.client)
        return True

    @work(group="bulk", exit_on_error=False)
    async def _run_bulk(self, bulk: Bulk, client: HiveClient) -> None:
        self.bulk = bulk
        self.progress.remove_class("hidden")
        parallel = self.host.parallel if self.host else DEFAULT_PARALLEL
        failed = await run_bulk(bulk, lambda h: client, lambda h: parallel, self.progress.update, self.notify,
                                self.deploys.say, self.command_log)
        self._say_log_failure()
        # Failed ones stay marked: the same key tries them again.
        self.containers.set_marks({t.agent for t in failed})

    def action_history(self, tab: str = "tags") -> None:
        name = self.selected_agent()
        if name is None and self.containers.on_header():
            # Enter on a group's header folds or unfolds it.
            self.action_fold()
        elif name is None:
            self.notify("no agent selected", severity="warning")
        elif self.containers.rows_by_name.get(name) is None:
            self.notify(f"{one_line(name)} has no history yet: it is being spawned", severity="warning",
                        markup=False)
        elif self._live():
            assert self.client is not None
            from .widgets.history import HistoryScreen  # on demand: not part of the first frame

            self.push_screen(HistoryScreen(self.client, name, tab))

    def action_logs(self) -> None:
        self.action_history("log")

    def _request(self, verb: str) -> Approval | None:
        """The selected request, if it is pending and the link is up; else None, having said why."""
        a = self.selected_approval()
        if a is None or a.status != "pending":
            self.notify("no pending request selected", severity="warning")
            return None
        return a if self._live((a.agent, f"{verb} #{a.id}")) else None

    def action_approve(self) -> None:
        a = self._request("approve")
        if a is None:
            return
        log, host, action = self.command_log, self._host_name(), f"approve #{a.id}"

        async def approve(c: HiveClient) -> Approval:
            # Awaited before it is sent: the deploy's end may be pushed before the answer comes back.
            log.await_outcome(host, a.id, a.agent, action)
            return await c.approve(a.id, wait=False)

        self._do(f"approved #{a.id} ({a.agent}); carrying it out", approve, a.agent, action,
                 lambda result: self._claimed(host, a.id, CLAIMED),
                 lambda e: self._claimed(host, a.id, outcome_of_failure(e)))

    def _claimed(self, host: str, id: int, outcome: str) -> str:
        self.command_log.claimed(host, id, outcome)
        self._say_log_failure()
        return ""

    def action_deny(self) -> None:
        a = self._request("deny")
        if a is None:
            return

        def answered(note: str | None) -> None:
            # Escape is no action: nothing was sent, nothing is logged.
            if note is not None:
                self._do(f"denied #{a.id} ({a.agent})", lambda c: c.deny(a.id, note or None), a.agent,
                         f"deny #{a.id}", lambda r: denial(r, note))

        self.push_screen(PromptModal(f"Deny #{a.id} ({a.agent} {a.kind})? Reason (optional, sent to the manager):",
                                     placeholder="why not", confirm="Deny"), answered)

    def action_resolved(self) -> None:
        # The toggle reads the hive: while the link is down it would wait unseen.
        if not self._live():
            return
        self.approvals.show_resolved = not self.approvals.show_resolved
        self._reload_worker()

    @work(exclusive=True, group="reload", exit_on_error=False)
    async def _reload_worker(self) -> None:
        await self.reload()

    def action_filter(self) -> None:
        self.filter_box.remove_class("hidden")
        self.filter_box.focus()

    @on(Input.Changed, "#filter")
    def _filter(self, event: Input.Changed) -> None:
        self.containers.refilter(event.value)
        self.approvals.refilter(event.value)
        self.follow_request()

    def action_faults(self) -> None:
        self.containers.toggle_faults()

    @on(ContainerTable.Counted)
    def _containers_counted(self, event: ContainerTable.Counted) -> None:
        self.query_one("#containers-title", Label).update(event.title)

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.containers.focus()

    def action_clear(self) -> None:
        box = self.filter_box
        if box.has_focus or box.value:
            box.value = ""
            box.add_class("hidden")
            self.containers.focus()
        elif self.containers.marks and self.screen is self.screen_stack[0]:
            self.containers.set_marks(set())
            self._show_marks()

    def action_jump(self) -> None:
        self.action_command_palette()

    def action_group(self) -> None:
        table = self.containers
        table.set_grouped(not table.grouped)

    def action_fold(self) -> None:
        table = self.containers
        if not table.grouped:
            self.notify("fold acts on groups: group the agents by parent first", severity="warning")
            return
        found, parent = table.cursor_group()
        if not found:
            self.notify("no group selected", severity="warning")
            return
        table.toggle_fold(parent)

    def action_hosts(self) -> None:
        hosts = self.hosts or ([self.host] if self.host else [])
        if not hosts:
            self.notify(f"no hosts configured: add them to {self.hosts_file}", severity="warning", markup=False)
            return

        def chosen(host: Host | None) -> None:
            if host is not None:
                self.connect_to(host)

        self.push_screen(HostsScreen(hosts, self.host.name if self.host else "", self.link), chosen)

    def action_command_log(self) -> None:
        self.push_screen(CommandLogScreen(self.command_log))

    def action_help(self) -> None:
        # On demand: Markdown is a good share of the console's imports, and no first frame needs it.
        from .widgets.help import HelpScreen

        self.push_screen(HelpScreen(binding_sets(), self.keymap))

    @on(DataTable.RowHighlighted, "#approvals")
    def _approval_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.follow_request()

    def follow_request(self) -> None:
        """Show the selected request in the detail pane, or say there is none:
        never one that was resolved, filtered out or is no longer selected."""
        a = self.approvals.selected()
        if a is None:
            self.shown_request = None
            self.workers.cancel_group(self, "diff")
            self.diff.show_message(self._no_request())
        elif (a.id, a.status) != self.shown_request:
            self.shown_request = (a.id, a.status)
            self.show_diff(a.id)

    def _no_request(self) -> str:
        if self.approvals.filter_text and self.approvals.items:
            return "No request matches the filter."
        return "No requests yet." if self.approvals.show_resolved else "No pending requests."

    @work(exclusive=True, group="diff", exit_on_error=False)
    async def show_diff(self, id: int) -> None:
        view = self.diff
        a = self.approvals.items.get(id)
        if a is None or self.client is None:
            return
        if a.kind != "apply_commit" or a.status != "pending":
            resolved = "" if a.status == "pending" else f"{a.status} " + (f"({a.terminal_tag})" if a.terminal_tag else "")
            view.show_message(f"{request_title(a)}\n\n{a.kind} of {a.agent} {resolved}".rstrip())
            return
        try:
            diff = await self.client.diff(id)
        except FAILURES as e:
            view.show_message(f"{request_title(a)}\n\nno diff: {error_text(e)}")
            return
        view.show(request_title(a), diff)

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        self.report_failure(event.worker)

    def report_failure(self, worker: Worker) -> None:
        """The one place a worker's error ends up (the app's and its screens'):
        a notification that says what failed. The console stays up."""
        if worker.state is WorkerState.ERROR and isinstance(worker.error, Exception):
            doing = DOING.get(worker.group, worker.name or "work")
            self.notify(plain(error_text(worker.error)), title=f"{doing} failed", severity="error", markup=False,
                        timeout=30)

    async def on_unmount(self) -> None:
        self.command_log.close()
        if self.client is not None:
            await self.client.close()

    # -- read-only, accent, all hosts -----------------------------------------------

    def read_only_here(self) -> bool:
        return self.read_only or (self.host is not None and self.host.read_only)

    def dress(self) -> None:
        """The title says READ-ONLY on a read-only host; the host's accent colours the title bar."""
        self.title = f"hive-tui · {READ_ONLY}" if self.read_only_here() else "hive-tui"
        paint_accent(self.query_one(Header), self.host.accent if self.host else None)

    def on_key(self, event: events.Key) -> None:
        action = next((a.id for a in actions.ACTIONS if (a.id in actions.CHANGES or a.id == "mark")
                       and event.key in keymap.keys_in_force(self, a.id)), None)
        if action is not None and self.read_only_here() and self.screen is self.screen_stack[0]:
            event.stop()
            why = f"{self._label()} is {READ_ONLY}: {actions.by_id(action).label.rstrip('…').lower()} is not sent"
            self.notify(why, severity="warning", markup=False)
            self._log_refused_key(action, why)

    def _log_refused_key(self, action: str, why: str) -> None:
        """A key refused on a read-only host, logged against what it would have acted on."""
        if action in ("approve", "deny"):
            a = self.selected_approval()
            if a is not None and a.status == "pending":
                self._record(a.agent, f"{action} #{a.id}", refused(why))
        elif action != "mark":
            name = self.selected_agent()
            if name is not None:
                self._record(name, action, refused(why))

    def action_fleet(self) -> None:
        """Every host in one view; from there, back to the selected row's host."""
        if not self.hosts or self.open_host is None:
            self.notify("the all-hosts view shows the hosts file's hosts: none is configured", severity="warning")
            return
        from .widgets.fleet import FleetScreen

        def back(host: Host | None) -> None:
            if host is not None and (self.client is None or host != self.host):
                self.connect_to(host)

        self.push_screen(FleetScreen(self.hosts, self.open_host, read_only=self.read_only, now=self.now,
                                     change_markers=self.settings.change_markers, marker_clock=self.clock,
                                     grouped=self.containers.grouped, folds=self.fleet_folds), back)
