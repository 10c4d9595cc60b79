"""How the console looks, pinned: the main screen with a row in each transient
state and each badge, the modals, help and hosts, a light theme, and the
main screen in a default (80×24) and a large (200×50) terminal.

A changed snapshot is reviewed as an SVG (pytest --snapshot-report) before it
is accepted with --snapshot-update; never regenerated blindly."""

from __future__ import annotations

from hive_tui.app import HiveApp

from .scripted import HOSTS, NOW, ScriptedClient

SIZE = (150, 40)


def app() -> HiveApp:
    async def connect(host):
        return ScriptedClient()

    return HiveApp(connect, hosts=HOSTS, now=lambda: NOW, pulse=False)


async def settled(pilot) -> None:
    await pilot.pause()
    while pilot.app.link != "live" or pilot.app.diff.shown == "":
        await pilot.pause(0.05)
    await pilot.pause()


def test_main_screen(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=settled)


def test_main_screen_in_a_default_terminal(snap_compare):
    """80×24: the panes stack, no column is squeezed, the idle deploy log takes no room."""
    assert snap_compare(app(), terminal_size=(80, 24), run_before=settled)


def test_main_screen_in_a_large_terminal(snap_compare):
    """200×50: side by side, the requests' descriptions use the room there is."""
    assert snap_compare(app(), terminal_size=(200, 50), run_before=settled)


def test_main_screen_light(snap_compare):
    async def light(pilot):
        pilot.app.theme = "textual-light"
        await settled(pilot)

    assert snap_compare(app(), terminal_size=SIZE, run_before=light)


def test_deny_prompt(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=settled, press=["tab", "n", *"not now"])


def test_destroy_confirmation(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=settled, press=["d"])


def test_purge_confirmation(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=settled, press=["D", *"atl"])


def test_help(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=settled, press=["question_mark"])


def test_hosts(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=settled, press=["H"])


def test_marked_rows(snap_compare):
    """atlas and cinder marked: a glyph before each name, and the line saying what the keys do."""
    assert snap_compare(app(), terminal_size=SIZE, run_before=settled, press=["space", "down", "space"])
