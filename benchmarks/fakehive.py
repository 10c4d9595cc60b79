"""A simulated hive server for console benchmarks: the admin socket's framing
on a Unix socket, serving N agent rows from memory, so the console can be
measured at 1,000 or 10,000 agents without installing that many.

    python -m benchmarks.fakehive SOCKET --agents 10000 [--pills 20] [--change-every 0.01]

With --change-every, once the process gets SIGUSR1, every subscriber gets
one agent's row changed that often, every other change round the whole hive
and the others among the first ten rows (on screen); the row's status text
carries the push's send time
(`time.monotonic()`, one clock for every process on the machine) so the
console side can tell how late it applied it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hive_tui import wire
from hive_tui.models import AgentStatus, Approval

CHANGE = "change"
ON_SCREEN = 10
ROOT = Path(__file__).resolve().parent.parent


def row(i: int, pill: bool = False, text: str | None = None) -> AgentStatus:
    return AgentStatus(name=f"agent-{i:04d}", running=True, deployed_sha="3f9a1c2b7d4e", active_model="sonnet",
                       status_text=text or f"working on task {i}", status_set_at="2026-11-26T11:55:00Z",
                       transient="Rebuilding" if pill else None)


class FakeHive:
    def __init__(self, agents: int, pills: int, pending: int, every: float | None):
        self.agents, self.every = agents, every
        self.rows = [row(i, pill=i < pills).to_wire() for i in range(agents)]
        self.approvals = [Approval(i + 1, f"agent-{i % max(agents, 1):04d}", "apply_commit", "main", "a" * 40,
                                   "2026-11-26T11:50:00Z", description=f"change {i}").to_wire()
                          for i in range(pending)]
        self.subscribers: list[asyncio.StreamWriter] = []
        self.go = asyncio.Event()
        self.answers = {"agent_status": {"agent_statuses": self.rows}, "transients": {"transients": []},
                        "pending": {"approvals": self.approvals}, "approvals": {"approvals": self.approvals},
                        "list": {"agents": [r["name"] for r in self.rows]}, "meta_log": {"commits": []},
                        "whoami": {"uid": 0}}

    def answer(self, cmd: str) -> dict:
        payload = self.answers.get(cmd)
        return wire.ok(**payload) if payload is not None else wire.error(f"the simulated hive has no {cmd}")

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                cmd = wire.decode(line).get("cmd", "")
                writer.write(wire.encode(self.answer(cmd) if cmd != "subscribe" else wire.ok()))
                await writer.drain()
                if cmd == "subscribe":
                    self.subscribers.append(writer)
        except (OSError, ValueError):
            pass
        finally:
            if writer in self.subscribers:
                self.subscribers.remove(writer)
            writer.close()

    async def changes(self) -> None:
        """One changed row every `every` seconds, on a fixed schedule (late ticks do not drift it)."""
        assert self.every is not None
        await self.go.wait()
        loop = asyncio.get_running_loop()
        start, seq = loop.time(), 0
        while True:
            seq += 1
            await asyncio.sleep(max(0.0, start + seq * self.every - loop.time()))
            if not self.subscribers:
                continue
            # Every other change is to one of the ten rows on screen, so it must be drawn too.
            changed = seq % ON_SCREEN if seq % 2 else seq % self.agents
            line = wire.encode(wire.push(row(changed, text=f"{CHANGE} {seq} {time.monotonic():.6f}")))
            for writer in list(self.subscribers):
                writer.write(line)


async def main_async(args: argparse.Namespace) -> None:
    hive = FakeHive(args.agents, args.pills, args.pending, args.change_every)
    server = await asyncio.start_unix_server(hive.serve, path=str(args.socket), limit=wire.MAX_REQUEST)
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, hive.go.set)
    tasks = [asyncio.create_task(hive.changes())] if args.change_every else []
    async with server:
        await server.serve_forever()
    for t in tasks:
        t.cancel()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("socket", type=Path)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--pills", type=int, default=0, help="rows with an action in flight (a pulsing pill)")
    parser.add_argument("--pending", type=int, default=0)
    parser.add_argument("--change-every", type=float, default=None, metavar="SECONDS")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()


@dataclass
class Served:
    sock: Path
    proc: subprocess.Popen

    def start_changes(self) -> None:
        self.proc.send_signal(signal.SIGUSR1)


@contextlib.contextmanager
def served(folder: Path, agents: int, pills: int = 0, every: float | None = None) -> Iterator[Served]:
    """A simulated hive in a process of its own, for as long as the block runs."""
    sock = folder / f"fake-{agents}-{pills}.sock"
    argv = [sys.executable, "-m", "benchmarks.fakehive", str(sock), "--agents", str(agents), "--pills", str(pills)]
    if every:
        argv += ["--change-every", str(every)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the simulated hive did not start")
            time.sleep(0.01)
        yield Served(sock, proc)
    finally:
        proc.terminate()
        proc.wait(30)
        sock.unlink(missing_ok=True)
