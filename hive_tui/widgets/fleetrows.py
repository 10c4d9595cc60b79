"""The all-hosts view's lists: every host's agents under a header line per
host, one queue of requests across hosts, and a deploy log that names the
host of each line.

Rows are keyed `host/agent` (a host name never holds a slash), requests
`host/id`. A host's change redraws that host's header and rows only: a row
whose status changed is updated in place, and the table is rebuilt only
when a host's set of agents changed (a host answering for the first time, a
spawn, a destroy), which costs milliseconds for a thousand rows. A field
that changed a moment ago carries a marker, as in the single-host view; a
marker that runs out redraws its row alone. Every word from a host is
agent-written: cells are Text built from `one_line`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable

from ..client.fleet import LIVE, HostLink, Request
from ..models import AgentStatus, DeployStep, Event
from ..plain import one_line
from ..presentation import MARKS, age, flags, run_state, transient_word
from ..roster import ChangeMarks, needs_operator
from .containers import CHANGED, field
from .deploylog import DeployLog
from .marking import MARKED
from .themed import Themed
from .titlebar import READ_ONLY, accent_style

COLUMN = "row"


def row_key(host: str, agent: str) -> str:
    return f"{host}/{agent}"


def header_key(host: str) -> str:
    # The empty agent: no agent name is empty, so no agent row has this key.
    return f"{host}/"


def split_key(key: str) -> tuple[str, str]:
    """(host, agent) of a row key; the agent is "" on a host's header line."""
    host, _, agent = key.partition("/")
    return host, agent


def lacking(link: HostLink) -> list[str]:
    """What the host's daemon lacks of what this view offers, once it said what it offers."""
    if not link.offer:
        return []
    wanted = {"rebuild": "rebuild", "destroy": "destroy", "history": "history", "logs": "logs"}
    return [word for verb, word in wanted.items() if verb not in link.offer]


