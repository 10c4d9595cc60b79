"""The agent's log viewer: lazy pages, follow and pause, wrap, timestamps, the
time window, search, save; driven by keys through Pilot."""

from __future__ import annotations

import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from textual.app import App
from textual.binding import Binding
from textual.widgets import Input, TabbedContent

from hive_tui.app import HiveApp, stylesheet
from hive_tui.client.base import Unavailable
from hive_tui.commands import HiveCommands
from hive_tui.client.embedded import EmbeddedClient
from hive_tui.host.engine import Engine
from hive_tui.widgets.history import HistoryScreen
from hive_tui.widgets.logview import CACHE_PAGES, PAGE, LogView, rfc3339
from hive_tui.widgets.prompt import PromptModal

from .helpers import agent_files, stop_all, until, wait_for, write_stamped_log
from .logdouble import LogDouble

SIZE = (120, 30)
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z  ")


class LogApp(App):
    """The console's styles, and the log screen of `client` when it is given."""

    CSS_PATH = [stylesheet(), stylesheet("logview.tcss")]

    def __init__(self, client=None):
        super().__init__()
        self.client = client

    def on_mount(self) -> None:
        if self.client is not None:
            self.push_screen(HistoryScreen(self.client, "beta", "log"))


def stamp(n: int) -> str:
    return f"2026-11-28T10:{n // 60 % 60:02d}:{n % 60:02d}Z"


def rows(view: LogView) -> list[str]:
    """What the view shows, row by row."""
    return [view.render_line(y).text.rstrip() for y in range(view.scrollable_content_region.height)]


async def opened(pilot, client) -> LogView:
    app = pilot.app
    app.push_screen(HistoryScreen(client, "beta", "log"))
    await until(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.viewer.idle, what="the log")
    view = app.screen.viewer
    await until(pilot, lambda: len(view.shown_lines()) == view.scrollable_content_region.height
                or len(view.shown_lines()) == view.count, what="the first screen")
    return view


async def settled(pilot, view: LogView) -> None:
    """Until every line on screen has arrived."""
    await until(pilot, lambda: view.idle and "…" not in rows(view), what="the lines on screen")


async def test_a_long_log_opens_at_its_end_and_jumps_to_either_end():
    client = LogDouble(200_000, lambda n: (stamp(n), f"line {n}"))
    async with LogApp(None).run_test(size=SIZE) as pilot:
        view = await opened(pilot, client)
        height = view.scrollable_content_region.height
        assert [x.n for x in view.shown_lines()] == list(range(200_000 - height, 200_000))
        assert rows(view)[-1].endswith("line 199999")
        await pilot.press("g")
        await settled(pilot, view)
        assert [x.n for x in view.shown_lines()] == list(range(height))
        assert rows(view)[0].endswith("line 0")
        await pilot.press("G")
        await settled(pilot, view)
        assert rows(view)[-1].endswith("line 199999")
        # Only pages on screen were read: never the log.
        assert all(count <= PAGE for _, count in client.asked) and len(client.asked) < 10


async def test_the_view_holds_a_bounded_number_of_lines():
    client = LogDouble(100_000, lambda n: (stamp(n), f"line {n}"))
    async with LogApp(None).run_test(size=SIZE) as pilot:
        view = await opened(pilot, client)
        for target in range(0, 100_000, 2_500):
            view.show_line(target)
            await settled(pilot, view)
            assert view.held() <= CACHE_PAGES * PAGE
        assert view.held() <= CACHE_PAGES * PAGE


async def test_hostile_text_is_shown_as_text():
    hostile = "\x1b]0;pwned\x07 [b]bold?[/b] \x9b31m\u202eevil " + "x" * 100_000
    client = LogDouble(3, lambda n: (stamp(n), hostile))
    async with LogApp(None).run_test(size=SIZE) as pilot:
        view = await opened(pilot, client)
        shown = rows(view)[0]
        assert "\\x1b]0;pwned\\x07 [b]bold?[/b] \\x9b31m\\u202eevil" in shown
        assert "\x1b" not in "".join(rows(view)) and "\u202e" not in "".join(rows(view))
        # A huge line is cut: its width is bounded, whatever the agent wrote.
        assert view.virtual_size.width < 5_000


