"""Server benchmarks: how long a status change takes to reach 50 subscribed
clients, over a local Unix socket and over SSH on 127.0.0.1; and what clients
cost the server in memory (subscribers that never read, connections that
come and go)."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hive_tui.client.base import HiveClient
from hive_tui.client.ssh import SshClient
from hive_tui.client.stream import UnixClient
from hive_tui.config import load_config, parse_host
from hive_tui.host.engine import Engine
from hive_tui.models import AgentStatus
from hive_tui.host.template import new_agent_files

EXE = Path(sys.executable).with_name("hive-tui")


class _Env:
    """What tests/sshd.py asks of pytest's monkeypatch, for a process of our own."""

    def setenv(self, name: str, value: str) -> None:
        os.environ[name] = value

    def delenv(self, name: str, raising: bool = True) -> None:
        os.environ.pop(name, None)


async def _feed_latency(make_client, subscribers: int, changes: int) -> float:
    clients = [make_client() for _ in range(subscribers)]
    feeds = [c.feed() for c in clients]
    for f in feeds:
        await f.__aenter__()
    actor: HiveClient = make_client()
    latencies = []
    try:
        for i in range(changes):
            paused = i % 2 == 0
            start = time.perf_counter()
            await actor.set_paused("alpha", paused)
            for feed in feeds:
                while True:
                    item = await feed.__anext__()
                    if isinstance(item, AgentStatus) and item.paused == paused:
                        break
            latencies.append(time.perf_counter() - start)
    finally:
        for f in feeds:
            await f.__aexit__(None, None, None)
        for c in [*clients, actor]:
            await c.close()
    return statistics.median(latencies)


def feed_latency(subscribers: int = 50, changes: int = 20, ssh: bool = False) -> float:
    root = Path(tempfile.mkdtemp(prefix="hive-bench-"))
    server = sshd = None
    saved = dict(os.environ)
    try:
        sock = root / "host.sock"
        server = _serve_one_agent(root, sock)
        if ssh:
            from tests.sshd import start_sshd

            sshd = start_sshd(root, _Env())
            sshd.trust()
            host = parse_host(sshd.url(sock), load_config(None))
            make = lambda: SshClient(host)  # noqa: E731
        else:
            make = lambda: UnixClient(str(sock))  # noqa: E731
        return asyncio.run(_feed_latency(make, subscribers, changes))
    finally:
        if sshd is not None:
            sshd.stop()
        _stop_served(root, server)
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(root, ignore_errors=True)


# -- what clients cost the server: its resident memory, from /proc


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _connect(sock: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(sock))
    return s


async def _toggle(sock: Path, times: int) -> None:
    c = UnixClient(str(sock))
    for i in range(times):
        await c.set_paused("alpha", i % 2 == 0)
    await c.close()


def _settled(sock: Path) -> None:
    """Returns once the server answers again: connections still queued from a
    burst may be refused (at the cap) until it has caught up with them."""
    for _ in range(10_000):
        s = _connect(sock)
        try:
            try:
                s.sendall(b'{"cmd": "whoami"}\n')
            except BrokenPipeError:
                pass
            if json.loads(s.makefile("rb").readline()).get("ok"):
                return
        finally:
            s.close()
    raise RuntimeError("the server never caught up with the connections")


def server_rss(subscribers: int = 1000, pushes: int = 2000, cycles: int = 100_000) -> dict[str, float]:
    """The server's RSS in MiB: idle, after `subscribers` that never read got
    `pushes` pushes (while they are still connected), and after `cycles`
    connect/close cycles on top."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < subscribers + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, subscribers + 256), hard))
    root = Path(tempfile.mkdtemp(prefix="hive-bench-"))
    server = None
    try:
        sock = root / "host.sock"
        server = _serve_one_agent(root, sock)
        asyncio.run(_toggle(sock, 50))
        figures = {"idle": _rss_mb(server.pid)}
        stuck = []
        for _ in range(subscribers):
            s = _connect(sock)
            s.sendall(b'{"cmd": "subscribe"}\n')
            stuck.append(s)
        asyncio.run(_toggle(sock, pushes))
        figures["subscribers"] = _rss_mb(server.pid)
        for s in stuck:
            s.close()
        for _ in range(cycles):
            _connect(sock).close()
        _settled(sock)
        figures["cycles"] = _rss_mb(server.pid)
        return figures
    finally:
        _stop_served(root, server)
        shutil.rmtree(root, ignore_errors=True)


def _serve_one_agent(root: Path, sock: Path) -> subprocess.Popen:
    """A `hive-tui serve` on a new hive of one agent, once its socket is there."""
    with Engine(root / "hive", locker="builtin") as engine:
        engine.install_agent("alpha", new_agent_files("alpha"))
    server = subprocess.Popen([str(EXE), "--state", str(root / "hive"), "--locker", "builtin", "serve",
                               "--socket", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not sock.exists():
        time.sleep(0.05)
    return server


def _stop_served(root: Path, server: subprocess.Popen | None) -> None:
    """End the server and the agents it left running."""
    if server is not None:
        server.terminate()
        server.wait(60)
    with Engine(root / "hive", locker="builtin", runtime_options={"stop_grace": 2.0}) as engine:
        for name in engine.runtime.containers():
            engine.runtime.stop(name)


def figures(bench) -> None:
    """A status change reaching 50 subscribers: over SSH against a Unix socket."""
    runs = 1 if bench.quick else max(1, bench.runs // 2)
    changes = 5 if bench.quick else 20
    unix = bench.median(lambda: feed_latency(changes=changes), runs)
    ssh = bench.median(lambda: feed_latency(changes=changes, ssh=True), runs)
    bench.ratio("status feed to 50 subscribers over a Unix socket", unix, "itself", unix)
    bench.ratio("status feed to 50 subscribers over SSH on 127.0.0.1", ssh, "over a Unix socket", unix)


def rss_figures(bench) -> None:
    """The server's resident memory after clients that try to exhaust it, against idle."""
    subscribers, pushes, cycles = (200, 400, 5_000) if bench.quick else (1000, 2000, 100_000)
    results = [server_rss(subscribers, pushes, cycles) for _ in range(1 if bench.quick else max(1, bench.runs // 2))]
    idle, after_subscribers, after_cycles = (statistics.median(r[k] for r in results)
                                             for k in ("idle", "subscribers", "cycles"))
    bench.ratio("server RSS idle", idle, "itself", idle, unit="MiB", scale=1.0)
    bench.ratio(f"server RSS, {subscribers} subscribers that never read, {pushes} pushes",
                after_subscribers, "idle", idle, unit="MiB", scale=1.0)
    bench.ratio(f"server RSS after {cycles} connect/close cycles more", after_cycles, "idle", idle,
                unit="MiB", scale=1.0)
