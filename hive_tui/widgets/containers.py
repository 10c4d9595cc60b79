"""The container list: one two-line row per agent, updated in place.

A DataTable draws only the lines on screen, so a thousand agents mount in
a blink; a row changes with `update_cell`, which redraws that row alone. A
row with an action in flight shows a pulsing pill instead of its state and
dims its actions; the pulse touches only those rows. Every word comes from
the agents or the manager, so every cell is a Text (a plain str would be
read as markup), built from `plain` text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable

from .. import actions
from ..models import AgentStatus
from ..plain import one_line
from ..presentation import MARKS, age, flags, run_state, transient_word

PULSE = "◐◓◑◒"
PULSE_EVERY = 0.5
ACTION_KEYS = "s start · x stop · r restart · b rebuild · p pause · d destroy · D purge · ⏎ history"
KEPT_KEYS = "D purge · ⏎ history · spawning it again brings it back"
READ_ONLY_KEYS = "read-only · ⏎ history"
COLUMN = "agent"


def state_cell(row: AgentStatus | None) -> str:
    if row is None:
        return "-"
    word = run_state(row)
    return f"{MARKS[word]} {word}"


def badges(row: AgentStatus | None) -> list[str]:
    """The flags worth a badge, as words, and a failure again beside them."""
    if row is None:
        return []
    return [*flags(row), *(["failed"] if row.failed else [])]


def pill(kind: str, frame: int) -> str:
    return f"{PULSE[frame % len(PULSE)]} {transient_word(kind)}"


class ContainerTable(DataTable):
    BINDINGS = actions.bindings("agent")
    COMPONENT_CLASSES = {
        "containers--name", "containers--pill", "containers--badge", "containers--failed",
        "containers--dim", "containers--meta",
    }

    def __init__(self, now: Callable[[], datetime] | None = None, pulse: bool = True, **kwargs):
        super().__init__(cursor_type="row", zebra_stripes=False, show_header=False, **kwargs)
        self.now = now
        self.pulse = pulse
        self.frame = 0
        self.rows_by_name: dict[str, AgentStatus | None] = {}
        self.transients: dict[str, str] = {}
        self.filter_text = ""
        # A read-only host: no action keys to offer on its rows.
        self.read_only = False

    def on_mount(self) -> None:
        self.add_column("agent", key=COLUMN)
        if self.pulse:
            self.set_interval(PULSE_EVERY, self._pulse)

    # -- the model --------------------------------------------------------------

    def selected(self) -> str | None:
        if self.row_count == 0:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def matches(self, name: str) -> bool:
        return not self.filter_text or self.filter_text in name.lower()

    def set_rows(self, rows: list[AgentStatus], transients: dict[str, str]) -> None:
        """Everything afresh (on connect and after a gap), keeping the selection."""
        keep = self.selected()
        self.rows_by_name = {r.name: r for r in rows}
        self.transients = {**{r.name: r.transient for r in rows if r.transient}, **transients}
        for name in transients:
            self.rows_by_name.setdefault(name, None)
        self.clear()
        for name in sorted(self.rows_by_name):
            if self.matches(name):
                self.add_row(self._row_text(name), key=name, height=2)
        if keep is not None and keep in self.rows_by_name and self.matches(keep):
            self.move_cursor(row=self.get_row_index(keep))

    def update_row(self, row: AgentStatus) -> None:
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
        self._show(name)

    def refilter(self, text: str) -> None:
        self.filter_text = text.lower()
        self._rebuild()

    def _rebuild(self) -> None:
        self.set_rows([r for r in self.rows_by_name.values() if r is not None], self.transients)

    def _show(self, name: str) -> None:
        """Put `name`'s row on screen as it is now: update, add or drop it."""
        present = name in self.rows
        wanted = name in self.rows_by_name and self.matches(name)
        if present and wanted:
            self.update_cell(name, COLUMN, self._row_text(name))
        elif present:
            self.remove_row(name)
        elif wanted:
            # New rows go where sorting puts them: rebuild once, rare next to updates.
            self._rebuild()

    def _pulse(self) -> None:
        if not self.transients:
            return
        self.frame += 1
        # Rows off screen catch up when they scroll in; only what shows is redrawn.
        top, height = self.scroll_offset.y, self.size.height
        for name in self.transients:
            if name in self.rows and top - 2 <= self.get_row_index(name) * 2 <= top + height:
                self.update_cell(name, COLUMN, self._row_text(name))

    # -- drawing ------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        # No styles while the table is being taken down (the app quitting mid-update).
        return self.get_component_rich_style(name, partial=True, default=Style.null())

    def _row_text(self, name: str) -> Text:
        row = self.rows_by_name.get(name)
        kind = self.transients.get(name)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{one_line(name, 24):<25}", self._style("containers--name"))
        if kind:
            text.append(f"{pill(kind, self.frame):<16}", self._style("containers--pill"))
        else:
            style = self._style("containers--failed") if row is not None and row.failed else None
            text.append(f"{state_cell(row):<16}", style)
        meta = self._style("containers--meta")
        if row is not None:
            text.append(f"{row.deployed_sha or '-':<13}", meta)
            text.append(f"{one_line(row.active_model, 12) or '-':<13}", meta)
            if row.status_text:
                text.append(f"{one_line(row.status_text, 60)} ({age(row.status_set_at, self.now() if self.now else None)})")
        text.append("\n  ")
        for word in badges(row):
            text.append(f" {word} ", self._style("containers--badge"))
            text.append(" ")
        keys = KEPT_KEYS if row is not None and row.kept else ACTION_KEYS
        if self.read_only:
            keys = READ_ONLY_KEYS
        text.append(keys if not kind else f"({one_line(kind).lower()}: actions wait)",
                    self._style("containers--dim"))
        if row is not None and row.kept and not kind:
            # No container: the whole row dims; purge is all that acts on it. The
            # colour as blended (a partial style drops the muted colour's alpha).
            muted = self.get_component_rich_style("containers--dim", partial=False, default=Style.null())
            text.stylize(Style(color=muted.color, bold=False))
        return text