async def test_rotated_lines_are_gone_and_the_window_starts_after_them():
    client = LogDouble(1_000, lambda n: (stamp(n), f"line {n}"), first=400)
    async with LogApp(None).run_test(size=SIZE) as pilot:
        view = await opened(pilot, client)
        assert view.start == 400 and view.count == 600
        await pilot.press("g")
        await settled(pilot, view)
        assert rows(view)[0].endswith("line 400")
        assert "lines before 401 rotated away" in view.status()


def styled(view: LogView, row: int, component: str) -> str:
    """The text of row `row` drawn in the style of `component` (a highlight)."""
    style = view.get_component_rich_style(component)
    return "".join(s.text for s in list(view.render_line(row))
                   if s.style is not None and s.style.bgcolor == style.bgcolor)


def needle_line(n: int) -> tuple[str, str]:
    return stamp(n), (f"line {n} NeedLe here" if n in (1_000, 5_000, 9_000) else f"line {n}")


async def test_search_next_and_previous_land_on_the_matches_highlighted():
    client = LogDouble(10_000, needle_line)
    async with LogApp(None).run_test(size=SIZE) as pilot:
        view = await opened(pilot, client)
        await pilot.press("g")
        await settled(pilot, view)
        await pilot.press("slash", *"needle", "enter")
        await until(pilot, lambda: view.match == 1_000, what="the first match")
        await settled(pilot, view)
        row = next(i for i, x in enumerate(view.shown_lines()) if x.n == 1_000)
        assert styled(view, row, "logview--current") == "NeedLe"
        await pilot.press("n")
        await until(pilot, lambda: view.match == 5_000, what="the next match")
        await pilot.press("n")
        await until(pilot, lambda: view.match == 9_000, what="the last match")
        await pilot.press("n")
        await until(pilot, lambda: any("no line after" in str(n.message) for n in pilot.app._notifications),
                    what="no more matches")
        assert view.match == 9_000
        await pilot.press("N")
        await until(pilot, lambda: view.match == 5_000, what="the previous match")
        await settled(pilot, view)
        assert "line 5000 NeedLe here" in rows(view)[next(i for i, x in enumerate(view.shown_lines()) if x.n == 5_000)]
        assert view.following is False


async def test_every_match_on_screen_is_highlighted():
    client = LogDouble(50, lambda n: (stamp(n), f"ab {n} ab"))
    async with LogApp(None).run_test(size=SIZE) as pilot:
        view = await opened(pilot, client)
        await pilot.press("slash", *"ab", "enter")
        await until(pilot, lambda: view.match is not None, what="a match")
        await settled(pilot, view)
        current = next(i for i, x in enumerate(view.shown_lines()) if x.n == view.match)
        for i in range(len(view.shown_lines())):
            component = "logview--current" if i == current else "logview--match"
            assert styled(view, i, component) == "abab", i


def recent(now: datetime, count: int, old: int):
    """`count` lines: the first `old` written two hours ago, then one a second up to `now`."""
    def make(n: int) -> tuple[str, str]:
        at = now - timedelta(hours=2) if n < old else now - timedelta(seconds=count - n)
        return rfc3339(at), f"line {n}"
    return make


async def test_the_time_window_hides_older_lines():
    now = datetime.now(timezone.utc)
    # 1,000 lines from two hours ago, then one a second for the last 1,000 seconds.
    client = LogDouble(2_000, recent(now, 2_000, 1_000))
    async with LogApp(None).run_test(size=SIZE) as pilot:
        view = await opened(pilot, client)
        assert view.count == 2_000
        await pilot.press("T")
        await until(pilot, lambda: view.window == 1, what="the last 5 minutes")
        assert 290 <= view.count <= 310 and view.start >= 1_690
        await pilot.press("g")
        await settled(pilot, view)
        first = view.shown_lines()[0]
        assert first.n == view.start
        assert datetime.fromisoformat(first.at.replace("Z", "+00:00")) >= now - timedelta(minutes=5, seconds=5)
        await pilot.press("T")
        await until(pilot, lambda: view.window == 2, what="the last hour")
        assert view.count == 1_000
        await pilot.press("T")
        await until(pilot, lambda: view.window == 0, what="all of it")
        assert view.count == 2_000