class FleetTable(DataTable, Themed):
    """Every host's agents, host by host in the hosts file's order."""

    COMPONENT_CLASSES = {"fleet--host", "fleet--name", "fleet--failed", "fleet--pill", "fleet--badge",
                         "fleet--meta", "fleet--stale", "fleet--mark", "fleet--down", "fleet--changed"}

    def __init__(self, links: dict[str, HostLink], read_only: Callable[[str], bool],
                 now: Callable[[], datetime] | None = None, clock: Callable[[], float] | None = None,
                 change_markers: float = 10.0, marker_clock: Callable[[], float] | None = None, **kwargs):
        super().__init__(cursor_type="row", zebra_stripes=False, show_header=False, **kwargs)
        self.links, self.read_only, self.now, self.clock = links, read_only, now, clock
        # Which fields of each host's agents changed a moment ago (monotonic seconds, as the single-host view).
        self.changes = {name: ChangeMarks(change_markers, marker_clock) for name in links}
        # What each host's rows showed when last drawn: a change redraws only what differs.
        self.shown: dict[str, dict[str, AgentStatus]] = {name: {} for name in links}
        self.marks: set[tuple[str, str]] = set()
        self.filter_text = ""
        # Only the rows that need the operator (the faults-only view); the host header lines stay.
        self.faults_only = False
        # Whether each host was live when its rows were drawn: they dim while it is not.
        self.drawn_live: dict[str, bool] = {}

    def on_mount(self) -> None:
        self.add_column("row", key=COLUMN)
        self.rebuild()

    # -- what is selected -----------------------------------------------------------

    def selected_key(self) -> tuple[str, str] | None:
        """(host, agent) under the cursor; agent "" on a host's header line."""
        if self.row_count == 0:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return split_key(key) if key is not None else None

    def matches(self, host: str, agent: str) -> bool:
        if self.faults_only and not needs_operator(self.links[host].rows.get(agent)):
            return False
        needle = self.filter_text
        return not needle or needle in agent.lower() or needle in host.lower()

    def hidden(self) -> int:
        """How many agents the filter and the faults-only view leave out."""
        agents = sum(len(link.rows) for link in self.links.values())
        return agents - (self.row_count - len(self.links))

    def title(self) -> str:
        """The pane's title: whether the view is filtered, and how many rows that hides."""
        words = ["Every host's agents"]
        if self.faults_only:
            words.append("faults only")
        if self.filter_text:
            words.append("filtered")
        if len(words) > 1:
            words.append(f"{self.hidden()} hidden")
        return " · ".join(words)

    def toggle_faults(self) -> bool:
        self.faults_only = not self.faults_only
        self.rebuild()
        return self.faults_only

    # -- drawing ---------------------------------------------------------------------

    def rebuild(self) -> None:
        """Every row afresh, keeping the selection on the same row."""
        keep = self.selected_key()
        self.clear()
        for name, link in self.links.items():
            self.shown[name] = dict(link.rows)
            self._see(name)
            self.drawn_live[name] = link.link.state == LIVE
            self.add_row(self.header_text(name), key=header_key(name))
            for agent in sorted(link.rows):
                if self.matches(name, agent):
                    self.add_row(self.row_text(name, agent), key=row_key(name, agent))
        if keep is not None:
            self.select(*keep)

    def select(self, host: str, agent: str) -> bool:
        key = row_key(host, agent) if agent else header_key(host)
        if key not in self.rows:
            return False
        self.move_cursor(row=self.get_row_index(key))
        return True

    def show_host(self, name: str) -> None:
        """Redraw one host's header and whatever of its rows changed."""
        link = self.links[name]
        before, now = self.shown.get(name, {}), link.rows
        # A row that came to need the operator, or no longer does, comes into the faults-only view or leaves it.
        moved = self.faults_only and any((row_key(name, agent) in self.rows) != self.matches(name, agent)
                                         for agent in now)
        if before.keys() != now.keys() or moved:
            self.marks -= {(name, agent) for agent in before.keys() - now.keys()}
            self.rebuild()
            return
        self.update_cell(header_key(name), COLUMN, self.header_text(name))
        self._see(name)
        for agent, row in now.items():
            key = row_key(name, agent)
            if before.get(agent) != row and key in self.rows:
                self.update_cell(key, COLUMN, self.row_text(name, agent))
        self.shown[name] = dict(now)

    def _see(self, name: str) -> None:
        """Note what changed in a host's rows; a host's first answer marks nothing."""
        changes = self.changes[name]
        rows = self.links[name].rows
        changes.keep_only(rows)
        for row in rows.values():
            changes.see(row)

    def relight(self, name: str) -> None:
        """A host's rows again, all of them, if its link went up or down since they were drawn."""
        live = self.links[name].link.state == LIVE
        if self.drawn_live.get(name) == live:
            return
        self.drawn_live[name] = live
        self.update_cell(header_key(name), COLUMN, self.header_text(name))
        for agent in self.links[name].rows:
            self.redraw(name, agent)

    def redraw(self, host: str, agent: str) -> None:
        key = row_key(host, agent)
        if key in self.rows:
            self.update_cell(key, COLUMN, self.row_text(host, agent))

    def tick(self) -> None:
        """The countdown to each waiting host's next try; the rows whose marker ran out."""
        for name, link in self.links.items():
            if link.link.retry_at is not None and link.link.state != LIVE:
                self.update_cell(header_key(name), COLUMN, self.header_text(name))
            for agent in self.changes[name].expire():
                if agent in link.rows:
                    self.redraw(name, agent)

    def toggle_mark(self, host: str, agent: str) -> bool:
        """Mark or unmark a row; returns whether it is marked now."""
        mark = (host, agent)
        if mark in self.marks:
            self.marks.discard(mark)
        else:
            self.marks.add(mark)
        self.redraw(host, agent)
        return mark in self.marks

    def set_marks(self, marks: set[tuple[str, str]]) -> None:
        changed = self.marks ^ marks
        self.marks = set(marks)
        for host, agent in changed:
            self.redraw(host, agent)

    def refilter(self, text: str) -> None:
        self.filter_text = text.lower()
        self.rebuild()

    def _style(self, name: str) -> Style:
        return self.themed(name)

    def restyle(self) -> None:
        # A theme switch: every row's Text holds the old theme's colours.
        self.rebuild()

    def header_text(self, name: str) -> Text:
        link = self.links[name]
        host = link.host
        state = link.link.describe(now=self.clock() if self.clock else None)
        # The state first, then what to know about the host, its address last: a narrow pane cuts the end.
        parts = [one_line(name, 64), one_line(state, 160)]
        if link.link.state == LIVE or link.rows:
            parts.append(f"{len(link.rows)} agent{'s' if len(link.rows) != 1 else ''}")
        if self.read_only(name):
            parts.append(READ_ONLY)
        missing = lacking(link)
        if missing:
            parts.append(f"no {', '.join(missing)} here")
        parts.append(one_line(host.address(), 80))
        style = self._style("fleet--host") + accent_style(host.accent)
        text = Text(f"▌ {'  ·  '.join(parts)}", style=style, no_wrap=True, overflow="ellipsis")
        if link.link.state != LIVE and not host.accent:
            text.stylize(self._style("fleet--down"))
        return text

    def row_text(self, host: str, agent: str) -> Text:
        row = self.links[host].rows[agent]
        changed = self.changes[host].marked(agent)
        text = Text(no_wrap=True, overflow="ellipsis")
        marked = (host, agent) in self.marks
        text.append(f" {MARKED if marked else ' '} ", self._style("fleet--mark"))
        text.append(f"{one_line(agent, 24):<25}", self._style("fleet--name"))
        if row.transient:
            self._field(text, transient_word(row.transient), 14, "state" in changed, self._style("fleet--pill"))
        else:
            word = run_state(row)
            self._field(text, f"{MARKS.get(word, ' ')} {word}", 14, "state" in changed,
                        self._style("fleet--failed") if row.failed else None)
        meta = self._style("fleet--meta")
        self._field(text, one_line(row.deployed_sha, 12) or "-", 13, "sha" in changed, meta)
        self._field(text, one_line(row.active_model, 12) or "-", 13, "model" in changed, meta)
        for word in flags(row):
            text.append(f" {word} ", self._style("fleet--badge"))
            text.append(" ")
        if "badges" in changed:
            text.append(CHANGED, self._style("fleet--changed"))
            text.append(" ")
        if row.status_text:
            text.append(f"{one_line(row.status_text, 60)} ({age(row.status_set_at, self.now() if self.now else None)})")
        if self.links[host].link.state != LIVE:
            # What the host said last; it may have changed since.
            text.stylize(self._style("fleet--stale"))
        return text

    def _field(self, text: Text, value: str, cells: int, changed: bool, style: Style | None) -> None:
        padded, at = field(value, cells, changed)
        if at is None:
            text.append(padded, style)
        else:
            text.append(padded[:at], style)
            text.append(CHANGED, self._style("fleet--changed"))
            text.append(padded[at + 1:])


