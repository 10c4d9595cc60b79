"""Hosts from memory: Unix sockets that speak the host wire for hives that
exist only as rows, so that a fleet benchmark can reach many hosts of many
agents without a supervisor process (about 12 MB) per agent.

Each socket answers the read verbs, `set_paused`, `start`, `stop` and
`restart` (which change a row and push it to every subscriber), and
`subscribe` / `subscribe_agent_status`; anything else is refused as an
unknown verb. A socket may be `slow`: it accepts connections and never
answers, as a host whose daemon hangs.

    python -m benchmarks.memhost --socket DIR/h00.sock:50 --socket DIR/slow.sock:slow

prints `ready` once every socket listens, and serves until stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from hive_tui.models import AgentStatus, Approval
from hive_tui.verbs import OURS

VERSION = 1
PENDING = 5


class MemoryHive:
    def __init__(self, name: str, agents: int):
        self.rows = {f"{name}-a{i:03d}": AgentStatus(
            name=f"{name}-a{i:03d}", running=True, deployed_sha="3f9a1c2b7d4e", active_model="sonnet",
            status_text=f"working on task {i}", status_set_at="2026-11-26T11:55:00Z") for i in range(agents)}
        names = list(self.rows)
        self.approvals = [Approval(i + 1, names[i % len(names)], "apply_commit", "main", "a" * 40,
                                   f"2026-11-26T11:{50 + i:02d}:00Z", description=f"change {i}").to_wire()
                          for i in range(min(PENDING, len(names)))]
        self.subscribers: set[asyncio.Queue[bytes]] = set()

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request.get("cmd")
        if cmd == "capabilities":
            return {"verbs": {n: sorted(f) for n, f in OURS.items()}}
        if cmd == "list":
            return {"agents": list(self.rows)}
        if cmd == "agent_status":
            return {"agent_statuses": [r.to_wire() for r in self.rows.values()]}
        if cmd == "pending":
            return {"approvals": self.approvals}
        if cmd in ("transients", "meta_log", "events", "approvals"):
            return {{"transients": "transients", "meta_log": "commits", "events": "events",
                     "approvals": "approvals"}[cmd]: self.approvals if cmd == "approvals" else []}
        if cmd in ("set_paused", "start", "stop", "restart"):
            return self._act(cmd, request)
        raise KeyError(f"unknown verb {cmd!r}")

    def _act(self, cmd: str, request: dict[str, Any]) -> dict[str, Any]:
        names = request.get("scope", {}).get("agent_names") if cmd in ("start", "stop") else [request.get("name")]
        rows = [self.rows[n] for n in names or [] if n in self.rows]
        if not rows or len(rows) != len(names or []):
            raise KeyError(f"no agent named {', '.join(map(str, names or []))}")
        for row in rows:
            if cmd == "set_paused":
                row.paused = bool(request.get("paused"))
            else:
                row.running = cmd != "stop"
            line = _line({"ok": True, "agent_statuses": [row.to_wire()]})
            for queue in self.subscribers:
                queue.put_nowait(line)
        return {}

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    if request.get("cmd") in ("subscribe", "subscribe_agent_status"):
                        await self._stream(writer)
                        return
                    message = {"ok": True, **self.answer(request)}
                except (KeyError, ValueError, AttributeError) as e:
                    message = {"ok": False, "error": str(e).strip("'\"")}
                writer.write(_line(message))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.subscribers.add(queue)
        try:
            writer.write(_line({"ok": True}))
            while True:
                await writer.drain()
                writer.write(await queue.get())
        finally:
            self.subscribers.discard(queue)


def _line(message: dict[str, Any]) -> bytes:
    return json.dumps({"version": VERSION, **message}, separators=(",", ":")).encode() + b"\n"


async def _hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A slow host: reads what it is sent, answers nothing."""
    while await reader.read(65536):
        pass
    writer.close()


async def main(specs: list[str]) -> None:
    servers = []
    for spec in specs:
        path, _, what = spec.rpartition(":")
        if what == "slow":
            servers.append(await asyncio.start_unix_server(_hang, path))
        else:
            hive = MemoryHive(Path(path).stem, int(what))
            servers.append(await asyncio.start_unix_server(hive.serve, path, limit=64 << 20))
    print("ready", flush=True)
    # Until whoever started us closes our stdin.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for server in servers:
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--socket", action="append", required=True, metavar="PATH:AGENTS|PATH:slow")
    asyncio.run(main(parser.parse_args().socket))
