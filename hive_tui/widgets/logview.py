"""An agent's log, read lazily: a million lines open as fast as a hundred.

The view never holds the log. Its height is the number of lines in the
window (all of it, or the last hour or five minutes), and it asks the host
only for the pages it shows, keeping a bounded number of them (least recently
shown go first). A key press never waits for the host: pages are fetched in
a worker and the view redraws when they arrive, showing a placeholder until
then.

Following uses the host's live stream only as a signal that something was
written; the new lines are read by page like the rest. Search runs on the
host (`log_find`), so finding a line a million lines away reads nothing in
between here.

Agent text is hostile: every line is made plain (no markup, no escapes) and
cut at LINE_LIMIT characters before it is measured or drawn.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections import OrderedDict, deque
from contextlib import aclosing
from datetime import datetime, timedelta, timezone
from pathlib import Path

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import Worker, WorkerState

from ..client.base import HiveClient, Unavailable
from ..models import LogLine, LogPage
from ..plain import plain

# Lines per page asked of the host, and how many pages the view keeps.
PAGE = 200
CACHE_PAGES = 24
# A line longer than this is cut: drawing it costs what it shows, never what the agent wrote.
LINE_LIMIT = 4000
CUT = " …"

# Where the host pages no log (the journal keeps it), the lines followed since the view opened,
# this many at most, are paged here instead.
STREAM_KEEP = 5000
STREAM_BACKLOG = 500

# The time windows, in the order the key cycles through them.
WINDOWS: tuple[tuple[str, timedelta | None], ...] = (
    ("all", None),
    ("last 5 minutes", timedelta(minutes=5)),
    ("last hour", timedelta(hours=1)),
)

# The log screen's keys: one list, so the screen, the footer and the help all read them here.
BINDINGS: list[BindingType] = [
    Binding("f", "log_follow", "Follow", id="log.follow",
            tooltip="follow the log as it is written, or pause (the count of new lines shows)"),
    Binding("w", "log_wrap", "Wrap", id="log.wrap", tooltip="wrap long lines on screen, or cut them"),
    Binding("t", "log_timestamps", "Stamps", id="log.timestamps", tooltip="show or hide when each line was written"),
    Binding("T", "log_window", "Window", id="log.window",
            tooltip="show all the log, the last 5 minutes or the last hour"),
    Binding("slash", "log_search", "Search", id="log.search",
            tooltip="find a text in the log (on the host); every match on screen is highlighted"),
    Binding("n", "log_next", "Next", id="log.next", tooltip="the next line holding the search text"),
    Binding("N", "log_previous", "Prev", id="log.previous", tooltip="the previous line holding the search text"),
    Binding("g", "log_start", "Start", id="log.start", tooltip="jump to the first line of the window"),
    Binding("G", "log_end", "End", id="log.end", tooltip="jump to the last line"),
    Binding("s", "log_save", "Save…", id="log.save",
            tooltip="save the lines of the window to a new file; the path and count are reported"),
]


def shown_text(line: LogLine, stamps: bool) -> str:
    """A line as the view shows it (and saves it): plain, cut, tabs as spaces."""
    text = line.text
    cut = len(text) > LINE_LIMIT
    text = plain(text[:LINE_LIMIT]).replace("\t", "    ").replace("\n", " ")
    if cut:
        text += CUT
    if stamps:
        text = f"{plain(line.at or '-')}  {text}"
    return text


def rfc3339(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Streamed:
    """The log verbs answered from the lines followed since the view opened, for a host that
    pages no log: the same view, over the last STREAM_KEEP lines, with no times."""

    def __init__(self) -> None:
        self.lines: deque[LogLine] = deque(maxlen=STREAM_KEEP)
        self.total = 0

    def add(self, text: str) -> None:
        self.lines.append(LogLine(self.total, None, text))
        self.total += 1

    @property
    def first(self) -> int:
        return self.lines[0].n if self.lines else self.total

    async def log_page(self, name: str, start: int | None, count: int) -> LogPage:
        begin = max(self.total - count, self.first) if start is None else max(start, self.first)
        lines = list(itertools.islice(self.lines, begin - self.first, min(self.total, begin + count) - self.first))
        return LogPage(lines, self.first, self.total)

    async def log_find(self, name: str, text: str, start: int, backward: bool = False) -> int | None:
        needle = text.lower()
        order = range(min(start, self.total - 1), self.first - 1, -1) if backward else range(max(start, self.first),
                                                                                              self.total)
        return next((n for n in order if needle in self.lines[n - self.first].text.lower()), None)

    async def log_since(self, name: str, at: str) -> int:
        return self.first  # no line has a time: the window is all of them


def lines(count: int) -> str:
    """"1 line", "2,000 lines": how many, as a reader says it."""
    return f"{count:,} line" + ("" if count == 1 else "s")


class LogView(ScrollView, can_focus=True):
    """The lines of the window, one log line per row (wrapped when asked)."""

    COMPONENT_CLASSES = {"logview--stamp", "logview--match", "logview--current", "logview--waiting",
                         "logview--gone"}

    # Not watched at mount: opening reads the log's end once (`_open`).
    following: reactive[bool] = reactive(True, init=False)
    wrap: reactive[bool] = reactive(False, init=False)
    stamps: reactive[bool] = reactive(True, init=False)

    def __init__(self, client: HiveClient, agent: str, *, id: str | None = None):
        super().__init__(id=id)
        self.client, self.agent = client, agent
        # Where the log verbs go: the host, or the followed lines where the host pages no log.
        self.source: HiveClient | Streamed = client
        self.streamed: Streamed | None = None
        self.first = 0  # the oldest line the host still keeps
        self.total = 0  # the next line's number
        self.since = 0  # the window's first line by time (0: all)
        self.window = 0  # index into WINDOWS
        self.opened = False
        self.live = False  # the live stream has spoken once
        self.needle = ""
        self.match: int | None = None
        self.unseen = 0  # lines written while paused
        self.broken: str | None = None
        # Pages by index (line n is in page n // PAGE): each line as the host gave it, or None
        # where the host had nothing to give; a line not there is asked for.
        self._pages: OrderedDict[int, dict[int, LogLine | None]] = OrderedDict()
        self._wanted: list[int] = []
        self._loading = False
        self._tail_dirty = False
        self._tailing = False
        self._widest = 0
        self._layout_key: tuple | None = None
        self._layout: list[Strip] = []
        self._generation = 0

    # -- the window ------------------------------------------------------------------

    @property
    def start(self) -> int:
        """The window's first line: lines before the host's `first` are gone."""
        return max(self.first, self.since)

    @property
    def count(self) -> int:
        return max(0, self.total - self.start)

    @property
    def top(self) -> int:
        """The number of the first line on screen: following, the end is in view whatever
        the scroll offset says while a scrollbar comes or goes."""
        if self.following:
            return max(self.start, self.total - self.scrollable_content_region.height)
        return self.start + int(self.scroll_offset.y)

    def shown_lines(self) -> list[LogLine]:
        """The log lines on screen now, as far as they are loaded (for tests and the status)."""
        height = self.scrollable_content_region.height
        out = []
        for n in range(self.top, min(self.total, self.top + height)):
            line = self._line(n)
            if isinstance(line, LogLine):
                out.append(line)
        return out

    def loaded(self) -> list[LogLine]:
        """The lines held now, in order."""
        return sorted((x for p in self._pages.values() for x in p.values() if x is not None), key=lambda x: x.n)

    def held(self) -> int:
        """How many log lines the view holds in memory."""
        return sum(len(p) for p in self._pages.values())

    @property
    def idle(self) -> bool:
        """Open, followed, and nothing asked of the host that has not come back."""
        return self.opened and self.live and not (self._tailing or self._tail_dirty or self._loading)

    def status(self) -> str:
        name, _ = WINDOWS[self.window]
        parts = [lines(self.count) + (f" ({name})" if self.window else "")]
        if self.count:
            height = self.scrollable_content_region.height
            # Line numbers as the host counts them (from its first line ever), from 1.
            parts.append(f"showing {self.top + 1:,}–{min(self.total, self.top + max(height, 1)):,}")
        if self.opened and self.first > 0 and self.since <= self.first:
            parts.append(f"lines before {self.first + 1:,} rotated away")
        if self.following:
            parts.append("following")
        else:
            parts.append(f"paused, {self.unseen:,} new" if self.unseen else "paused")
        parts.append("wrap on" if self.wrap else "wrap off")
        if self.needle:
            where = f" at line {self.match + 1:,}" if self.match is not None else ""
            parts.append(f"search {self.needle!r}{where}")
        if self.streamed is not None:
            parts.append(f"this host pages no log: the last {STREAM_KEEP:,} lines followed, without times")
        if self.broken:
            parts.append(f"cannot be read: {self.broken}")
        return plain(" · ".join(parts))

    def on_mount(self) -> None:
        self.run_worker(self._open(), group="log", exit_on_error=False)

    async def _open(self) -> None:
        try:
            page = await self.source.log_page(self.agent, None, PAGE)
        except Unavailable:
            # Paged reads are not offered here (an older daemon, or the journal keeps the log):
            # the lines followed from now on are paged in memory instead.
            self.source = self.streamed = Streamed()
            self.stamps = False
            page = LogPage()
        self._take(page)
        self.opened = True
        self._resize()
        self._to_end()
        self._changed()
        # The live stream says that lines were written; they are read by page.
        backlog = STREAM_BACKLOG if self.streamed is not None else 1
        async with aclosing(self.client.follow_logs(self.agent, backlog)) as written:
            async for text in written:
                if self.streamed is not None:
                    self.streamed.add(text)
                self.live = True
                self._tail_dirty = True
                if not self._tailing:
                    self._tailing = True
                    self.run_worker(self._tail(), group="log-tail", exit_on_error=False)

    async def _tail(self) -> None:
        try:
            while self._tail_dirty:
                self._tail_dirty = False
                before = self.total
                page = await self.source.log_page(self.agent, None, PAGE)
                old_start = self.start
                self._take(page)
                self._resize()
                if self.following:
                    self._to_end()
                else:
                    self.unseen += max(0, self.total - before)
                    # The window's start moved on (rotation): keep the same lines in view.
                    moved = self.start - old_start
                    if moved:
                        self.scroll_to(y=max(0, self.scroll_offset.y - moved), animate=False)
                self._changed()
        finally:
            self._tailing = False

    def _take(self, page: LogPage) -> None:
        """Learn the log's ends from a page, and keep its lines."""
        self.first = max(self.first, page.first)
        self.total = max(self.total, page.total)
        for line in page.lines:
            if len(line.text) > LINE_LIMIT:
                # Held as shown: a page of huge lines costs what the screen can show of them.
                line = LogLine(line.n, line.at, line.text[:LINE_LIMIT + 1])
            self._widest = max(self._widest, len(line.text))
            self._page(line.n // PAGE)[line.n] = line

    def _page(self, index: int) -> dict[int, LogLine | None]:
        """The page `index`, made the most recently used; the least recently used goes."""
        lines = self._pages.get(index)
        if lines is None:
            lines = self._pages[index] = {}
            while len(self._pages) > CACHE_PAGES:
                self._pages.popitem(last=False)
        self._pages.move_to_end(index)
        return lines

    def _line(self, n: int) -> LogLine | str:
        """Line `n`, or "gone" (rotated away) or "waiting" (asked for, not here yet)."""
        lines = self._pages.get(n // PAGE)
        if lines is not None and n in lines:
            self._pages.move_to_end(n // PAGE)
            line = lines[n]
            return line if line is not None else "gone"
        if n < self.first:
            return "gone"
        self._want(n // PAGE)
        return "waiting"

    def _want(self, index: int) -> None:
        if self.broken is not None:
            return
        if index in self._wanted:
            self._wanted.remove(index)
        self._wanted.append(index)
        if not self._loading:
            self._loading = True
            self.call_later(self._start_loading)

    def _start_loading(self) -> None:
        self.run_worker(self._load(), group="log-pages", exit_on_error=False)

    async def _load(self) -> None:
        try:
            while self._wanted:
                # The latest asked first: what is on screen now, not what was scrolled past.
                index = self._wanted.pop()
                if not self._on_screen(index):
                    continue
                # From the page's first line not held yet: a page the host cut short (huge
                # lines) or that grew since is completed, never read again whole.
                held = self._pages.get(index, {})
                begin, end = max(index * PAGE, self.first), min((index + 1) * PAGE, self.total)
                start = next((n for n in range(begin, end) if n not in held), None)
                if start is None:
                    continue
                try:
                    page = await self.source.log_page(self.agent, start, end - start)
                except Exception as e:
                    self.broken = str(e) or type(e).__name__
                    self._wanted.clear()
                    self._changed()
                    raise
                self._take(page)
                if not any(x.n == start for x in page.lines) and start >= self.first:
                    # The host has nothing for it (it never answers less than one line
                    # otherwise): shown as gone rather than asked for again and again.
                    self._page(index)[start] = None
                self._resize()
                self._changed()
        finally:
            self._loading = False

    def _on_screen(self, index: int) -> bool:
        height = max(1, self.scrollable_content_region.height)
        lo, hi = self.top, self.top + height
        if self._at_end():
            lo = max(self.start, self.total - height)
        return index * PAGE < hi and (index + 1) * PAGE > lo

    # -- drawing -------------------------------------------------------------------

    def _resize(self) -> None:
        width = self.scrollable_content_region.width if self.wrap else \
            self._widest + (34 if self.stamps else 0) + len(CUT)
        self.virtual_size = Size(width, self.count)

    def _changed(self) -> None:
        self._generation += 1
        self.refresh()
        self.post_message(LogViewChanged())

    def _at_end(self) -> bool:
        return self.count > 0 and (self.following or self.scroll_offset.y >= self.max_scroll_y)

    def _keep_end(self) -> None:
        if self.following:
            self._to_end()

    def _to_end(self) -> None:
        self.scroll_to(y=max(0, self.count - self.scrollable_content_region.height), animate=False)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        # Scrolling up while following means reading back: pause. (A clamp lands on the end,
        # not above it, so a window that shrank does not pause.)
        if self.following and new < old and new < self.max_scroll_y:
            self.following = False
        if round(old) != round(new):
            self.post_message(LogViewChanged())

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and isinstance(event.worker.error, Exception):
            self.broken = self.broken or str(event.worker.error) or type(event.worker.error).__name__
            self._changed()
            self.post_message(LogViewFailed(event.worker))

    def on_resize(self) -> None:
        self._resize()
        if self.following:
            self._to_end()

    def watch_wrap(self) -> None:
        self._restyled()

    def watch_stamps(self) -> None:
        self._restyled()

    def _restyled(self) -> None:
        self._resize()
        # The horizontal scrollbar may come or go: the end stays in view, if it is still
        # followed once the screen is drawn (a key pressed meanwhile may have moved away).
        self.call_after_refresh(self._keep_end)
        self._changed()

    def watch_following(self, following: bool) -> None:
        if following:
            self.unseen = 0
            self._to_end()
        self._changed()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        height = self.scrollable_content_region.height
        key = (int(self.scroll_offset.x), int(self.scroll_offset.y), width, height, self.wrap, self.stamps,
               self.needle, self.match, self._generation, self.start, self.total)
        if key != self._layout_key:
            self._layout_key = key
            self._layout = self._lay_out(width, height)
        if y < len(self._layout):
            return self._layout[y]
        return Strip.blank(width, self.rich_style)

    def _lay_out(self, width: int, height: int) -> list[Strip]:
        if width <= 0 or height <= 0 or not self.count:
            return []
        top = self.top
        if not self.wrap:
            x = int(self.scroll_offset.x)
            return [self._row(n, x, width) for n in range(top, min(self.total, top + height))]
        if self._at_end():
            # At the end the last line sits at the bottom, however the lines above wrap.
            rows: list[Strip] = []
            n = self.total - 1
            while n >= self.start and len(rows) < height:
                rows[:0] = self._wrapped(n, width)
                n -= 1
            return rows[-height:]
        rows = []
        n = top
        while n < self.total and len(rows) < height:
            rows.extend(self._wrapped(n, width))
            n += 1
        return rows[:height]

    def _text(self, n: int) -> Text:
        line = self._line(n)
        if line == "gone":
            return Text("(rotated away)", style=self.get_component_rich_style("logview--gone"))
        if line == "waiting":
            return Text("…", style=self.get_component_rich_style("logview--waiting"))
        assert isinstance(line, LogLine)
        text = Text(shown_text(line, self.stamps))
        if self.stamps:
            text.stylize(self.get_component_rich_style("logview--stamp"), 0, len(plain(line.at or "-")))
        if self.needle:
            style = self.get_component_rich_style("logview--current" if n == self.match else "logview--match")
            for m in re.finditer(re.escape(self.needle), text.plain, re.IGNORECASE):
                text.stylize(style, m.start(), m.end())
        return text

    def _row(self, n: int, x: int, width: int) -> Strip:
        text = self._text(n)
        segments = list(text.render(self.app.console))
        strip = Strip(segments).crop(x, x + width)
        return strip.extend_cell_length(width, self.rich_style).apply_style(self.rich_style)

    def _wrapped(self, n: int, width: int) -> list[Strip]:
        text = self._text(n)
        lines = text.wrap(self.app.console, width, overflow="fold", no_wrap=False) or [Text("")]
        return [Strip(list(part.render(self.app.console)), part.cell_len)
                .extend_cell_length(width, self.rich_style).apply_style(self.rich_style)
                for part in lines]

    # -- what the keys do -----------------------------------------------------------

    def jump_start(self) -> None:
        self.following = False
        self.scroll_to(y=0, animate=False)

    def jump_end(self) -> None:
        self.unseen = 0
        self._to_end()
        self._changed()

    def show_line(self, n: int) -> None:
        """Bring line `n` into view, a third of the way down."""
        height = self.scrollable_content_region.height
        self.scroll_to(y=max(0, n - self.start - height // 3), animate=False)

    async def set_window(self, window: int) -> None:
        """Show only the lines of WINDOWS[window], asking the host where that begins."""
        _, span = WINDOWS[window]
        since = 0 if span is None else await self.source.log_since(
            self.agent, rfc3339(datetime.now(timezone.utc) - span))
        self.window, self.since = window, since
        if self.match is not None and self.match < self.start:
            self.match = None
        self._resize()
        self._to_end()
        self._changed()

    def search_for(self, text: str) -> None:
        """Highlight `text` wherever it is on screen (nothing, when empty); no match is current yet."""
        self.needle, self.match = text, None
        self._changed()

    async def find(self, backward: bool = False) -> int | None:
        """The next (previous) line holding the search text, from the current match or the
        screen's top; it becomes the current match. None when no line in the window holds it."""
        if not self.needle:
            return None
        if self.match is None:
            origin = self.top if not backward else self.top + self.scrollable_content_region.height - 1
        else:
            origin = self.match + (-1 if backward else 1)
        if origin < self.start and backward:
            return None
        found = await self.source.log_find(self.agent, self.needle, max(origin, self.start), backward)
        if found is None or found < self.start:
            return None
        self.following = False
        self.match = found
        self.show_line(found)
        self._changed()
        return found

    async def save(self, path: Path) -> int:
        """Write the window's lines to `path` (a new file: an existing one is refused), page by
        page as they are shown; the count written."""
        start, end, stamps = self.start, self.total, self.stamps
        written = 0
        handle = await asyncio.to_thread(path.open, "x", encoding="utf-8")
        try:
            n = start
            while n < end:
                page = await self.source.log_page(self.agent, n, min(PAGE, end - n))
                lines = [x for x in page.lines if n <= x.n < end]
                if not lines:
                    if page.first > n:
                        n = page.first  # rotated away while saving: the rest is still written
                        continue
                    break
                await asyncio.to_thread(handle.write, "".join(shown_text(x, stamps) + "\n" for x in lines))
                written += len(lines)
                n = lines[-1].n + 1
        finally:
            await asyncio.to_thread(handle.close)
        return written


class LogViewChanged(Message):
    """The view's state changed: its status line is written again."""

    def can_replace(self, message: Message) -> bool:
        # One status line for a burst of scrolling.
        return isinstance(message, LogViewChanged)


class LogViewFailed(Message):
    """A read of the log failed (a worker's state does not bubble; this does)."""

    def __init__(self, worker: Worker):
        super().__init__()
        self.worker = worker
