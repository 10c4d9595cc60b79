"""What `agent_status` costs the engine on a large hive of the local runtime,
and how soon the rows follow when every agent writes its status file at once.

The hive is laid out directly (applied repos, containers, status files and a
meta flake locking them all) rather than spawned one by one, which would take
minutes: the figure is the cost of reading the rows, not of making them.
Every agent reads as running (its run record names this process), so each
row reads its status file as a running agent's does.

    .venv/bin/python -m benchmarks.status [--agents 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from hive_tui.host import gitrepo
from hive_tui.host.engine import Engine
from hive_tui.host.lifecycle import agents_for_meta_listing
from hive_tui.host.runtime.procs import start_ticks
from hive_tui.host.template import new_agent_files
from hive_tui.models import AgentStatus


def large_hive(root: Path, agents: int) -> list[str]:
    """A hive of `agents` running agents, each with a status file; no processes of their own."""
    names = [f"agent{i:04d}" for i in range(agents)]
    with Engine(root, locker="builtin") as engine:
        run = json.dumps({"pid": os.getpid(), "ticks": start_ticks(os.getpid())})
        for name in names:
            gitrepo.init_repo(engine.state.applied(name), new_agent_files(name), f"spawn {name}")
            engine.state.agent_state(name).mkdir(mode=0o700)
            (engine.state.agent_state(name) / "status.json").write_text(
                json.dumps({"text": "idle", "model": "none", "set_at": "2026-01-01T00:00:00Z"}))
            engine.state.container(name).mkdir(mode=0o700)
            (engine.state.container(name) / "run.json").write_text(run)
        engine.meta.rerender(lambda: agents_for_meta_listing(engine.state, engine.runtime, engine.meta),
                             f"render {agents} agents")
    return names


def read_status_files(engine: Engine, names: list[str]) -> float:
    """Seconds to stat, read and parse every agent's status file in plain
    Python: the floor any status read of the hive stands on."""
    start = time.perf_counter()
    for name in names:
        path = engine.state.agent_state(name) / "status.json"
        os.stat(path)
        json.loads(path.read_bytes())
    return time.perf_counter() - start


def agent_status_cost(agents: int = 1000, runs: int = 5) -> dict[str, float]:
    """Seconds for one `agent_status` on a hive of `agents`: the first call of
    an engine, then the median of `runs` calls more, each after one agent
    wrote its status file again."""
    folder = Path(tempfile.mkdtemp(prefix="hive-status-"))
    try:
        names = large_hive(folder / "hive", agents)
        with Engine(folder / "hive", locker="builtin") as engine:
            start = time.perf_counter()
            rows = engine.status()
            first = time.perf_counter() - start
            assert len(rows) == agents and all(r.running and r.status_text == "idle" for r in rows), rows[:2]
            times = []
            for i in range(runs):
                (engine.state.agent_state(names[i]) / "status.json").write_text(
                    json.dumps({"text": f"busy {i}", "model": "none"}))
                start = time.perf_counter()
                rows = engine.status()
                times.append(time.perf_counter() - start)
                assert rows[i].status_text == f"busy {i}"
            floor = statistics.median(read_status_files(engine, names) for _ in range(runs))
        return {"first": first, "again": statistics.median(times), "floor": floor}
    finally:
        shutil.rmtree(folder)


def all_write_at_once(agents: int = 1000) -> float:
    """Seconds from every agent writing its status file at once until the
    engine has pushed every agent's new row (the watcher's batched pushes)."""
    folder = Path(tempfile.mkdtemp(prefix="hive-status-"))
    try:
        names = large_hive(folder / "hive", agents)
        with Engine(folder / "hive", locker="builtin") as engine:
            pending = set(names)
            done = threading.Event()

            def listen(item: object) -> None:
                if isinstance(item, AgentStatus) and item.status_text == "busy":
                    pending.discard(item.name)
                    if not pending:
                        done.set()

            engine.subscribe(listen)
            start = time.perf_counter()
            for name in names:
                (engine.state.agent_state(name) / "status.json").write_text(json.dumps({"text": "busy"}))
            if not done.wait(120):
                raise RuntimeError(f"{len(pending)} rows never pushed")
            return time.perf_counter() - start
    finally:
        shutil.rmtree(folder)


def figures(bench) -> None:
    """agent_status on a large local hive against reading its status files
    alone, and how soon every row follows a hive-wide status write."""
    agents = 200 if bench.quick else 1000
    cost = agent_status_cost(agents, 3 if bench.quick else 7)
    bench.ratio(f"agent_status, {agents} agents, local runtime (a status file moved)", cost["again"],
                "reading their status files alone", cost["floor"], goal="<= 100 ms at 1000")
    bench.ratio(f"agent_status, {agents} agents, first call of an engine", cost["first"],
                "reading their status files alone", cost["floor"])
    bench.figure(f"{agents} agents write their status at once: every row pushed, ms",
                 f"{all_write_at_once(agents) * 1000:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cost = agent_status_cost(args.agents, args.runs)
    print(f"agent_status, {args.agents} agents, local runtime: first {cost['first'] * 1000:.0f} ms, "
          f"then {cost['again'] * 1000:.0f} ms")
    print(f"{args.agents} agents write their status at once: every row pushed in "
          f"{all_write_at_once(args.agents) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