async def test_follow_shows_new_lines_and_pause_holds():
    client = LogDouble(1_000, lambda n: (stamp(n), f"line {n}"))
    async with LogApp(None).run_test(size=SIZE) as pilot:
        view = await opened(pilot, client)
        client.write(stamp(0), "a new line")
        await until(pilot, lambda: rows(view)[-1].endswith("a new line"), what="the new line")
        await pilot.press("f")
        held = rows(view)
        client.write(stamp(0), "written while paused")
        await until(pilot, lambda: view.total == 1_002 and view.idle, what="the paused view to learn of it")
        assert rows(view) == held and "paused, 1 new" in view.status()
        await pilot.press("f")
        await until(pilot, lambda: rows(view)[-1].endswith("written while paused"), what="following again")
        assert "following" in view.status()


async def test_wrap_and_timestamps_change_the_screen():
    long = "word " * 60
    client = LogDouble(100, lambda n: (stamp(n), f"{n} {long}end"))
    async with LogApp(None).run_test(size=SIZE) as pilot:
        view = await opened(pilot, client)
        before = rows(view)
        assert before[-1].startswith(stamp(99)) and not before[-1].endswith("end")
        await pilot.press("t")
        await settled(pilot, view)
        assert rows(view)[-1].startswith("99 word")
        await pilot.press("w")
        await settled(pilot, view)
        wrapped = rows(view)
        # The last line, wrapped at the bottom: its end is on screen, the row above holds its start.
        assert wrapped[-1].endswith("end") and any(r.startswith("99 word") for r in wrapped[-4:])
        assert view.virtual_size.height == 100  # still scrolled by log line
        await pilot.press("w", "t")
        await settled(pilot, view)
        assert rows(view) == before


async def test_save_writes_the_window_and_refuses_an_existing_file(tmp_path):
    client = LogDouble(1_500, lambda n: (stamp(n), f"line {n} \x1b[31m"))
    path = tmp_path / "saved.txt"
    async with LogApp(None).run_test(size=SIZE) as pilot:
        view = await opened(pilot, client)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(pilot.app.screen, PromptModal), what="the path prompt")
        prompt = pilot.app.screen.query_one(Input)
        assert prompt.value.endswith(".txt") and "beta-log-" in prompt.value
        prompt.value = str(path)
        await pilot.press("enter")
        history = view.screen
        await until(pilot, lambda: history.saved is not None, what="the save")
        assert history.saved == (path, 1_500)
        assert any(f"saved 1,500 lines to {path}" in str(n.message) for n in pilot.app._notifications)
        saved = path.read_text().splitlines()
        assert saved == [f"{stamp(n)}  line {n} \\x1b[31m" for n in range(1_500)]
        # Saving again to the same file is refused; the file is left as it was.
        await pilot.press("s")
        await until(pilot, lambda: isinstance(pilot.app.screen, PromptModal), what="the path prompt")
        pilot.app.screen.query_one(Input).value = str(path)
        await pilot.press("enter")
        await until(pilot, lambda: any("exists" in str(n.message) for n in pilot.app._notifications),
                    what="the refusal")
        assert path.read_text().splitlines() == saved


async def test_scrolling_up_while_following_pauses():
    client = LogDouble(1_000, lambda n: (stamp(n), f"line {n}"))
    async with LogApp(None).run_test(size=SIZE) as pilot:
        view = await opened(pilot, client)
        last = view.shown_lines()[-1].n
        await pilot.press("up")
        await until(pilot, lambda: not view.following, what="the pause")
        await settled(pilot, view)
        assert view.shown_lines()[-1].n == last - 1
        client.write(stamp(0), "a new line")
        await until(pilot, lambda: view.total == 1_001 and view.idle, what="the new line to be counted")
        assert view.shown_lines()[-1].n == last - 1 and "paused, 1 new" in view.status()
        await pilot.press("G")
        await settled(pilot, view)
        assert rows(view)[-1].endswith("a new line")


def fixed_log() -> LogDouble:
    """A log whose screen is the same from run to run: for the snapshot."""
    hostile = "reads \x1b]0;title\x07 and [b]markup[/b] as text"
    lines = [f"step {n}: {'a needle in the log' if n % 7 == 0 else 'working'}" for n in range(300)]
    lines[296] = hostile
    return LogDouble(300, lambda n: (stamp(n), lines[n]), first=12)


