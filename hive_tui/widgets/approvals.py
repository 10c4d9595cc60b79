"""Requests waiting for the operator (or, toggled, all of them), newest last.

The columns fit the table's width: the description takes the room the others
leave, cut at a word, and when room runs short it goes first, then the age,
the kind and the status; the id and the agent always show. Ages count up in
place (see livecells).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.coordinate import Coordinate

from .. import actions
from ..models import Approval
from ..plain import one_line
from ..presentation import age
from .fit import fit
from .livecells import Live, LiveCells

# (label, key), most needed first: the last ones go first when room is short.
COLUMNS = (("ID", "id"), ("AGENT", "agent"), ("STATUS", "status"), ("KIND", "kind"), ("AGE", "age"),
           ("DESCRIPTION", "description"))
# Shown in this order, whichever of them fit.
ORDER = ("id", "agent", "kind", "status", "age", "description")
AGE_CELLS = 8
# Below this, a description says too little to be worth its column.
DESCRIPTION_MIN = 12
AGE_EVERY = 1.0


class ApprovalTable(LiveCells):
    BINDINGS = actions.bindings("approval")

    def __init__(self, now: Callable[[], datetime] | None = None, **kwargs):
        super().__init__(cursor_type="row", **kwargs)
        self.now = now
        self.items: dict[int, Approval] = {}
        self.show_resolved = False
        self.filter_text = ""
        self.width_built = 0
        self.age_x: int | None = None

    def on_mount(self) -> None:
        self._redraw()
        self.set_interval(AGE_EVERY, self.repaint_live)

    def on_resize(self, event: events.Resize) -> None:
        if self.scrollable_content_region.width != self.width_built:
            self._redraw()

    def selected(self) -> Approval | None:
        if self.row_count == 0:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self.items.get(int(key)) if key is not None else None

    def shows(self, a: Approval) -> bool:
        if not self.show_resolved and a.status != "pending":
            return False
        needle = self.filter_text
        return not needle or needle in a.agent.lower() or needle in (a.description or "").lower()

    def set_items(self, items: list[Approval]) -> None:
        self.items = {a.id: a for a in items}
        self._redraw()

    def upsert(self, a: Approval) -> None:
        # Requests are few: a change lays the table out again, so the columns fit what they hold now.
        self.items[a.id] = a
        self._redraw()

    def refilter(self, text: str) -> None:
        self.filter_text = text.lower()
        # Most keys typed into a filter leave the requests shown as they were.
        if [str(a.id) for a in sorted(self.items.values(), key=lambda a: a.id) if self.shows(a)] != [
                key.value for key in self.rows]:
            self._redraw()

    def live_text(self, row_index: int, line: int) -> list[Live]:
        if self.age_x is None or row_index >= self.row_count:
            return []
        key = self.coordinate_to_cell_key(Coordinate(row_index, 0)).row_key.value
        a = self.items.get(int(key)) if key is not None else None
        return [(self.age_x, AGE_CELLS, self._age(a))] if a is not None else []

    def _age(self, a: Approval) -> str:
        return age(a.requested_at, self.now() if self.now else None)

    def _redraw(self) -> None:
        keep = self.selected()
        shown = [a for a in sorted(self.items.values(), key=lambda a: a.id) if self.shows(a)]
        cells = [self._cells(a) for a in shown]
        widths = {key: max([cell_len(label), *(cell_len(c[key]) for c in cells)]) for label, key in COLUMNS}
        widths["age"] = AGE_CELLS
        self.width_built = room = self.scrollable_content_region.width
        pad = 2 * self.cell_padding
        keys = [key for _, key in COLUMNS]
        # The description takes what is left; the least needed columns go until the rest fit.
        while len(keys) > 2 and sum(widths[k] + pad for k in keys if k != "description") + (
                DESCRIPTION_MIN + pad if "description" in keys else 0) > room:
            keys.pop()
        if "description" in keys:
            widths["description"] = max(room - sum(widths[k] + pad for k in keys if k != "description") - pad,
                                        DESCRIPTION_MIN)
        keys = [k for k in ORDER if k in keys]
        self.clear(columns=True)
        labels = dict((key, label) for label, key in COLUMNS)
        for key in keys:
            self.add_column(labels[key], key=key, width=widths[key])
        self.age_x = (sum(widths[k] + pad for k in keys[:keys.index("age")]) + self.cell_padding
                      if "age" in keys else None)
        for a, row in zip(shown, cells):
            row["description"] = fit(row["description"], widths.get("description", 0))
            self.add_row(*(Text(row[k]) for k in keys), key=str(a.id))
        if keep is not None and str(keep.id) in self.rows:
            self.move_cursor(row=self.get_row_index(str(keep.id)))

    def _cells(self, a: Approval) -> dict[str, str]:
        status = a.status if not a.terminal_tag else f"{a.status} ({a.terminal_tag})"
        return {"id": str(a.id), "agent": one_line(a.agent, 24), "kind": one_line(a.kind, 14),
                "status": one_line(status, 28), "age": self._age(a),
                "description": one_line(a.description) or "-"}
