"""The console's first frame in a real terminal (tmux), each as a ratio of a
bare Textual app's (a header, a 20-row DataTable, a footer) measured in the
same run: at 1,000 and 10,000 agents from a simulated hive on a Unix socket
(with resident memory, and then typing a filter: benchmarks/filtering.py),
the demo hive opened in this process, and the demo hive served over a real
sshd on 127.0.0.1.

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
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from benchmarks import bare, fakehive, filtering
from benchmarks.terminal import EXE, PY, ROOT, Terminal

NAN = float("nan")
ROWS_SHOWN = "● running"  # only an agent's row carries its run state
SIZES = (1000, 10_000)


def bare_frame(term: Terminal) -> tuple[float, float]:
    """Seconds to the bare app's rows on screen, and its resident MiB then."""
    start = term.start([PY, "-m", "benchmarks.bare"], cwd=ROOT)
    return term.wait_for(bare.LAST_ROW) - start, term.rss_mib()


def console_frame(term: Terminal, argv: list[str], env: dict[str, str], shown: str = ROWS_SHOWN) -> tuple[float, float]:
    """Seconds to the console's rows on screen, and its resident MiB then."""
    start = term.start([EXE, *argv], env=env, cwd=ROOT)
    return term.wait_for(shown) - start, term.rss_mib()


def medians(term: Terminal, runs: int, kinds: dict[str, Callable[[], tuple[float, ...]]]) -> dict[str, tuple[float, ...]]:
    """Each kind run `runs` times, interleaved; the median of each of its figures (NaN for a kind
    that never ran)."""
    seen: dict[str, list[tuple[float, ...]]] = {k: [] for k in kinds}
    for _ in range(runs):
        for kind, run in kinds.items():
            term.sample(seen, kind, run)
    return {k: tuple(statistics.median(column) for column in zip(*v)) if v else (NAN,) * 4
            for k, v in seen.items()}


