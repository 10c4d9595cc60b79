"""The console's fleet figures (run from benchmarks/fleet.py): the all-hosts
view on 20 hosts x 50 agents against the single-host view on one host of
1,000 agents, measured in the same run.

The console runs under Textual's headless driver (`App.run_test`): the
whole app (its compositor, every widget, each host's link) but no terminal,
so that a figure is the console's and not the terminal emulator's. A frame
counts once the rows are in the screen's tables; Textual paints what
changed on its next refresh.

Resident memory is measured in a process of its own for each view
(`python -m benchmarks.fleetconsole rss ...`), so that nothing the benchmark
itself loaded counts.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from hive_tui.app import HiveApp
from hive_tui.client.base import HiveClient
from hive_tui.client.connect import open_client
from hive_tui.client.stream import UnixClient
from hive_tui.config import Host
from hive_tui.widgets.fleet import FleetScreen
from hive_tui.widgets.fleetrows import row_key

HERE = Path(__file__).resolve().parent
SIZE = (160, 48)
# How often a waiting figure looks again: well under the goals it is measured against.
POLL = 0.002


async def _opener(host: Host) -> HiveClient:
    return await open_client(host, redial_for=0)


async def _connect(host: Host | None) -> HiveClient:
    assert host is not None
    return await _opener(host)


async def _until(condition: Callable[[], bool], timeout: float = 300) -> float:
    """Wait for `condition`; returns when it was first seen (perf_counter).

    A condition that asks for a screen the app has not made yet counts as false.
    """
    async with asyncio.timeout(timeout):
        while True:
            try:
                if condition():
                    return time.perf_counter()
            except Exception:
                pass
            await asyncio.sleep(POLL)


def _watch(condition: Callable[[], bool]) -> asyncio.Task[float]:
    """`_until` in a task of its own, started before the app is: the headless driver's own wait
    for the app to settle (in `run_test`) must not count as the console's."""
    return asyncio.create_task(_until(condition))


def _all_hosts_app(hosts: Sequence[Host]) -> HiveApp:
    return HiveApp(_connect, hosts=list(hosts), open_host=_opener, all_hosts=True, pulse=False)


def _rows_in(app: HiveApp, hosts: Sequence[Host], rows: int) -> Callable[[], bool]:
    """Every row of `hosts` in the all-hosts view's table."""

    def ready() -> bool:
        screen = app.screen
        if not isinstance(screen, FleetScreen):
            return False
        table = screen.table
        return sum(1 for h in hosts for agent in screen.fleet.links[h.name].rows
                   if row_key(h.name, agent) in table.rows) >= rows

    return ready


async def one_host(host: Host, rows: int) -> tuple[float, float]:
    """Seconds from starting the single-host view on `host` to its first frame (its panes, before
    the host answered), and to its `rows` rows in the container list."""
    start = time.perf_counter()
    app = HiveApp(_connect, hosts=[host], host=host, pulse=False)
    first = _watch(lambda: app.containers.is_mounted)
    every = _watch(lambda: app.link == "live" and app.containers.row_count >= rows)
    async with app.run_test(size=SIZE):
        figures = await first - start, await every - start
        # The detail pane's read of the first request ends before the app does.
        await _until(lambda: bool(app.diff.shown))
        return figures


async def every_host(hosts: Sequence[Host], wait_for: Sequence[Host], rows: int) -> tuple[float, float]:
    """Seconds from starting the all-hosts view to its first frame (a header line per host, before
    any host answered), and to every row of `wait_for` in its table."""
    start = time.perf_counter()
    app = _all_hosts_app(hosts)
    first = _watch(lambda: isinstance(app.screen, FleetScreen) and app.screen.table.row_count >= len(hosts))
    every = _watch(_rows_in(app, wait_for, rows))
    async with app.run_test(size=SIZE):
        return await first - start, await every - start


async def push_latency(hosts: Sequence[Host], sockets: dict[str, Path], rows: int, changes: int = 100) -> float:
    """p95 seconds from a change on any host (a pause, sent to its socket) to its row in the view showing it."""
    app = _all_hosts_app(hosts)
    actors = {name: UnixClient(str(sock)) for name, sock in sockets.items()}
    latencies = []
    async with app.run_test(size=SIZE):
        await _until(_rows_in(app, hosts, rows))
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        table = screen.table
        for i in range(changes):
            host = hosts[i % len(hosts)]
            link = screen.fleet.links[host.name]
            agent = sorted(link.rows)[(i * 7) % len(link.rows)]
            paused = not link.rows[agent].paused
            key = row_key(host.name, agent)

            def shown() -> bool:
                return (" paused " in table.get_row(key)[0].plain) == paused

            start = time.perf_counter()
            await actors[host.name].set_paused(agent, paused)
            await _until(shown, 60)
            latencies.append(time.perf_counter() - start)
    for actor in actors.values():
        await actor.close()
    latencies.sort()
    return latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]


def resident_mib(view: str, hosts: Sequence[Host], rows: int) -> float:
    """The resident memory, MiB, of a process running `view` ("one" or "all") once its rows are in."""
    spec = json.dumps({"view": view, "rows": rows, "hosts": [asdict(h) for h in hosts]})
    proc = subprocess.run([sys.executable, "-m", "benchmarks.fleetconsole", "rss"], input=spec, text=True,
                          capture_output=True, cwd=HERE.parent, timeout=600, check=True)
    return float(proc.stdout.strip().splitlines()[-1])


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def _rss(spec: dict) -> float:
    hosts = [Host(**h) for h in spec["hosts"]]
    if spec["view"] == "one":
        app = HiveApp(_connect, hosts=hosts, host=hosts[0], pulse=False)
        async with app.run_test(size=SIZE):
            await _until(lambda: app.link == "live" and app.containers.row_count >= spec["rows"])
            return _rss_mib()
    app = _all_hosts_app(hosts)
    async with app.run_test(size=SIZE):
        await _until(_rows_in(app, hosts, spec["rows"]))
        return _rss_mib()


if __name__ == "__main__" and sys.argv[1:] == ["rss"]:
    print(f"{asyncio.run(_rss(json.loads(sys.stdin.read()))):.1f}")
