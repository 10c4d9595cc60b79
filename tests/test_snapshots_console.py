"""How the console's changed screens look, pinned: a kept agent's dim row, the
detail pane with no request, the focused requests pane, a dropped link.

Reviewed as SVGs (pytest --snapshot-report) before --snapshot-update."""

from __future__ import annotations

from typing import Any

from hive_tui.app import HiveApp
from hive_tui.client.base import Feed, LinkState

from .kept import KeptClient
from .scripted import HOSTS, NOW, ScriptedClient
from .test_snapshots import SIZE, settled


def app(client) -> HiveApp:
    async def connect(host):
        return client

    return HiveApp(connect, hosts=HOSTS, now=lambda: NOW, pulse=False)


class NoRequests(ScriptedClient):
    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        answer = await super().request(message)
        return {**answer, "approvals": []} if message["cmd"] in ("pending", "approvals") else answer


class Droppable(ScriptedClient):
    """A feed the test can push into, as a link that drops."""

    def feed(self) -> Feed:
        self.pushed = Feed(lambda feed: (lambda: None))
        return self.pushed


async def settled_empty(pilot) -> None:
    while pilot.app.link != "live" or pilot.app.diff.shown == "":
        await pilot.pause(0.05)
    await pilot.pause()


def test_a_kept_agent(snap_compare):
    # The cursor stays on atlas: kestrel's dim row is drawn as it is, not as selected.
    assert snap_compare(app(KeptClient()), terminal_size=SIZE, run_before=settled)


def test_no_pending_requests(snap_compare):
    assert snap_compare(app(NoRequests()), terminal_size=SIZE, run_before=settled_empty)


def test_requests_pane_focused(snap_compare):
    assert snap_compare(app(ScriptedClient()), terminal_size=SIZE, run_before=settled, press=["tab"])


def test_link_dropped(snap_compare):
    client = Droppable()

    async def dropped(pilot):
        await settled(pilot)
        client.pushed.put(LinkState(False, "lost unix:/run/hive-tui/host.sock; reconnecting"))
        while not pilot.app.link.startswith("reconnecting"):
            await pilot.pause(0.05)
        await pilot.pause()

    assert snap_compare(app(client), terminal_size=SIZE, run_before=dropped)