def test_snapshot_of_the_log_viewer(snap_compare):
    async def searched(pilot) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, HistoryScreen) and pilot.app.screen.viewer.idle,
                    what="the log")
        view = pilot.app.screen.viewer
        await pilot.press("slash", *"needle", "enter")
        await until(pilot, lambda: view.match is not None, what="the match")
        await settled(pilot, view)

    assert snap_compare(LogApp(fixed_log()), terminal_size=(100, 24), run_before=searched)


# -- against the real engine: a log of a million lines --------------------------------------

MILLION = 1_000_000


@pytest.fixture(scope="module")
def million(tmp_path_factory) -> Path:
    """A million lines as the host writes them, two hours old: `line 0` .. `line 999999`,
    with `NeedLe` in lines 1,000, 500,000 and 999,000."""
    path = tmp_path_factory.mktemp("million") / "log"
    hits = {1_000, 500_000, 999_000}
    start = rfc3339(datetime.now(timezone.utc) - timedelta(hours=2))
    write_stamped_log(path, MILLION, start=start, every_ms=1,
                      text=lambda i: f"line {i} NeedLe here" if i in hits else f"line {i}")
    return path


@pytest.fixture
def real(tmp_path, million):
    """The engine with an agent, beta, whose log is a copy of the million lines; its client,
    and the log's path (to write more to it)."""
    engine = Engine(tmp_path / "hive", locker="builtin", runtime_options={"stop_grace": 2.0})
    try:
        engine.install_agent("beta", agent_files(run=["sh", "-c", "exit 0"]))
        folder = engine.state.container("beta")
        wait_for(lambda: (folder / "exit.json").exists(), what="beta to exit")
        log = folder / "log"
        log.unlink()
        shutil.copyfile(million, log)
        yield EmbeddedClient(engine), log
    finally:
        stop_all(engine)
        engine.close()


def append(log: Path, count: int, ago: timedelta, text) -> None:
    write_stamped_log(log, count, start=rfc3339(datetime.now(timezone.utc) - ago), every_ms=10, text=text)


async def test_a_million_line_log_opens_at_its_end_and_jumps(real):
    client, _ = real
    async with LogApp(None).run_test(size=SIZE) as pilot:
        view = await opened(pilot, client)
        height = view.scrollable_content_region.height
        assert view.count == MILLION
        assert [x.n for x in view.shown_lines()] == list(range(MILLION - height, MILLION))
        assert rows(view)[-1].endswith("  line 999999")
        await pilot.press("g")
        await settled(pilot, view)
        assert [x.n for x in view.shown_lines()] == list(range(height))
        assert rows(view)[0].endswith("  line 0")
        await pilot.press("G")
        await settled(pilot, view)
        assert rows(view)[-1].endswith("  line 999999")
        # Anywhere in the log, the view holds a bounded number of lines.
        for target in range(0, MILLION, 37_000):
            view.show_line(target)
            await settled(pilot, view)
            assert target in [x.n for x in view.shown_lines()] and view.held() <= CACHE_PAGES * PAGE


async def test_search_in_a_million_lines_lands_on_each_match(real):
    client, _ = real
    async with LogApp(None).run_test(size=SIZE) as pilot:
        view = await opened(pilot, client)
        await pilot.press("g")
        await settled(pilot, view)
        await pilot.press("slash", *"needle", "enter")
        await until(pilot, lambda: view.match == 1_000, what="the first match")
        await settled(pilot, view)
        at = next(i for i, x in enumerate(view.shown_lines()) if x.n == 1_000)
        assert styled(view, at, "logview--current") == "NeedLe"
        await pilot.press("n")
        await until(pilot, lambda: view.match == 500_000, what="the next match")
        await settled(pilot, view)
        at = next(i for i, x in enumerate(view.shown_lines()) if x.n == 500_000)
        assert rows(view)[at].endswith("line 500000 NeedLe here")
        assert styled(view, at, "logview--current") == "NeedLe"
        await pilot.press("n")
        await until(pilot, lambda: view.match == 999_000, what="the last match")
        await pilot.press("N", "N")
        await until(pilot, lambda: view.match == 1_000, what="back to the first")
        await pilot.press("N")
        await until(pilot, lambda: any("no line before" in str(n.message) for n in pilot.app._notifications),
                    what="no match before the first")
        assert view.match == 1_000


