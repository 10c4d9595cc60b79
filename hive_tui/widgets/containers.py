"""The container list: one two-line row per agent, updated in place.

A DataTable draws only the lines on screen, so a thousand agents mount in
a blink; a row changes with `update_cell` when the engine pushes it. What
changes with time alone (a pill's pulse, the age of a status) is painted
over the drawn line instead (see livecells), so a tick redraws those cells
and nothing else, and only on rows that are on screen.

Each row fits the table's width: the model goes first when room is short,
then the sha; a status is cut at a word. The column is as wide as its widest
row, known as each row is built: the table never measures rows itself, which
for a big hive was a pass over every row before the first frame with any. A filter hides rows by taking
them out of the table and putting back the ones that match, from cells
already built, never by building every row again.

A field that changed a moment ago (the state, the sha, the model, the
badges) carries a marker, a glyph after it, for `change_markers` seconds
(see roster.ChangeMarks). The tick draws again only the rows whose marker
ran out. The faults-only view shows just the rows that need the operator;
a row leaves it as soon as it no longer does, and the pane's title says
how many rows are hidden.

Grouped by parent (a key, or the `group_by_parent` setting), a header row
leads each group: the top group (agents with no parent) first, then one
group per immediate parent, by name. A header is keyed by a HeaderKey (see
rowkeys), which no agent's name can equal, so no agent can pass for one. A folded
group shows its header alone.

Every word comes from the agents or the manager, so every cell is a Text
(a plain str would be read as markup), built from `plain` text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions
from rich.control import strip_control_codes
from rich.measure import Measurement
from rich.style import Style
from rich.text import Span, Text
from textual import events, work
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets.data_table import ColumnKey, RowKey

from .. import actions
from ..keymap import key_of
from ..models import AgentStatus
from ..plain import one_line
from ..presentation import MARKS, age, run_state, transient_word
from ..roster import (ChangeMarks, Group, badges, group_by_parent, group_of, needs_operator, parent_of,
                      view_title)
from .fit import fit
from .livecells import Live, LiveCells
from .marking import MARKED
from .rowkeys import HeaderKey, is_header
from .themed import Themed

PULSE = "◐◓◑◒"
PULSE_EVERY = 0.5
COLUMN = "agent"
# Cells of the first line, by how long they stay: the name and the state never go.
NAME, STATE, SHA, MODEL = 25, 16, 13, 13
# "(999d ago)": an age never outgrows its cells as it ticks.
AGE_CELLS = 10
# A destroyed agent's repos kept: all that can still be done with it, at the keys in force.
KEPT_KEYS = "{purge} purge · {history} history · spawning it again brings it back"
# A filter's work, in rows, between two looks at the keyboard.
FILTER_CHUNK = 500
# After a field that changed a moment ago; its colour is the stylesheet's (containers--changed).
CHANGED = "Δ"
# What a group's header says for the agents with no parent.
TOP_GROUP = "no parent"
FOLDED, UNFOLDED = "▸", "▾"
# A row's key in the table: an agent's name, or a group's header (a HeaderKey).
RowName = str


def header_key(parent: str | None) -> HeaderKey:
    return HeaderKey(parent)


class RowText(Text):
    """A row's cell, which knows its own width: the table asks every row for it, and
    a Text would work it out again from its lines and words."""

    __slots__ = ("cells_wide",)
    cells_wide: int

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.cells_wide, self.cells_wide)


def state_cell(row: AgentStatus | None) -> str:
    if row is None:
        return "-"
    word = run_state(row)
    return f"{MARKS[word]} {word}"


def field(text: str, cells: int, changed: bool) -> tuple[str, int | None]:
    """`text` padded to `cells`; if it `changed`, cut to leave room for the
    marker after it and a blank before the next field. Also where the marker sits."""
    if not changed:
        return f"{text:<{cells}}", None
    body = text if len(text) <= cells - 3 else f"{text[:cells - 4]}…"
    return f"{body} {CHANGED}".ljust(cells), len(body) + 1


def pill(kind: str, frame: int) -> str:
    return f"{PULSE[frame % len(PULSE)]} {transient_word(kind)}"


class ContainerTable(LiveCells, Themed):
    BINDINGS = actions.bindings("agent")
    COMPONENT_CLASSES = {
        "containers--name", "containers--pill", "containers--badge", "containers--failed",
        "containers--dim", "containers--meta", "containers--kept", "containers--changed",
    }
    LINES_PER_ROW = 2

    class Counted(Message):
        """The pane's title as it should read now: filtered or not, and how many rows are hidden."""

        def __init__(self, title: str):
            super().__init__()
            self.title = title

    def __init__(self, now: Callable[[], datetime] | None = None, pulse: bool = True,
                 clock: Callable[[], float] | None = None, change_markers: float = 10.0, grouped: bool = False,
                 **kwargs):
        super().__init__(cursor_type="row", zebra_stripes=False, show_header=False, **kwargs)
        self.now = now
        # Which fields changed a moment ago, timed by `clock` (monotonic seconds).
        self.changes = ChangeMarks(change_markers, clock)
        # Only the rows that need the operator (the faults-only view).
        self.faults_only = False
        self.pane_title = "Containers"
        self.pulse = pulse
        self.frame = 0
        self.rows_by_name: dict[str, AgentStatus | None] = {}
        self.transients: dict[str, str] = {}
        self.filter_text = ""
        # A filter's steps are under way: the table holds only part of what it will.
        self.filling = False
        # Each row's cell as last built for `self.width_built`, and where its live text sits.
        self.cells: dict[str, RowText] = {}
        self.live: dict[str, list[tuple[int, int, str]]] = {}
        self.width_built = 0
        # The agents a bulk action acts on: a glyph before each one's name.
        self.marks: set[str] = set()
        # Grouped by parent: the groups as last laid out, each agent's group, and the
        # parents whose groups are folded (kept while the console runs, whatever the host).
        self.grouped = grouped
        self.groups: dict[str | None, Group] = {}
        self.group_of: dict[str, str | None] = {}
        self.folded: set[str | None] = set()
        # As last laid out: how many header rows the table holds, and how many agents that
        # match sit in folded groups (neither is a row the view hides).
        self.headers_shown = 0
        self.tucked = 0

    def on_mount(self) -> None:
        # A width of our own, that of the widest row in the table, set as rows come and go.
        # Left to the table, it is measured at its next idle moment, row by row, and a
        # frame drawn before that keeps every row cut to the label's width.
        self.add_column("agent", key=COLUMN, width=len(COLUMN))
        # One timer for both: a pill turns every tick, an age is looked at and repainted if it moved.
        self.set_interval(PULSE_EVERY, self._tick)

    def on_resize(self, event: events.Resize) -> None:
        if self._text_width() != self.width_built:
            self.cells.clear()
            self.live.clear()
            self._refill(self._order())

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        # The table would measure every new row, at its next idle moment: ours are all one
        # height, unlabelled, and the column's width is set as they go in. What is left to
        # do is the table's size.
        super()._update_dimensions(())

    # -- the model --------------------------------------------------------------

    def selected(self) -> str | None:
        """The agent under the cursor; None on a group's header."""
        key = self._cursor_key()
        return None if is_header(key) else key

    def _cursor_key(self) -> RowName | None:
        if self.row_count == 0:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def on_header(self) -> bool:
        return is_header(self._cursor_key())

    def is_header_row(self, index: int) -> bool:
        return is_header(self.coordinate_to_cell_key(Coordinate(index, 0)).row_key.value)

    def cursor_group(self) -> tuple[bool, str | None]:
        """(whether the cursor is in a group, that group's parent): on its header or one of its agents."""
        key = self._cursor_key()
        if not self.grouped or key is None:
            return False, None
        if isinstance(key, HeaderKey):
            return True, key.parent
        return key in self.group_of, self.group_of.get(key)

    def matches(self, name: str) -> bool:
        """Whether the agent's row is shown: the one place this is decided, grouped or not."""
        if self.faults_only and not needs_operator(self.rows_by_name.get(name), self.transients.get(name)):
            return False
        return not self.filter_text or self.filter_text in name.lower()

    def _order(self) -> list[RowName]:
        """The rows to show, in order: the agents that match, by name; grouped, each
        group that has one under its header, with its matching agents unless folded."""
        if not self.grouped:
            self.headers_shown = self.tucked = 0
            return [n for n in sorted(self.rows_by_name) if self.matches(n)]
        groups = group_by_parent(self.rows_by_name, self.transients)
        for group in groups:
            if self.groups.get(group.parent) != group:
                self.cells.pop(header_key(group.parent), None)
        self.groups = {g.parent: g for g in groups}
        self.group_of = {name: g.parent for g in groups for name in g.names}
        order: list[RowName] = []
        self.headers_shown = self.tucked = 0
        for group in groups:
            shown = [n for n in group.names if self.matches(n)]
            if shown:
                order.append(header_key(group.parent))
                self.headers_shown += 1
                if group.parent not in self.folded:
                    order += shown
                else:
                    self.tucked += len(shown)
        return order

    def set_grouped(self, grouped: bool) -> None:
        """Group the rows by parent, or list them all by name; the cursor stays on its agent."""
        self.grouped = grouped
        self._refill(self._order())

    def toggle_fold(self, parent: str | None) -> None:
        """Fold the group into its header, or unfold it; the cursor goes to the header."""
        self.folded ^= {parent}
        key = header_key(parent)
        self.cells.pop(key, None)
        self._refill(self._order())
        if key in self.rows:
            self.move_cursor(row=self.get_row_index(key))

    def toggle_faults(self) -> bool:
        """Show only the rows that need the operator, or every row again; returns which."""
        self.faults_only = not self.faults_only
        self.refilter(self.filter_text)
        return self.faults_only

    def _count(self) -> None:
        """Say what the title should read, if that changed: rows hidden only while the table holds all it will."""
        if self.filling:
            return
        # Grouped, the headers are no agents, and a folded group's agents are not hidden by the view.
        hidden = len(self.rows_by_name) - (self.row_count - self.headers_shown) - self.tucked
        title = view_title("Containers", self.faults_only, bool(self.filter_text), lambda: hidden)
        if title != self.pane_title:
            self.pane_title = title
            self.post_message(self.Counted(title))

    def set_rows(self, rows: list[AgentStatus], transients: dict[str, str]) -> None:
        """Everything afresh (on connect and after a gap), keeping the selection."""
        self.rows_by_name = {r.name: r for r in rows}
        # After a gap, what changed unseen in it is marked; a first fill marks nothing.
        self.changes.keep_only(self.rows_by_name)
        for row in rows:
            self.changes.see(row)
        self.marks &= self.rows_by_name.keys()
        self.transients = {**{r.name: r.transient for r in rows if r.transient}, **transients}
        for name in transients:
            self.rows_by_name.setdefault(name, None)
        self.cells.clear()
        self.live.clear()
        self._refill(self._order())

    def update_row(self, row: AgentStatus) -> None:
        self.changes.see(row)
        self.rows_by_name[row.name] = row
        if row.transient:
            self.transients[row.name] = row.transient
        else:
            self.transients.pop(row.name, None)
        self._show(row.name)

    def set_transient(self, name: str, kind: str | None) -> None:
        if kind:
            self.transients[name] = kind
            self.rows_by_name.setdefault(name, None)
        else:
            self.transients.pop(name, None)
            if self.rows_by_name.get(name) is None:
                # A spawn that ended without a container (failed or refused).
                self.rows_by_name.pop(name, None)
                self.changes.keep_only(self.rows_by_name)
        self._show(name)

    def set_marks(self, names: set[str]) -> None:
        changed, self.marks = self.marks ^ names, set(names)
        for name in changed & self.rows_by_name.keys():
            self._show(name)

    def refilter(self, text: str) -> None:
        """Show only the rows whose name holds `text`.

        A big hive is filtered in steps, between which keys are read: a new
        filter (the next key typed) replaces one still under way."""
        self.filter_text = text.lower()
        names = self._order()
        if not self.filling and names == [key.value for key in self.rows]:
            # The first keys of a name often match every row: nothing to do.
            self.workers.cancel_group(self, "filter")
            self._count()
            return
        if len(self.rows_by_name) <= FILTER_CHUNK:
            self._refill(names)
        else:
            self._refill_in_steps(names)

    @work(group="filter", exclusive=True)
    async def _refill_in_steps(self, names: list[RowName]) -> None:
        self.filling = True
        try:
            for _ in self._refilling(names):
                await asyncio.sleep(0)
        finally:
            self.filling = False

    def _refill(self, names: list[RowName]) -> None:
        """Put `names` (as `_order` gives them) in the table at once."""
        # A filter under way worked from rows that are no longer the table's.
        self.workers.cancel_group(self, "filter")
        for _ in self._refilling(names):
            pass

    def _refilling(self, names: list[RowName]) -> Iterator[None]:
        """Put `names` in the table, from their built cells, yielding between steps."""
        keep = self._landing(self._cursor_key(), names)
        for start in range(0, len(names), FILTER_CHUNK):
            for name in names[start:start + FILTER_CHUNK]:
                if name in self.rows_by_name or is_header(name):
                    self._cell(name)
            yield
        self.clear()
        self.columns[ColumnKey(COLUMN)].width = len(COLUMN)
        for start in range(0, len(names), FILTER_CHUNK):
            for name in names[start:start + FILTER_CHUNK]:
                # A push between two steps may have dropped an agent, or put it back already.
                if (name in self.rows_by_name or is_header(name)) and name not in self.rows:
                    cell = self._cell(name)
                    self._widen(cell.cells_wide)
                    self.add_row(cell, key=name, height=self.LINES_PER_ROW)
            if keep is not None and keep in self.rows:
                self.move_cursor(row=self.get_row_index(keep))
                keep = None
            if start + FILTER_CHUNK < len(names):
                yield
        self.filling = False
        self._count()

    def _landing(self, keep: RowName | None, names: list[RowName]) -> RowName | None:
        """Where the cursor on `keep` goes once `names` are the rows: the same row, or,
        grouped, the header of an agent's folded group, or a header's first agent."""
        if not self.grouped and not is_header(keep):
            return keep
        shown = set(names)
        if keep is None or keep in shown:
            return keep
        if isinstance(keep, HeaderKey):
            return next((n for n in names if not is_header(n) and self.group_of.get(n) == keep.parent), None)
        return header_key(self.group_of.get(keep))

    def _show(self, name: str) -> None:
        """Put `name`'s row on screen as it is now: update, add or drop it."""
        if self.grouped:
            self._show_grouped(name)
            self._count()
            return
        was = self.cells.pop(name, None)
        self.live.pop(name, None)
        present = name in self.rows
        wanted = name in self.rows_by_name and self.matches(name)
        if present and wanted:
            cell = self._cell(name)
            self._fit_column(cell.cells_wide, was)
            self.update_cell(name, COLUMN, cell)
        elif present:
            self._fit_column(0, was)
            self.remove_row(name)
        elif wanted:
            # New rows go where sorting puts them: refill once, rare next to updates.
            self._refill(self._order())
        self._count()

    def _show_grouped(self, name: str) -> None:
        """As `_show`, with the agent's group header kept in step. An agent that
        came, went, changed parent or came into or out of sight lays the groups out again."""
        row = self.rows_by_name.get(name)
        parent = parent_of(row)
        was = self.cells.pop(name, None)
        self.live.pop(name, None)
        present = name in self.rows
        wanted = name in self.rows_by_name and self.matches(name) and parent not in self.folded
        if name not in self.rows_by_name or self.group_of.get(name, ()) != parent or present != wanted:
            self._refill(self._order())
            return
        group = self.groups[parent]
        fresh = group_of(parent, group.names, self.rows_by_name, self.transients)
        if fresh != group:
            self.groups[parent] = fresh
            key = header_key(parent)
            old = self.cells.pop(key, None)
            if key in self.rows:
                cell = self._cell(key)
                self._fit_column(cell.cells_wide, old)
                self.update_cell(key, COLUMN, cell)
        if present:
            cell = self._cell(name)
            self._fit_column(cell.cells_wide, was)
            self.update_cell(name, COLUMN, cell)

    def _widen(self, cells: int) -> None:
        # Before the row goes in: the change that follows is what makes the table draw again.
        column = self.columns[ColumnKey(COLUMN)]
        if cells > column.width:
            column.width = cells

    def _fit_column(self, cells: int, was: RowText | None) -> None:
        """The column as wide as its widest row, once a row `was` that is now `cells` wide
        (0: gone). Only a row that was the widest and narrows makes the others count."""
        column = self.columns[ColumnKey(COLUMN)]
        if was is not None and was.cells_wide >= column.width > cells:
            others = (cell.cells_wide for name, cell in self.cells.items() if name in self.rows)
            column.width = max(len(COLUMN), cells, *others)
        else:
            self._widen(cells)

    # -- what changes with time ------------------------------------------------------

    def _tick(self) -> None:
        if self.pulse and self.transients:
            self.frame += 1
        # A marker that ran out: its row alone is built and drawn again. One not in
        # the table (filtered out, or a filter under way) is built when it comes in.
        for name in self.changes.expire():
            if name in self.rows:
                self._show(name)
            else:
                self.cells.pop(name, None)
                self.live.pop(name, None)
        self.repaint_live()

    def live_text(self, row_index: int, line: int) -> list[Live]:
        if not self.live or row_index >= self.row_count:
            return []
        name = self.coordinate_to_cell_key(Coordinate(row_index, 0)).row_key.value
        if name is None:
            return []
        fields = []
        for at_line, x, kind in self.live.get(name, ()):
            if at_line != line:
                continue
            if kind == "pill":
                fields.append((x, 1, PULSE[self.frame % len(PULSE)]))
            else:
                row = self.rows_by_name.get(name)
                if row is not None:
                    fields.append((x, AGE_CELLS, f"({self._age(row)})"))
        return fields

    def _age(self, row: AgentStatus) -> str:
        return age(row.status_set_at, self.now() if self.now else None)

    # -- drawing ------------------------------------------------------------------

    def _text_width(self) -> int:
        # The row is one cell of the table's single column, with its padding either side. Room
        # for a scrollbar is kept whether or not it shows, so rows are not built again as it comes and goes.
        room = self.outer_size.width - self.styles.gutter.width - self.styles.scrollbar_size_vertical
        return max(room - 2 * self.cell_padding, NAME + STATE)

    def _style(self, name: str) -> Style:
        return self.themed(name)

    def restyle(self) -> None:
        # A theme switch: every row's Text holds the old theme's colours.
        self.cells.clear()
        self.live.clear()
        self._refill(self._order())

    def _cell(self, name: RowName) -> RowText:
        if name not in self.cells:
            self.width_built = self._text_width()
            if isinstance(name, HeaderKey):
                self.cells[name] = self._header_text(self.groups[name.parent])
            else:
                self.cells[name], self.live[name] = self._row_text(name, self.width_built)
        return self.cells[name]

    def _header_text(self, group: Group) -> RowText:
        """A group's header: its parent and how many of its agents run; folded, a
        badge when one of them needs the operator, on the second line."""
        folded = group.parent in self.folded
        line = Line()
        label = TOP_GROUP if group.parent is None else one_line(group.parent, NAME - 3)
        line.put(f"{FOLDED if folded else UNFOLDED} ")
        line.put(f"{label:<{NAME - 2}}", self._style("containers--name"))
        line.put(f"{group.running}/{group.total} running", self._style("containers--meta"))
        second = Line()
        second.put("  ")
        if folded:
            if group.faulty:
                second.put(" needs you ", self._style("containers--badge"))
                second.put(" ")
            second.put(f"folded: {group.total} agent{'s' if group.total != 1 else ''}",
                       self._style("containers--dim"))
        return two_lines(line, second)

    def _row_text(self, name: str, width: int) -> tuple[RowText, list[tuple[int, int, str]]]:
        # Built as one string and its spans, not piece by piece: a big hive builds
        # thousands of these before its first frame, and each append is work again.
        row = self.rows_by_name.get(name)
        kind = self.transients.get(name)
        live: list[tuple[int, int, str]] = []
        pad = self.cell_padding
        line = Line()
        changed = self.changes.marked(name)
        mark = f"{MARKED} " if name in self.marks else ""
        line.put(f"{mark}{one_line(name, NAME - 1 - len(mark)):<{NAME - len(mark)}}", self._style("containers--name"))
        if kind:
            live.append((0, pad + NAME, "pill"))
            line.put_field(pill(kind, 0), STATE, "state" in changed, self._style("containers--pill"),
                           self._style("containers--changed"))
        else:
            style = self._style("containers--failed") if row is not None and row.failed else None
            line.put_field(state_cell(row), STATE, "state" in changed, style, self._style("containers--changed"))
        meta = self._style("containers--meta")
        if row is not None and width >= NAME + STATE + SHA:
            line.put_field(strip_control_codes(row.deployed_sha or "-"), SHA, "sha" in changed, meta,
                           self._style("containers--changed"))
            if width >= NAME + STATE + SHA + MODEL:
                line.put_field(one_line(row.active_model, MODEL - 1) or "-", MODEL, "model" in changed, meta,
                               self._style("containers--changed"))
        line.rstrip()
        # The second line: what needs the operator's eye, then the status and its age.
        second = Line()
        second.put("  ")
        for word in badges(row):
            second.put(f" {word} ", self._style("containers--badge"))
            second.put(" ")
        if "badges" in changed:
            second.put(CHANGED, self._style("containers--changed"))
            second.put(" ")
        if kind:
            second.put(f"({one_line(kind).lower()}: actions wait) ", self._style("containers--dim"))
        elif row is not None and row.kept:
            hint = KEPT_KEYS.format(purge=key_of(self.app, "purge"), history=key_of(self.app, "history"))
            second.put(f"{hint} ", self._style("containers--dim"))
        if row is not None and row.status_text:
            status = fit(one_line(row.status_text), width - second.cell_len() - 1 - AGE_CELLS)
            if status:
                second.put(f"{status} ")
                live.append((1, pad + second.cell_len(), "age"))
                second.put(f"({self._age(row)})", meta)
        text = two_lines(line, second)
        if row is not None and row.kept and not kind:
            # No container: the whole row dims; purge is all that acts on it.
            text.stylize(self._style("containers--kept"))
        return text, live


