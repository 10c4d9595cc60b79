"""The baseline the console's figures are ratios of: a bare Textual app with a
header, a 20-row DataTable and a footer, and nothing else.

    python -m benchmarks.bare [--input]

With --input, an Input above the table has the focus: the baseline for typing.
"""

from __future__ import annotations

import sys

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Header, Input

ROWS = 20
LAST_ROW = f"row-{ROWS - 1:02d}"


class Bare(App[None]):
    def __init__(self, with_input: bool = False):
        super().__init__()
        self.with_input = with_input

    def compose(self) -> ComposeResult:
        yield Header()
        if self.with_input:
            yield Input()
        yield DataTable(cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("name", "state", "model", "status")
        for i in range(ROWS):
            table.add_row(f"row-{i:02d}", "running", "sonnet", f"working on task {i}")
        (self.query_one(Input) if self.with_input else table).focus()


if __name__ == "__main__":
    Bare(with_input="--input" in sys.argv).run()