class RequestQueue(DataTable):
    """Every host's pending requests in one queue, oldest first, each labelled with its host."""

    def __init__(self, now: Callable[[], datetime] | None = None, **kwargs):
        super().__init__(cursor_type="row", **kwargs)
        self.now = now
        self.items: dict[str, Request] = {}
        self.filter_text = ""

    def on_mount(self) -> None:
        # Fixed widths: the queue's rows come and go, and a column that jumped with them would be hard to read.
        for label, key, width in (("HOST", "host", 12), ("ID", "id", 4), ("AGENT", "agent", 14), ("KIND", "kind", 14),
                                  ("AGE", "age", 8), ("DESCRIPTION", "description", 80)):
            self.add_column(label, key=key, width=width)

    def selected(self) -> Request | None:
        if self.row_count == 0:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self.items.get(key) if key is not None else None

    def set_queue(self, queue: list[Request]) -> None:
        """The queue as it is now; rebuilt only when it changed (it is short next to the agents)."""
        fresh = {f"{r.host}/{r.approval.id}": r for r in queue if self._shows(r)}
        if list(fresh.items()) == list(self.items.items()):
            return
        keep = self.selected()
        self.items = fresh
        self.clear()
        for key, r in fresh.items():
            self.add_row(*self._cells(r), key=key)
        if keep is not None:
            key = f"{keep.host}/{keep.approval.id}"
            if key in self.rows:
                self.move_cursor(row=self.get_row_index(key))

    def refilter(self, text: str, queue: list[Request]) -> None:
        self.filter_text = text.lower()
        self.items = {}
        self.set_queue(queue)

    def _shows(self, r: Request) -> bool:
        needle = self.filter_text
        a = r.approval
        return (not needle or needle in r.host.lower() or needle in a.agent.lower()
                or needle in (a.description or "").lower())

    def _cells(self, r: Request) -> list[Text]:
        a = r.approval
        return [Text(one_line(r.host, 24)), Text(str(a.id)), Text(one_line(a.agent, 24)), Text(one_line(a.kind, 14)),
                Text(age(a.requested_at, self.now() if self.now else None)), Text(one_line(a.description, 80) or "-")]


class FleetLog(DeployLog):
    """The single-host deploy log's lines, each led by the name of its host."""

    _host = ""

    def pushed(self, host: str, item: object) -> None:
        if not isinstance(item, (DeployStep, Event)):
            return
        self._host = host
        try:
            if isinstance(item, DeployStep):
                self.step(item)
            else:
                self.event(item)
        finally:
            self._host = ""

    def note(self, host: str, line: str) -> None:
        """A line of the console's own (a bulk action's summary), under a host or none."""
        self._host = host
        try:
            self.put((line, ""))
        finally:
            self._host = ""
        # Shown for a while, as after a deploy.
        self._active()

    def put(self, *pieces: tuple[str, str]) -> None:
        # The words stay the single-host log's; only the host is put in front.
        if self._host:
            pieces = ((f"{one_line(self._host, 24)} ", "deploy-log--host"), *pieces)
        super().put(*pieces)