def at_scale(runs: int, sizes: tuple[int, ...] = SIZES) -> tuple[dict[str, tuple[float, ...]], dict[str, int]]:
    """Seconds and resident MiB at the first frame of the bare app ("bare") and of the console on
    simulated hives of `sizes` agents, then in that console the filter's seconds from the first
    key and after the last; the bare Input's ("bare typing"); and how many runs of each failed."""
    folder = Path(tempfile.mkdtemp(prefix="hive-bench-"))
    env = {"XDG_CONFIG_HOME": str(folder / "config")}

    def console(sock: Path, agents: int) -> tuple[float, ...]:
        frame = console_frame(term, ["--host", f"unix:{sock}"], env, shown="agent-0000")
        return frame + filtering.type_filter(term, agents)

    try:
        with Terminal("frames") as term, ExitStack() as stack:
            kinds: dict[str, Callable[[], tuple[float, ...]]] = {
                "bare": lambda: bare_frame(term), "bare typing": lambda: filtering.bare_typing(term)}
            for n in sizes:
                sock = stack.enter_context(fakehive.served(folder, n)).sock
                kinds[str(n)] = lambda sock=sock, n=n: console(sock, n)
            return medians(term, runs, kinds), term.failed
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def breakdown(agents: int, runs: int) -> dict[str, dict[str, float]]:
    """Where the first frame goes, for the bare app ("bare") and the console at `agents` ("console"),
    run by turns: ms from the start of the program to each stage (medians)."""
    folder = Path(tempfile.mkdtemp(prefix="hive-bench-"))
    out = folder / "probe.json"
    env = {"XDG_CONFIG_HOME": str(folder / "config")}
    seen: dict[str, dict[str, list[float]]] = {"bare": {}, "console": {}}
    try:
        with Terminal("probe") as term, fakehive.served(folder, agents) as hive:
            for _ in range(runs):
                for kind, what in (("bare", ["--bare"]), ("console", ["--host", f"unix:{hive.sock}"])):
                    out.unlink(missing_ok=True)
                    start = term.start([PY, "-m", "benchmarks.probe", str(out), *what], env=env, cwd=ROOT)
                    term.wait_exit()
                    probed = json.loads(out.read_text())
                    for stage, at in probed["marks"].items():
                        seen[kind].setdefault(stage, []).append((at - start) * 1000)
                    for spent_on, spent in probed["spent"].items():
                        seen[kind].setdefault(f"({spent_on}, in all)", []).append(spent * 1000)
        return {kind: {stage: statistics.median(v) for stage, v in stages.items()} for kind, stages in seen.items()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- the demo hive: in this process, and served over SSH


class _Env:
    """What tests/sshd.py asks of pytest's monkeypatch, for this process."""

    def setenv(self, name: str, value: str) -> None:
        os.environ[name] = value

    def delenv(self, name: str, raising: bool = True) -> None:
        os.environ.pop(name, None)


def demo(runs: int) -> tuple[dict[str, tuple[float, ...]], dict[str, int]]:
    """First frames of the bare app, the demo hive opened in the console's process, and the same
    hive served over SSH on 127.0.0.1; ("ssh connect", "ssh round trip") in seconds; failed runs."""
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
            figures = medians(term, runs, {
                "bare": lambda: bare_frame(term),
                "in process": lambda: console_frame(term, ["--locker", "builtin"], env),
            })
            term.end()  # the embedded engine lets go of the hive before the server takes it
            server = subprocess.Popen([EXE, "--state", str(root), "--locker", "builtin", "serve", "--socket",
                                       str(sock)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            _wait_for_socket(sock, server)
            sshd = start_sshd(folder, _Env())
            sshd.trust()
            ssh_env = {**env, "HOME": os.environ["HOME"]}
            figures |= medians(term, runs, {
                "bare over ssh": lambda: bare_frame(term),
                "ssh": lambda: console_frame(term, ["--host", sshd.url(sock)], ssh_env),
            })
            connect, trip = _ssh_round_trip(sshd.url(sock))
            figures["ssh connect"] = (connect, 0.0)
            figures["ssh round trip"] = (trip, 0.0)
            return figures, term.failed
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


def _failed(failed: dict[str, int], kind: str, runs: int) -> str:
    return f" [{failed[kind]} of {runs} runs never showed the rows]" if failed.get(kind) else ""


def figures(bench) -> None:
    """The first-frame and filter rows of the table, each against the bare app measured beside it
    (`bench`: benchmarks/run.py's figure groups' interface)."""
    runs = 1 if bench.quick else bench.runs
    seen, failed = at_scale(runs)
    bare_s, bare_mib = seen["bare"][:2]
    bare = "bare Textual app, 20-row DataTable"
    for n, goal in zip(SIZES, ("<= 1.3", "<= 2.5")):
        bench.ratio(f"console first frame in tmux, {n} agents" + _failed(failed, str(n), runs),
                    seen[str(n)][0], bare, bare_s, goal=goal)
    bench.ratio(f"console resident memory at that frame, {SIZES[-1]} agents", seen[str(SIZES[-1])][1], bare,
                bare_mib, unit="MiB", scale=1.0, goal="~2.1")
    bare_last = seen["bare typing"][1]
    for n in SIZES:
        bench.ratio(f"console, {n} agents: a 10-character filter in tmux until only the match shows, "
                    "after the last key", seen[str(n)][3], "the same keys into a bare Input", bare_last,
                    goal="<= 0.15 s" if n == SIZES[-1] else "")
    if not bench.quick:
        for kind, stages in breakdown(1000, max(1, runs // 2)).items():
            who = "bare app" if kind == "bare" else "console at 1000 agents"
            for stage, ms in sorted(stages.items(), key=lambda kv: kv[1] if not kv[0].startswith("(") else 1e9):
                bench.figure(f"  first frame, {who}: {stage}, ms" + ("" if stage.startswith("(") else " from start"),
                             f"{ms:.0f}")
    frames, failed = demo(runs)
    bench.ratio("demo hive opened in process: first frame with agents in tmux" + _failed(failed, "in process", runs),
                frames["in process"][0], bare, frames["bare"][0], goal="<= 1.5")
    ssh, trip = frames["ssh"][0], frames["ssh round trip"][0]
    bench.ratio("console first frame over SSH (sshd on 127.0.0.1, demo hive)" + _failed(failed, "ssh", runs),
                ssh, bare, frames["bare over ssh"][0])
    bench.ratio("  the same less one status round trip over that link "
                f"({trip * 1000:.1f} ms)", ssh - trip, bare, frames["bare over ssh"][0], goal="<= 1.5")
    bench.figure("  an SSH client's connect and first status from a script, ms", f"{frames['ssh connect'][0] * 1000:.0f}")