async def test_the_time_window_of_a_million_lines(real):
    client, log = real
    append(log, 50, timedelta(minutes=30), lambda i: f"half an hour ago {i}")
    append(log, 100, timedelta(seconds=60), lambda i: f"a minute ago {i}")
    async with LogApp(None).run_test(size=SIZE) as pilot:
        view = await opened(pilot, client)
        assert view.count == MILLION + 150
        await pilot.press("T")
        await until(pilot, lambda: view.window == 1, what="the last 5 minutes")
        assert view.count == 100 and view.start == MILLION + 50
        await pilot.press("g")
        await settled(pilot, view)
        shown = view.shown_lines()
        assert shown[0].text == "a minute ago 0" and all(x.text.startswith("a minute ago") for x in shown)
        assert rows(view)[0].endswith("a minute ago 0")
        await pilot.press("T")
        await until(pilot, lambda: view.window == 2, what="the last hour")
        assert view.count == 150
        await pilot.press("T")
        await until(pilot, lambda: view.window == 0, what="all of it")
        assert view.count == MILLION + 150


async def test_follow_and_pause_on_the_real_log(real):
    client, log = real
    async with LogApp(None).run_test(size=SIZE) as pilot:
        view = await opened(pilot, client)
        append(log, 1, timedelta(0), lambda i: "a new line")
        await until(pilot, lambda: rows(view)[-1].endswith("a new line"), what="the new line")
        await pilot.press("f")
        held = rows(view)
        append(log, 1, timedelta(0), lambda i: "written while paused")
        await until(pilot, lambda: view.total == MILLION + 2 and view.idle, what="the paused view to learn of it")
        assert rows(view) == held and "paused, 1 new" in view.status()
        await pilot.press("f")
        await until(pilot, lambda: rows(view)[-1].endswith("written while paused"), what="following again")


async def test_wrap_and_timestamps_on_the_real_log(real):
    client, log = real
    append(log, 1, timedelta(0), lambda i: "long " * 50 + "end")
    async with LogApp(None).run_test(size=SIZE) as pilot:
        view = await opened(pilot, client)
        await until(pilot, lambda: view.total == MILLION + 1 and "…" not in rows(view), what="the last line")
        before = rows(view)
        assert STAMP.match(before[-1]) and not before[-1].endswith("end")
        await pilot.press("t")
        await settled(pilot, view)
        assert rows(view)[-1].startswith("long long") and rows(view)[-2] == "line 999999"
        await pilot.press("w")
        await settled(pilot, view)
        wrapped = rows(view)
        # The long line takes the rows below the one before it, all of it on screen.
        before_it = wrapped.index("line 999999")
        assert len(wrapped) - before_it - 1 >= 2
        assert "".join(wrapped[before_it + 1:]).replace(" ", "") == "long" * 50 + "end"
        await pilot.press("w", "t")
        await settled(pilot, view)
        assert rows(view) == before


async def test_save_writes_the_window_of_the_real_log(real, tmp_path):
    client, log = real
    append(log, 120, timedelta(seconds=30), lambda i: f"recent {i} \x1b[31mred")
    path = tmp_path / "out" / "recent.txt"
    path.parent.mkdir()
    async with LogApp(None).run_test(size=SIZE) as pilot:
        view = await opened(pilot, client)
        await pilot.press("T", "t")
        await until(pilot, lambda: view.window == 1 and view.count == 120, what="the last 5 minutes")
        await pilot.press("s")
        await until(pilot, lambda: isinstance(pilot.app.screen, PromptModal), what="the path prompt")
        pilot.app.screen.query_one(Input).value = str(path)
        await pilot.press("enter")
        history = view.screen
        await until(pilot, lambda: history.saved is not None, what="the save")
        assert history.saved == (path, 120)
        assert any(f"saved 120 lines to {path}" in str(n.message) for n in pilot.app._notifications)
        assert path.read_text().splitlines() == [f"recent {i} \\x1b[31mred" for i in range(120)]


