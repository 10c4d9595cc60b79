"""The console on a genuine hyperhive host: what its daemon lacks (actions in
flight) is left out, not shown as a failed connection; its rows, requests and
pause work."""

from __future__ import annotations

import asyncio

import pytest

from hive_tui.app import HiveApp
from hive_tui.client.stream import UnixClient

from .helpers import until
from .hyperhive_daemon import sample_daemon

SIZE = (160, 48)


@pytest.mark.parametrize("version0", [False, True], ids=["v1", "v0"])
def test_the_console_on_a_hyperhive_host(tmp_path, version0):
    with sample_daemon(tmp_path / "hh.sock", version0=version0) as daemon:

        async def connect(host):
            return UnixClient(str(daemon.sock))

        async def scenario():
            app = HiveApp(connect)
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: app.link == "live" and app.containers.row_count == 3,
                            what="the console to connect")
                app.containers.focus()
                app.containers.move_cursor(row=0)
                await pilot.press("p")
                await until(pilot, lambda: daemon.agents["north"].paused, what="north to be paused")

        asyncio.run(asyncio.wait_for(scenario(), 120))
        assert "set_paused" in daemon.received and "transients" not in daemon.received
