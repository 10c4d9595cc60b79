"""Hosts that answer from fixed data, for snapshots of the all-hosts view:
one live host with an accent, one read-only, one of hyperhive's shape (no
rebuild, destroy or history), one whose link dropped, one whose key was
refused and one nobody serves. Every link state is pinned: a screenshot can
only be compared if nothing on it moves (the clock included)."""

from __future__ import annotations

import dataclasses
from typing import Any

from hive_tui.app import HiveApp
from hive_tui.client.base import Feed, HiveClient, HostKeyRefused, LinkState
from hive_tui.client.fleet import LIVE
from hive_tui.client.stream import Unreachable
from hive_tui.config import Host
from hive_tui.errors import HiveError
from hive_tui.models import Approval
from hive_tui.widgets.fleet import FleetScreen

from .scripted import NOW, row

# The fixed clock the header lines count down on: every waiting host's next try is due 7 s after it.
CLOCK = 1_800_000_000.0
FINGERPRINT = "SHA256:q0mCzCbl0pT3fK3F0r8xH6m0o7f3pQ9V7p2LxJ4g0Yc"

HOSTS = [
    Host("prod", "ssh", socket="/run/hive-tui/host.sock", user="ops", hostname="prod.example.net", accent="red"),
    Host("staging", "unix", socket="/run/hive-tui/staging.sock", read_only=True, accent="#2e8b57"),
    Host("hh", "unix", socket="/run/hyperhive/host.sock"),
    Host("lab", "unix", socket="/run/hive-tui/lab.sock"),
    Host("edge", "ssh", socket="/run/hive-tui/host.sock", user="ops", hostname="edge.example.net"),
    Host("gone", "unix", socket="/run/hive-tui/gone.sock"),
]

ROWS = {
    "prod": [row("atlas", active_model="opus", status_text="triaging issues"),
             row("bramble", running=False, failed=True, status_text=None),
             row("cinder", needs_login=True, paused=True)],
    "staging": [row("dune", status_text="trying the new model"), row("echo", transient="Rebuilding")],
    "hh": [row("north", deployed_sha=None, active_model=None, status_text="north at work"),
           row("west", running=False, deployed_sha=None, active_model=None, status_text=None)],
    "lab": [row("fjord", status_text="last seen before the link dropped")],
}
APPROVALS = {
    "prod": [Approval(4, "atlas", "apply_commit", "main", "a" * 40, "2026-11-26T11:50:00Z",
                      description="atlas: move to the larger model").to_wire()],
    "staging": [Approval(9, "dune", "spawn", requested_at="2026-11-26T11:40:00Z",
                         description="a fifth agent").to_wire()],
    "hh": [Approval(1, "north", "merge_config_pr", "17", requested_at="2026-11-26T11:55:00Z").to_wire()],
}


class HostClient(HiveClient):
    """One scripted host; `lab` loses its link right after its first read."""

    def __init__(self, host: Host):
        self.host = host
        self.label = host.name
        self.read_only = host.read_only

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        cmd = message["cmd"]
        if cmd == "capabilities":
            if self.host.name == "hh":
                # hyperhive's daemon: it offers its own table of verbs, and no more.
                raise HiveError("unknown command")
            return {"version": 1, "ok": True}
        answers = {"agent_status": {"agent_statuses": ROWS.get(self.host.name, [])},
                   "pending": {"approvals": APPROVALS.get(self.host.name, [])}}
        return {"version": 1, "ok": True, **answers.get(cmd, {})}

    def feed(self) -> Feed:
        def start(feed: Feed):
            if self.host.name == "lab":
                feed.put(LinkState(connected=False, detail="connection reset by peer"))
            return lambda: None

        return Feed(start)

    async def follow_logs(self, name: str, lines: int = 200):
        yield f"{name} started"


async def open_scripted(host: Host) -> HiveClient:
    if host.name == "edge":
        raise HostKeyRefused(f"the host key of edge.example.net is not known: it offers {FINGERPRINT}. "
                             f"Refusing to connect.")
    if host.name == "gone":
        raise Unreachable("cannot reach unix:/run/hive-tui/gone.sock: [Errno 2] No such file or directory")
    return HostClient(host)


class FleetApp(HiveApp):
    """The console opened on every scripted host, with the clock held still."""

    def __init__(self, read_only: bool = False):
        async def connect(host):
            return await open_scripted(host)

        super().__init__(connect, hosts=HOSTS, open_host=open_scripted, all_hosts=True, now=lambda: NOW,
                         pulse=False, read_only=read_only)

    def action_fleet(self) -> None:
        # An hour's backoff: no link tries again while the screenshot is taken.
        self.push_screen(FleetScreen(self.hosts, open_scripted, read_only=self.read_only, now=self.now,
                                     clock=lambda: CLOCK, backoff_first=3600.0))


async def settled(pilot) -> None:
    """Every link in the state it stays in, each waiting one due 7 s from the fixed clock."""
    app = pilot.app
    while not isinstance(app.screen, FleetScreen):
        await pilot.pause(0.05)
    screen = app.screen
    links = screen.fleet.links
    waiting = ("lab", "edge", "gone")
    while not (all(links[h].link.state == LIVE for h in ("prod", "staging", "hh"))
               and all(links[h].link.retry_at is not None for h in waiting)):
        await pilot.pause(0.05)
    for name in waiting:
        links[name].link = dataclasses.replace(links[name].link, retry_at=CLOCK + 7)
    screen.refresh_link_clock()
    screen.table.move_cursor(row=1)
    # The queue's columns are measured when the app is next idle.
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()
