"""Console benchmarks (run by benchmarks/run.py): time to the first
interactive frame and push-update latency at 10, 100 and 1,000 agents (with
100 pending requests), and idle CPU with 20 pulsing pills.

The console runs headless (Textual's test driver) against an in-memory
client, so the figures are the console's own: no engine, no socket.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from hive_tui.app import HiveApp
from hive_tui.client.base import Feed, HiveClient
from hive_tui.models import AgentStatus, Approval

SIZE = (160, 48)


class MemoryClient(HiveClient):
    """Serves `agents` rows and `pending` requests; `push` feeds the console as the server would."""

    def __init__(self, agents: int, pending: int = 100, moving: int = 0):
        self.rows = [AgentStatus(name=f"agent-{i:04d}", running=True, deployed_sha="3f9a1c2b7d4e",
                                 active_model="sonnet", status_text=f"working on task {i}",
                                 status_set_at="2026-11-26T11:55:00Z",
                                 transient="Rebuilding" if i < moving else None).to_wire()
                     for i in range(agents)]
        self.approvals = [Approval(i + 1, f"agent-{i % max(agents, 1):04d}", "apply_commit", "main", "a" * 40,
                                   "2026-11-26T11:50:00Z", description=f"change {i}").to_wire()
                          for i in range(pending)]
        self.feeds: list[Feed] = []

    async def request(self, message):
        answers = {"agent_status": {"agent_statuses": self.rows}, "transients": {"transients": []},
                   "pending": {"approvals": self.approvals}, "approvals": {"approvals": self.approvals},
                   "diff": {"files": [], "patch": "", "truncated": False}}
        return {"version": 1, "ok": True, **answers.get(message["cmd"], {})}

    def feed(self) -> Feed:
        def start(feed: Feed):
            self.feeds.append(feed)
            return lambda: self.feeds.remove(feed)
        return Feed(start)

    def push(self, item: object) -> None:
        for feed in self.feeds:
            feed.put(item)

    async def follow_logs(self, name, lines=200):
        yield ""


async def first_frame(agents: int) -> float:
    """Seconds from starting the app to every row on the table, drawn."""
    client = MemoryClient(agents)

    async def connect(host):
        return client

    start = time.perf_counter()
    app = HiveApp(connect)
    async with app.run_test(size=SIZE) as pilot:
        while app.containers.row_count < agents or app.link != "live":
            await pilot.pause(0)
        await pilot.pause()
        return time.perf_counter() - start


async def update_latency(agents: int, updates: int = 30) -> float:
    """Median seconds from a status row pushed to that row changed on the table."""
    client = MemoryClient(agents)

    async def connect(host):
        return client

    app = HiveApp(connect)
    latencies = []
    async with app.run_test(size=SIZE) as pilot:
        while app.containers.row_count < agents or not client.feeds:
            await pilot.pause(0)
        for i in range(updates):
            name = f"agent-{(i * 7) % agents:04d}"
            text = f"update {i}"
            row = AgentStatus.from_wire({**client.rows[0], "name": name, "status_text": text})
            start = time.perf_counter()
            client.push(row)
            while text not in str(app.containers.get_cell(name, "agent")):
                await pilot.pause(0)
            latencies.append(time.perf_counter() - start)
    return statistics.median(latencies)


async def idle_cpu(pills: int = 20, seconds: float = 5.0) -> float:
    """CPU use, in percent of one core, of a console sitting with `pills` rows pulsing."""
    client = MemoryClient(pills, pending=0, moving=pills)

    async def connect(host):
        return client

    app = HiveApp(connect)
    async with app.run_test(size=SIZE) as pilot:
        while app.containers.row_count < pills:
            await pilot.pause(0)
        await pilot.pause(0.5)
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        return 100 * (time.process_time() - cpu) / (time.perf_counter() - wall)