def two_lines(line: Line, second: Line) -> RowText:
    """A row's cell from its two lines."""
    first_text = "".join(line.pieces)
    shift = len(first_text) + 1
    spans = [*line.spans, *(Span(s.start + shift, s.end + shift, s.style) for s in second.spans)]
    text = RowText(f"{first_text}\n{''.join(second.pieces)}", no_wrap=True, overflow="ellipsis", spans=spans)
    text.cells_wide = max(cell_len(first_text), second.cell_len())
    return text


class Line:
    """One line of a row: its pieces, and the spans that style them, as `Text.append` would make."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.spans: list[Span] = []
        self.length = 0

    def put(self, piece: str, style: Style | None = None) -> None:
        if style and piece:
            self.spans.append(Span(self.length, self.length + len(piece), style))
        self.pieces.append(piece)
        self.length += len(piece)

    def put_field(self, text: str, cells: int, changed: bool, style: Style | None, marker: Style) -> None:
        """A field `cells` wide; if it `changed`, with its marker after it."""
        padded, at = field(text, cells, changed)
        if at is None:
            self.put(padded, style)
            return
        self.put(padded[:at], style)
        self.put(CHANGED, marker)
        self.put(padded[at + 1:])

    def cell_len(self) -> int:
        return cell_len("".join(self.pieces))

    def rstrip(self) -> None:
        """As `Text.rstrip`: the trailing spaces go, and what styled them."""
        joined = "".join(self.pieces).rstrip()
        self.pieces, self.length = [joined], len(joined)
        self.spans = [Span(s.start, min(s.end, self.length), s.style) for s in self.spans if s.start < self.length]
