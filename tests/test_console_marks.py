"""Marks and bulk actions in the single-host view, driven by keys against a
real `hive-tui serve` over a Unix socket (and the scripted hive for a row
whose repos are kept)."""

from __future__ import annotations

from textual.command import CommandList

from hive_tui.app import HiveApp
from hive_tui.client.connect import open_client
from hive_tui.client.stream import UnixClient
from hive_tui.config import Host
from hive_tui.widgets.confirm import ConfirmModal

from .helpers import until
from .kept import KeptClient
from .scripted import NOW
from .serving import run_async

SIZE = (160, 48)


def notes(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


def found(app, text: str) -> bool:
    """The command palette's first entry is `text`."""
    lists = app.screen.query(CommandList)
    return bool(lists) and lists.first().option_count > 0 and \
        lists.first().get_option_at_index(0).prompt.plain.startswith(text)


def progress(app) -> str:
    return str(app.progress.render())


def single_host(sock, **kw) -> HiveApp:
    host = Host("here", "unix", socket=str(sock), **kw)

    async def connect(h):
        return await open_client(h, redial_for=0)

    return HiveApp(connect, hosts=[host], host=host)


def test_two_marked_agents_stop_with_one_key(served):
    async def scenario():
        app = single_host(served.sock)
        async with app.run_test(size=SIZE) as pilot:
            table = app.containers
            await until(pilot, lambda: app.link == "live" and table.row_count == 2
                        and all(r is not None and r.running for r in table.rows_by_name.values()),
                        what="the console, both agents running")
            table.focus()
            table.move_cursor(row=0)
            # Space marks and moves down a row: twice marks both.
            await pilot.press("space", "space")
            assert table.marks == {"alpha", "beta"}
            assert all("◆" in str(table.get_cell(n, "agent")) for n in ("alpha", "beta"))
            assert "2 marked: s x r b p act on them all; Escape clears" in progress(app)
            # Destroy stays one agent at a time: refused, no dialog.
            await pilot.press("d")
            assert any("destroy acts on one agent at a time: 2 marked" in n for n in notes(app))
            assert not isinstance(app.screen, ConfirmModal)
            await pilot.press("x")
            await until(pilot, lambda: "stop: 2/2 done" in progress(app), what="the bulk stop to end")
            await until(pilot, lambda: not any(r.running for r in table.rows_by_name.values()),
                        what="both rows pushed stopped")
            assert all("stopped" in str(table.get_cell(n, "agent")) for n in ("alpha", "beta"))
            assert any("stop: 2/2 done" in n for n in notes(app))
            # Done ones are unmarked, and so is the row's glyph.
            assert table.marks == set()
            assert not any("◆" in str(table.get_cell(n, "agent")) for n in ("alpha", "beta"))

    run_async(scenario(), timeout=180)
    rows = {r.name: r for r in run_async(UnixClient(str(served.sock)).status())}
    assert not rows["alpha"].running and not rows["beta"].running


def test_escape_clears_marks_and_a_read_only_host_marks_nothing(served):
    async def scenario():
        app = single_host(served.sock)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.link == "live" and app.containers.row_count == 2, what="the console")
            app.containers.focus()
            app.containers.move_cursor(row=0)
            await pilot.press("space")
            assert app.containers.marks == {"alpha"}
            await pilot.press("escape")
            assert app.containers.marks == set() and app.progress.has_class("hidden")
        app = single_host(served.sock, read_only=True)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.link == "live" and app.containers.row_count == 2, what="the console")
            app.containers.focus()
            app.containers.move_cursor(row=0)
            await pilot.press("space")
            await until(pilot, lambda: any("READ-ONLY: mark is not sent" in n for n in notes(app)),
                        what="the refusal")
            assert app.containers.marks == set()

    run_async(scenario(), timeout=180)


async def test_a_kept_row_cannot_be_marked():
    async def connect(host):
        return KeptClient()

    async with HiveApp(connect, now=lambda: NOW, pulse=False).run_test(size=SIZE) as pilot:
        app = pilot.app
        table = app.containers
        await until(pilot, lambda: app.link == "live" and "kestrel" in table.rows, what="the console")
        table.focus()
        table.move_cursor(row=table.get_row_index("kestrel"))
        await pilot.press("space")
        await until(pilot, lambda: any("kestrel is destroyed, its repos kept: it cannot be marked" in n
                                       for n in notes(app)), what="the refusal")
        assert table.marks == set()


async def test_the_palette_marks_the_selected_agent():
    async def connect(host):
        return KeptClient()

    async with HiveApp(connect, now=lambda: NOW, pulse=False).run_test(size=SIZE) as pilot:
        app = pilot.app
        table = app.containers
        await until(pilot, lambda: app.link == "live" and "atlas" in table.rows, what="the console")
        table.focus()
        table.move_cursor(row=table.get_row_index("atlas"))
        await pilot.press("ctrl+p", *"Mark atlas")
        await until(pilot, lambda: found(app, "Mark atlas"), what="the palette's entry")
        await pilot.press("enter")
        await until(pilot, lambda: table.marks == {"atlas"}, what="atlas marked")
        assert "1 marked" in progress(app)
