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

Grouped by parent, each host's agents sit under a header per group (the
top group first, then by parent's name), all under the host's header; a
group's header is keyed by a HeaderKey, which no `host/agent` string equals.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rich.style import Style
from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from ..client.fleet import LIVE, HostLink, Request
from ..models import AgentStatus, DeployStep, Event
from ..plain import one_line
from ..presentation import MARKS, age, flags, run_state, transient_word
from ..roster import ChangeMarks, Group, group_by_parent, group_of, needs_operator, parent_of, view_title
from .containers import CHANGED, field
from .deploylog import DeployLog
from .marking import MARKED
from .rowkeys import HeaderKey, is_header
from .themed import Themed
from .titlebar import READ_ONLY, accent_style

COLUMN = "row"
TOP_GROUP = "no parent"
FOLDED, UNFOLDED = "▸", "▾"


def row_key(host: str, agent: str) -> str:
    return f"{host}/{agent}"


def header_key(host: str) -> str:
    # The empty agent: no agent name is empty, so no agent row has this key.
    return f"{host}/"


def group_key(host: str, parent: str | None) -> HeaderKey:
    return HeaderKey(parent, host)


def split_key(key: str) -> tuple[str, str]:
    """(host, agent) of a row key; the agent is "" on a host's or a group's header line."""
    if isinstance(key, HeaderKey):
        return key.host, ""
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
                 change_markers: float = 10.0, marker_clock: Callable[[], float] | None = None,
                 grouped: bool = False, folds: set[tuple[str, str | None]] | None = None, **kwargs):
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
        # Grouped by parent: each host's groups as last drawn, and the folded ones as (host, parent),
        # a set the console keeps while it runs.
        self.grouped = grouped
        self.folds = folds if folds is not None else set()
        self.groups: dict[str, dict[str | None, Group]] = {}

    def on_mount(self) -> None:
        self.add_column("row", key=COLUMN)
        self.rebuild()

    # -- what is selected -----------------------------------------------------------

    def selected_key(self) -> tuple[str, str] | None:
        """(host, agent) under the cursor; agent "" on a host's or a group's header line."""
        key = self._cursor_key()
        return split_key(key) if key is not None else None

    def _cursor_key(self) -> str | None:
        if self.row_count == 0:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def on_group_header(self) -> bool:
        return is_header(self._cursor_key())

    def cursor_group(self) -> tuple[str, str | None] | None:
        """(host, parent) of the group under the cursor: on its header or one of its agents."""
        key = self._cursor_key()
        if not self.grouped or key is None:
            return None
        if isinstance(key, HeaderKey):
            return key.host, key.parent
        host, agent = split_key(key)
        row = self.links[host].rows.get(agent) if agent else None
        return (host, parent_of(row)) if row is not None else None

    def is_agent_row(self, index: int) -> bool:
        key = self.coordinate_to_cell_key(Coordinate(index, 0)).row_key.value
        return key is not None and bool(split_key(key)[1])

    def matches(self, host: str, agent: str) -> bool:
        if self.faults_only and not needs_operator(self.links[host].rows.get(agent)):
            return False
        needle = self.filter_text
        return not needle or needle in agent.lower() or needle in host.lower()

    def _wanted(self, host: str, agent: str) -> bool:
        """Whether the agent's row is in the table: it matches, and is in no folded group."""
        if not self.matches(host, agent):
            return False
        return not self.grouped or (host, parent_of(self.links[host].rows.get(agent))) not in self.folds

    def hidden(self) -> int:
        """How many agents the filter and the faults-only view leave out (a folded group hides none)."""
        return sum(1 for host, link in self.links.items() for agent in link.rows if not self.matches(host, agent))

    def title(self) -> str:
        """The pane's title: whether the view is filtered, and how many rows that hides."""
        return view_title("Every host's agents", self.faults_only, bool(self.filter_text), self.hidden)

    def toggle_faults(self) -> bool:
        self.faults_only = not self.faults_only
        self.rebuild()
        return self.faults_only

    # -- drawing ---------------------------------------------------------------------

    def rebuild(self) -> None:
        """Every row afresh, keeping the selection on the same row."""
        keep = self._cursor_key()
        self.clear()
        for name, link in self.links.items():
            self.shown[name] = dict(link.rows)
            self._see(name)
            self.drawn_live[name] = link.link.state == LIVE
            self.add_row(self.header_text(name), key=header_key(name))
            if self.grouped:
                self._add_groups(name)
                continue
            for agent in sorted(link.rows):
                if self.matches(name, agent):
                    self.add_row(self.row_text(name, agent), key=row_key(name, agent))
        self._land(keep)

    def _add_groups(self, host: str) -> None:
        rows = self.links[host].rows
        groups = group_by_parent(rows, {})
        self.groups[host] = {g.parent: g for g in groups}
        for group in groups:
            shown = [agent for agent in group.names if self.matches(host, agent)]
            if not shown:
                continue
            self.add_row(self.group_text(host, group), key=group_key(host, group.parent))
            if (host, group.parent) not in self.folds:
                for agent in shown:
                    self.add_row(self.row_text(host, agent), key=row_key(host, agent))

    def _land(self, keep: str | None) -> None:
        """The cursor back on `keep`'s row; else, grouped, on the header of the agent's
        folded group, or on a gone group's first agent, or on the host's header."""
        if keep is None:
            return
        if keep in self.rows:
            self.move_cursor(row=self.get_row_index(keep))
            return
        host, agent = split_key(keep)
        if host not in self.links:
            return
        rows = self.links[host].rows
        if isinstance(keep, HeaderKey):
            first = next((a for a in sorted(rows) if parent_of(rows[a]) == keep.parent and row_key(host, a) in self.rows),
                         None)
            if first is not None:
                self.select(host, first)
                return
        elif self.grouped and agent in rows:
            key = group_key(host, parent_of(rows[agent]))
            if key in self.rows:
                self.move_cursor(row=self.get_row_index(key))
                return
        self.select(host, "")

    def set_grouped(self, grouped: bool) -> None:
        self.grouped = grouped
        self.rebuild()

    def toggle_fold(self, host: str, parent: str | None) -> None:
        """Fold one host's group into its header, or unfold it; the cursor goes to the header."""
        self.folds ^= {(host, parent)}
        self.rebuild()
        key = group_key(host, parent)
        if key in self.rows:
            self.move_cursor(row=self.get_row_index(key))

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
        moved = self.faults_only and any((row_key(name, agent) in self.rows) != self._wanted(name, agent)
                                         for agent in now)
        if before.keys() != now.keys() or moved:
            self.marks -= {(name, agent) for agent in before.keys() - now.keys()}
            self.rebuild()
            return
        if self.grouped and not self._regroup(name):
            return
        self.update_cell(header_key(name), COLUMN, self.header_text(name))
        self._see(name)
        for agent, row in now.items():
            key = row_key(name, agent)
            if before.get(agent) != row and key in self.rows:
                self.update_cell(key, COLUMN, self.row_text(name, agent))
        self.shown[name] = dict(now)

    def _regroup(self, host: str) -> bool:
        """Bring one host's group headers up to date; False when an agent changed
        group, for which the table was rebuilt instead."""
        rows, groups = self.links[host].rows, self.groups.get(host, {})
        shown = self.shown.get(host, {})
        if any(parent_of(row) != parent_of(shown.get(agent)) or parent_of(row) not in groups
               for agent, row in rows.items()):
            self.rebuild()
            return False
        for parent, group in groups.items():
            fresh = group_of(parent, group.names, rows, {})
            if fresh != group:
                groups[parent] = fresh
                key = group_key(host, parent)
                if key in self.rows:
                    self.update_cell(key, COLUMN, self.group_text(host, fresh))
        return True

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
        for parent, group in self.groups.get(name, {}).items():
            if group_key(name, parent) in self.rows:
                self.update_cell(group_key(name, parent), COLUMN, self.group_text(name, group))
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

    def group_text(self, host: str, group: Group) -> Text:
        """A group's header under its host's: the parent, how many run; folded, a
        badge when one of its agents needs the operator."""
        folded = (host, group.parent) in self.folds
        label = TOP_GROUP if group.parent is None else one_line(group.parent, 24)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f" {FOLDED if folded else UNFOLDED} ")
        text.append(f"{label:<25}", self._style("fleet--name"))
        text.append(f"{group.running}/{group.total} running", self._style("fleet--meta"))
        if folded:
            if group.faulty:
                text.append("  ")
                text.append(" needs you ", self._style("fleet--badge"))
            text.append(f"  folded: {group.total} agent{'s' if group.total != 1 else ''}", self._style("fleet--meta"))
        if self.links[host].link.state != LIVE:
            text.stylize(self._style("fleet--stale"))
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
