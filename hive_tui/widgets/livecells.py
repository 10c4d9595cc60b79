"""Text in a table that changes with time alone: a pill's pulse, an age.

A DataTable caches every line it draws, and `update_cell` drops all of
those caches and redraws the whole table: far too much for a glyph that
turns twice a second or an age that counts up. So those few cells are
painted over the cached line as it is handed to the screen, and a tick
marks only their own cells dirty. The table's data and caches stay as they
are, and so does the cost of an idle console.

A table using this draws rows of one height (`LINES_PER_ROW`) and says
where its live text sits with `live_text`.
"""

from __future__ import annotations

from rich.segment import Segment
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable

# (x in the row's cells, counted from the table's left edge; width; text now)
Live = tuple[int, int, str]


class LiveCells(DataTable):
    LINES_PER_ROW = 1

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # What each live cell shows on screen now, by (screen line, x): a tick skips those that read the same.
        self.painted: dict[tuple[int, int], str] = {}

    def live_text(self, row_index: int, line: int) -> list[Live]:
        """What changes with time on this line of this row, as it should read now."""
        return []

    def visible_rows(self) -> range:
        """The indexes of the rows on screen, whole or in part."""
        header = self.header_height if self.show_header else 0
        top = self.scroll_offset.y
        height = max(self.size.height - header, 0)
        first = top // self.LINES_PER_ROW
        last = (top + height + self.LINES_PER_ROW - 1) // self.LINES_PER_ROW
        return range(first, min(last, self.row_count))

    def repaint_live(self) -> None:
        """Mark just the live cells of the rows on screen to be drawn again."""
        header = self.header_height if self.show_header else 0
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        regions = []
        for index in self.visible_rows():
            for line in range(self.LINES_PER_ROW):
                y = index * self.LINES_PER_ROW + line - scroll_y + header
                for x, cells, text in self.live_text(index, line):
                    x -= scroll_x
                    if x + cells > 0 and x < width and self.painted.get((y, x)) != text:
                        regions.append(Region(x, y, cells, 1))
        if regions:
            self.refresh(*regions)

    def render_line(self, y: int) -> Strip:
        # The table's own (cached) line, with the live cells painted over it.
        strip = super().render_line(y)
        header = self.header_height if self.show_header else 0
        if y < header:
            return strip
        scroll_x, scroll_y = self.scroll_offset
        index, line = divmod(y - header + scroll_y, self.LINES_PER_ROW)
        if index >= self.row_count:
            return strip
        for x, cells, text in self.live_text(index, line):
            strip = paint(strip, x - scroll_x, cells, text)
            self.painted[y, x - scroll_x] = text
        return strip


def paint(strip: Strip, x: int, cells: int, text: str) -> Strip:
    """`text` over `cells` cells of `strip` from `x`, in the style already there."""
    end = min(x + cells, strip.cell_length)
    if x >= end or end <= 0:
        return strip
    start = max(x, 0)
    under = list(strip.crop(start, end))
    style = under[0].style if under else None
    word = text.ljust(cells)[start - x:end - x]
    return Strip.join([strip.crop(0, start), Strip([Segment(word, style)]), strip.crop(end)])
