"""The log viewer on a log of 1,000,000 lines, against the same viewer on a
log of 100 lines measured in the same run: the time to open it (from the
screen being pushed to its last lines on screen) and the time to jump from
its first line to its end.

The viewer runs under Textual's headless driver (`App.run_test`) on the real
engine in this process (the embedded client), with an agent whose log is
written as the local runtime's supervisor writes it (`<time> <text>`). Each
open starts a new engine, so nothing the host read of the log before is kept: an open is
cold (what the host caches of it goes with the engine). Before each jump the view lets go of the pages it holds, so the end is
read from the host as after reading elsewhere in the log.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from textual.app import App

from hive_tui.client.embedded import EmbeddedClient
from hive_tui.host.engine import Engine
from hive_tui.host.template import agent_yaml
from hive_tui.widgets.history import HistoryScreen
from hive_tui.widgets.logview import LogView

SIZE = (160, 48)
POLL = 0.002
BIG, SMALL = 1_000_000, 100


def write_log(path: Path, count: int) -> None:
    """`count` lines stamped a millisecond apart, as the host writes them."""
    base = int(time.time() * 1000) - count - 60_000
    out = []
    for i in range(count):
        at = base + i
        out.append(f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(at // 1000))}.{at % 1000:03d}Z line {i}\n")
    path.write_text("".join(out))


def hive(folder: Path) -> Path:
    """A hive with two agents whose logs hold BIG and SMALL lines."""
    root = folder / "hive"
    with Engine(root, locker="builtin") as engine:
        for name, count in (("big", BIG), ("small", SMALL)):
            engine.install_agent(name, {"agent.yaml": agent_yaml(["sh", "-c", "exit 0"], None)})
            container = engine.state.container(name)
            deadline = time.monotonic() + 60
            while not (container / "exit.json").exists():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not exit")
                time.sleep(0.05)
            (container / "log").unlink()
            write_log(container / "log", count)
    return root


async def _until(condition: Callable[[], bool], timeout: float = 300) -> float:
    async with asyncio.timeout(timeout):
        while True:
            try:
                if condition():
                    return time.perf_counter()
            except Exception:
                pass
            await asyncio.sleep(POLL)


def _shows(view: LogView, last: int) -> bool:
    """The view is idle with line `last` on screen and no line still coming."""
    height = view.scrollable_content_region.height
    rows = [view.render_line(y).text for y in range(height)]
    return view.idle and any(r.rstrip().endswith(f" line {last}") for r in rows) and not any(
        r.strip() == "…" for r in rows)


async def open_and_jump(root: Path, agent: str, count: int) -> tuple[float, float]:
    """Seconds to open `agent`'s log (its last line on screen), and to jump from its first line
    to its end."""
    engine = Engine(root, locker="builtin")
    client = EmbeddedClient(engine)
    app = App()
    try:
        async with app.run_test(size=SIZE) as pilot:
            start = time.perf_counter()
            screen = HistoryScreen(client, agent, "log")
            app.push_screen(screen)
            opened = await _until(lambda: _shows(screen.viewer, count - 1)) - start
            view = screen.viewer
            await pilot.press("g")
            await _until(lambda: _shows(view, 0))
            view._pages.clear()
            start = time.perf_counter()
            await pilot.press("G")
            jumped = await _until(lambda: _shows(view, count - 1)) - start
            return opened, jumped
    finally:
        await client.close()
        engine.close()


def figures(bench) -> None:
    folder = Path(tempfile.mkdtemp(prefix="hive-bench-log-"))
    try:
        root = hive(folder)
        runs = bench.runs
        seen: dict[str, list[tuple[float, float]]] = {"big": [], "small": []}
        for _ in range(max(1, runs)):
            # By turns, so that load from the rest of the machine falls on both alike.
            for agent, count in (("small", SMALL), ("big", BIG)):
                seen[agent].append(asyncio.run(open_and_jump(root, agent, count)))

        def median(agent: str, i: int) -> float:
            values = sorted(v[i] for v in seen[agent])
            return values[len(values) // 2]

        bench.ratio("log viewer: open a 1,000,000-line log (a new engine each run)", median("big", 0),
                    "a 100-line log", median("small", 0))
        bench.ratio("log viewer: jump from its first line to its end", median("big", 1),
                    "a 100-line log", median("small", 1))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks.run import Bench

    figures(Bench(quick=True, runs=3))
