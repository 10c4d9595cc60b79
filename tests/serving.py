"""A real `hive-tui serve` in a process of its own, for tests that drive a socket."""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

from hive_tui.host.engine import Engine

from .helpers import stop_all, tree_snapshot, wait_for

EXE = Path(sys.executable).with_name("hive-tui")


class ServerProcess:
    """`hive-tui serve` on a state root; its log is kept in a file beside the socket."""

    def __init__(self, root: Path, sock: Path, *extra: str):
        self.root, self.sock, self.extra = root, sock, extra
        self.log = sock.with_suffix(".log")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "ServerProcess":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(EXE), "--state", str(self.root), "--locker", "builtin", "serve", "--socket", str(self.sock), *self.extra],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )
        wait_for(lambda: self.answers() or self.proc.poll() is not None, what="the server to listen")
        assert self.proc.poll() is None, self.log.read_text()
        return self

    def answers(self) -> bool:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(self.sock))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def terminate(self, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def seeded_hive(root: Path, agents: dict[str, dict[str, bytes]]) -> None:
    """A hive with these agents installed and running, and no engine holding it."""
    with Engine(root, locker="builtin") as engine:
        for name, files in agents.items():
            engine.install_agent(name, files)


def stop_agents(root: Path) -> None:
    with Engine(root, locker="builtin", runtime_options={"stop_grace": 2.0}) as engine:
        stop_all(engine)


def raw_connection(sock: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(str(sock))
    return s


def exchange(s: socket.socket, line: bytes, reader) -> bytes:
    """Send one line; return the one line that answers it."""
    s.sendall(line + b"\n")
    return reader.readline()



async def ride_through_restart(client, server: ServerProcess) -> dict:
    """Restart the server under a client with a feed open: what the client saw."""
    seen = {"before": await client.agents()}
    async with client.feed() as feed:
        await asyncio.to_thread(server.terminate)
        seen["lost"] = await feed.__anext__()
        await asyncio.to_thread(server.start)
        seen["back"] = await feed.__anext__()
        seen["after"] = await client.agents()
        await client.set_paused("beta", True)
        seen["pushed"] = await feed.__anext__()
    await client.close()
    return seen


def run_async(coro, timeout: float = 180):
    """Run a client scenario, failing it if it hangs rather than hanging the suite."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def observable(root: Path) -> tuple:
    """What a request could change: the files (but the database and what the
    running agents write themselves), and the database's rows."""
    def agents_own(path: str) -> bool:
        return ".db" in path or path.endswith(("/log", "status.json"))

    files = {k: v for k, v in tree_snapshot(root).items() if not agents_own(k)}
    db = sqlite3.connect(f"file:{root / 'hive.db'}?mode=ro", uri=True)
    try:
        rows = tuple(tuple(db.execute(f"SELECT * FROM {t}").fetchall()) for t in ("approvals", "events", "transients"))
    finally:
        db.close()
    return files, rows
