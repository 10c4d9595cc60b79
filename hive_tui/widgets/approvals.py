"""Requests waiting for the operator (or, toggled, all of them), newest last."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rich.text import Text
from textual.widgets import DataTable

from .. import actions
from ..models import Approval
from ..plain import one_line
from ..presentation import age


class ApprovalTable(DataTable):
    BINDINGS = actions.bindings("approval")

    def __init__(self, now: Callable[[], datetime] | None = None, **kwargs):
        super().__init__(cursor_type="row", **kwargs)
        self.now = now
        self.items: dict[int, Approval] = {}
        self.show_resolved = False
        self.filter_text = ""

    def on_mount(self) -> None:
        for label, key in (("ID", "id"), ("AGENT", "agent"), ("KIND", "kind"), ("STATUS", "status"),
                           ("AGE", "age"), ("DESCRIPTION", "description")):
            self.add_column(label, key=key)

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
        known = a.id in self.items
        self.items[a.id] = a
        key = str(a.id)
        if key in self.rows and self.shows(a):
            for column, value in zip(("id", "agent", "kind", "status", "age", "description"), self._cells(a)):
                self.update_cell(key, column, value)
        elif key in self.rows or self.shows(a) or not known:
            self._redraw()

    def refilter(self, text: str) -> None:
        self.filter_text = text.lower()
        self._redraw()

    def _redraw(self) -> None:
        keep = self.selected()
        self.clear()
        for a in sorted(self.items.values(), key=lambda a: a.id):
            if self.shows(a):
                self.add_row(*self._cells(a), key=str(a.id))
        if keep is not None and str(keep.id) in self.rows:
            self.move_cursor(row=self.get_row_index(str(keep.id)))

    def _cells(self, a: Approval) -> list[Text]:
        status = a.status if not a.terminal_tag else f"{a.status} ({a.terminal_tag})"
        return [Text(str(a.id)), Text(one_line(a.agent, 24)), Text(one_line(a.kind, 14)),
                Text(one_line(status, 28)), Text(age(a.requested_at, self.now() if self.now else None)),
                Text(one_line(a.description, 80) or "-")]