async def test_pages_of_huge_lines_cut_short_by_the_host_are_completed():
    huge = "h" * 200_000

    class Capped(LogDouble):
        async def log_page(self, name, start, count):
            # As the host does: a page holds no more than so many bytes of text.
            page = await super().log_page(name, start, count)
            page.lines = page.lines[:3]
            return page

    client = Capped(1_000, lambda n: (stamp(n), f"{n} {huge}"))
    async with LogApp(None).run_test(size=SIZE) as pilot:
        view = await opened(pilot, client)
        await pilot.press("g")
        await settled(pilot, view)
        assert [x.n for x in view.shown_lines()] == list(range(view.scrollable_content_region.height))
        # What is held of each line is what can be shown of it.
        assert all(len(x.text) <= 4_001 for x in view.loaded())
        assert rows(view)[0].startswith(f"{stamp(0)}  0 hhh")


async def test_the_logs_key_opens_the_agents_log_from_the_container_list(real):
    client, _ = real

    async def connect(host):
        return client

    async with HiveApp(connect).run_test(size=(160, 48)) as pilot:
        app = pilot.app
        await until(pilot, lambda: app.link == "live" and app.containers.row_count == 1, what="the console")
        app.containers.focus()
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="the log screen")
        screen = app.screen
        assert screen.query_one(TabbedContent).active == "log"
        await until(pilot, lambda: screen.viewer.idle and screen.viewer.has_focus, what="the log")
        await until(pilot, lambda: rows(screen.viewer)[-1].endswith("line 999999"), what="the last line")
        # The log's keys are the screen's, each with an id, in the footer there.
        ids = {b.id for b in screen.BINDINGS if isinstance(b, Binding)}
        assert {"log.follow", "log.wrap", "log.timestamps", "log.window", "log.search", "log.next",
                "log.previous", "log.start", "log.end", "log.save"} <= ids
        shown = {b.binding.id for b in screen.active_bindings.values() if b.binding.show}
        assert "log.follow" in shown and "log.save" in shown
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HistoryScreen), what="back")
        # And in the palette, by name.
        entries = [text for text, _, _ in HiveCommands(app.screen)._entries()]
        assert "Logs beta" in entries


async def test_a_host_that_pages_no_log_shows_the_lines_followed():
    class Journal(LogDouble):
        """As a host whose journal keeps the logs: the log is followed, never paged."""

        async def log_page(self, name, start, count):
            raise Unavailable("reading the log by page is not available on this host")

    client = Journal(2_000, lambda n: (None, f"journal line {n}"))
    async with LogApp(None).run_test(size=SIZE) as pilot:
        app = pilot.app
        app.push_screen(HistoryScreen(client, "beta", "log"))
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.viewer.total == 500,
                    what="the lines followed")
        view = app.screen.viewer
        await settled(pilot, view)
        assert rows(view)[-1] == "journal line 1999" and "this host pages no log" in view.status()
        client.write(None, "a new journal line")
        await until(pilot, lambda: rows(view)[-1] == "a new journal line", what="the new line")
        await pilot.press("slash", *"line 1700", "enter")
        await until(pilot, lambda: view.match == 200, what="the match, among the lines followed")


async def test_escape_leaves_the_search_field_then_the_screen():
    client = LogDouble(100, lambda n: (stamp(n), f"line {n}"))
    async with LogApp(None).run_test(size=SIZE) as pilot:
        view = await opened(pilot, client)
        screen = pilot.app.screen
        field = screen.query_one("#log-search", Input)
        await pilot.press("slash")
        await until(pilot, lambda: field.has_focus, what="the search field")
        await pilot.press("escape")
        await until(pilot, lambda: view.has_focus and field.has_class("hidden"), what="back to the log")
        assert pilot.app.screen is screen
        await pilot.press("escape")
        await until(pilot, lambda: pilot.app.screen is not screen, what="off the log screen")


async def test_a_jump_right_after_a_toggle_stays_where_it_jumped():
    client = LogDouble(10_000, lambda n: (stamp(n), f"line {n}"))
    async with LogApp(None).run_test(size=SIZE) as pilot:
        view = await opened(pilot, client)
        # In one turn, before the screen is drawn again: timestamps off, then the first line.
        view.stamps = False
        view.jump_start()
        await pilot.pause()
        await settled(pilot, view)
        assert view.shown_lines()[0].n == 0 and rows(view)[0] == "line 0"
