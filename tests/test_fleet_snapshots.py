"""How the all-hosts view looks, pinned: every link state a header line can
show (live, reconnecting, host key refused, unreachable), a read-only host,
accents, marked rows; and the single-host view's READ-ONLY title and accent.

A changed snapshot is reviewed as an SVG (pytest --snapshot-report) before it
is accepted with --snapshot-update; never regenerated blindly."""

from __future__ import annotations

from hive_tui.app import HiveApp

from .fleet_scripted import HOSTS, FleetApp, settled
from .scripted import NOW, ScriptedClient

SIZE = (150, 40)


def test_every_host(snap_compare):
    assert snap_compare(FleetApp(), terminal_size=SIZE, run_before=settled)


def test_every_host_marked(snap_compare):
    async def marked(pilot):
        await settled(pilot)
        screen = pilot.app.screen
        for host, agent in (("prod", "atlas"), ("prod", "cinder"), ("hh", "north")):
            screen.go_to(host, agent)
            await pilot.press("space")
        await pilot.pause()

    assert snap_compare(FleetApp(), terminal_size=SIZE, run_before=marked)


def test_every_host_read_only_session(snap_compare):
    assert snap_compare(FleetApp(read_only=True), terminal_size=SIZE, run_before=settled)


def single(host) -> HiveApp:
    async def connect(h):
        return ScriptedClient()

    return HiveApp(connect, hosts=HOSTS, host=host, now=lambda: NOW, pulse=False)


async def live(pilot) -> None:
    await pilot.pause()
    while pilot.app.link != "live":
        await pilot.pause(0.05)
    await pilot.pause()


def test_one_host_read_only_with_its_accent(snap_compare):
    # staging: read_only, accent #2e8b57.
    assert snap_compare(single(HOSTS[1]), terminal_size=SIZE, run_before=live)


def test_one_host_with_a_red_accent(snap_compare):
    assert snap_compare(single(HOSTS[0]), terminal_size=SIZE, run_before=live)
