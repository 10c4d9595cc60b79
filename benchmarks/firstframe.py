"""The console's first frame in a real terminal (tmux), each as a ratio of a
bare Textual app's (a header, a 20-row DataTable, a footer) measured in the
same run: at 1,000 and 10,000 agents from a simulated hive on a Unix socket
(with resident memory), the demo hive opened in this process, and the demo
hive served over a real sshd on 127.0.0.1.

A first frame is the time from starting the program in the pane to the pane
showing the agents' rows; runs of each kind alternate so that load from the
rest of the machine falls on all of them alike.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from benchmarks import bare, fakehive
from benchmarks.terminal import Terminal

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
EXE = str(Path(PY).with_name("hive-tui"))
ROWS_SHOWN = "s start · x stop"  # only an agent's row carries its action keys


def bare_frame(term: Terminal) -> tuple[float, float]:
    """Seconds to the bare app's rows on screen, and its resident MiB then."""
    start = term.start([PY, "-m", "benchmarks.bare"], cwd=ROOT)
    return term.wait_for(bare.LAST_ROW) - start, term.rss_mib()


def console_frame(term: Terminal, argv: list[str], env: dict[str, str], shown: str = ROWS_SHOWN) -> tuple[float, float]:
    """Seconds to the console's rows on screen, and its resident MiB then."""
    start = term.start([EXE, *argv], env=env, cwd=ROOT)
    return term.wait_for(shown) - start, term.rss_mib()


def medians(runs: int, kinds: dict[str, Callable[[], tuple[float, float]]]) -> dict[str, tuple[float, float]]:
    """Each kind run `runs` times, interleaved; the median of each figure."""
    seen: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    for _ in range(runs):
        for kind, run in kinds.items():
            seen[kind].append(run())
    return {k: (statistics.median(s for s, _ in v), statistics.median(m for _, m in v)) for k, v in seen.items()}


def at_scale(runs: int, sizes: tuple[int, ...] = (1000, 10_000)) -> dict[str, tuple[float, float]]:
    """First frames of the bare app and of the console on simulated hives of `sizes` agents."""
    folder = Path(tempfile.mkdtemp(prefix="hive-bench-"))
    env = {"XDG_CONFIG_HOME": str(folder / "config")}
    try:
        with Terminal("frames") as term, ExitStack() as stack:
            kinds: dict[str, Callable[[], tuple[float, float]]] = {"bare": lambda: bare_frame(term)}
            for n in sizes:
                sock = stack.enter_context(fakehive.served(folder, n))
                kinds[str(n)] = lambda sock=sock: console_frame(term, ["--host", f"unix:{sock}"], env,
                                                                 shown="agent-0000")
            return medians(runs, kinds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def breakdown(agents: int, runs: int) -> dict[str, float]:
    """Where the first frame at `agents` goes: ms from the start of the program to each stage (medians)."""
    folder = Path(tempfile.mkdtemp(prefix="hive-bench-"))
    out = folder / "probe.json"
    env = {"XDG_CONFIG_HOME": str(folder / "config")}
    seen: dict[str, list[float]] = {}
    try:
        with Terminal("probe") as term, fakehive.served(folder, agents) as sock:
            for _ in range(runs):
                out.unlink(missing_ok=True)
                start = term.start([PY, "-m", "benchmarks.probe", str(out), "--host", f"unix:{sock}"],
                                   env=env, cwd=ROOT)
                term.wait_until(lambda _: out.exists() and not term.alive())
                probed = json.loads(out.read_text())
                for stage, at in probed["marks"].items():
                    seen.setdefault(stage, []).append((at - start) * 1000)
                for what, spent in probed["spent"].items():
                    seen.setdefault(f"({what}, in all)", []).append(spent * 1000)
        return {stage: statistics.median(v) for stage, v in seen.items()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- the demo hive: in this process, and served over SSH


class _Env:
    """What tests/sshd.py asks of pytest's monkeypatch, for this process."""

    def setenv(self, name: str, value: str) -> None:
        os.environ[name] = value

    def delenv(self, name: str, raising: bool = True) -> None:
        os.environ.pop(name, None)


def demo(runs: int) -> dict[str, tuple[float, float]]:
    """First frames of the bare app, the demo hive opened in the console's process, and the same
    hive served over SSH on 127.0.0.1; and ("ssh round trip", "ssh connect") in seconds."""
    from hive_tui.host.engine import Engine
    from tests.sshd import start_sshd

    folder = Path(tempfile.mkdtemp(prefix="hive-bench-"))
    saved = dict(os.environ)
    env = {"XDG_DATA_HOME": str(folder / "data"), "XDG_CONFIG_HOME": str(folder / "config")}
    root = folder / "data" / "hive-tui" / "demo"
    sock = folder / "host.sock"
    sshd = server = None
    try:
        subprocess.run([EXE, "--locker", "builtin", "demo"], env={**os.environ, **env}, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
        with Terminal("demo") as term:
            figures = medians(runs, {
                "bare": lambda: bare_frame(term),
                "in process": lambda: console_frame(term, ["--locker", "builtin"], env),
            })
            term.start(["sleep", "3600"])  # the embedded engine let go before the server takes the hive
            server = subprocess.Popen([EXE, "--state", str(root), "--locker", "builtin", "serve", "--socket",
                                       str(sock)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            _wait_for_socket(sock, server)
            sshd = start_sshd(folder, _Env())
            sshd.trust()
            ssh_env = {**env, "HOME": os.environ["HOME"]}
            figures |= medians(runs, {
                "bare over ssh": lambda: bare_frame(term),
                "ssh": lambda: console_frame(term, ["--host", sshd.url(sock)], ssh_env),
            })
            connect, trip = _ssh_round_trip(sshd.url(sock))
            figures["ssh connect"] = (connect, 0.0)
            figures["ssh round trip"] = (trip, 0.0)
            return figures
    finally:
        if sshd is not None:
            sshd.stop()
        if server is not None:
            server.terminate()
            server.wait(60)
        os.environ.clear()
        os.environ.update(saved)
        if (root / "hive.db").exists():
            with Engine(root, locker="builtin", runtime_options={"stop_grace": 2.0}) as engine:
                for name in engine.runtime.containers():
                    engine.runtime.stop(name)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_socket(sock: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("hive-tui serve did not start")
        time.sleep(0.02)


def _ssh_round_trip(url: str) -> tuple[float, float]:
    """Seconds to open an SSH client and read the agents once; then the median of one more read."""
    from hive_tui.client.ssh import SshClient
    from hive_tui.config import load_config, parse_host

    async def measure() -> tuple[float, float]:
        client = SshClient(parse_host(url, load_config(None)))
        try:
            start = time.perf_counter()
            await client.status()
            connect = time.perf_counter() - start
            trips = []
            for _ in range(10):
                start = time.perf_counter()
                await client.status()
                trips.append(time.perf_counter() - start)
            return connect, statistics.median(trips)
        finally:
            await client.close()

    return asyncio.run(measure())
