"""Spawn benchmarks: what one spawn costs as the hive grows, and what a status
read of the whole hive costs at each size.

A thousand agents of the local runtime would be a thousand processes, more
than a shared 2-core machine affords, and the figure is the engine's own
cost anyway. So the hive runs on `QuietRuntime`: each container is a folder,
created and listed like the local runtime's, whose agent is never built nor
started. Every spawn still seeds the agent's repos, renders and locks the
meta flake (with the built-in locker) and commits it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from hive_tui import runtimes
from hive_tui.host.engine import Engine
from hive_tui.host.runtime import OutputSink, RunState
from hive_tui.host.stateroot import StateRoot
from hive_tui.host.template import new_agent_files
from hive_tui.names import is_valid_name

QUIET = "quiet"


class QuietRuntime:
    """Containers that are folders and run nothing: the engine's cost alone."""

    name = QUIET
    meta_inputs: dict[str, str] = {}

    def __init__(self, state: StateRoot):
        self.state = state

    def containers(self) -> list[str]:
        with os.scandir(self.state.root / "containers") as entries:
            return sorted(e.name for e in entries if is_valid_name(e.name) and e.is_dir(follow_symlinks=False))

    def create(self, name: str, repo: Path, sha: str, on_output: OutputSink) -> None:
        self.state.container(name).mkdir(mode=0o700)

    def rebuild(self, name: str, repo: Path, sha: str, on_output: OutputSink) -> None:
        pass

    def start(self, name: str) -> None:
        pass

    def stop(self, name: str, graceful: bool = True) -> None:
        pass

    def destroy(self, name: str) -> None:
        shutil.rmtree(self.state.container(name))

    def run_state(self, name: str) -> RunState:
        return RunState()

    def run_states(self, names: list[str]) -> dict[str, RunState]:
        return {name: RunState() for name in names}

    def log_argv(self, name: str, lines: int, follow: bool) -> list[str]:
        return ["true"]

    def log_file(self, name: str) -> None:
        return None


def _register() -> None:
    runtimes.RUNTIMES.setdefault(QUIET, (__name__, "QuietRuntime", "folders that run nothing"))


def spawn_scale(sizes: tuple[int, ...] = (10, 100, 1000), window: int = 7) -> dict[int, dict[str, float]]:
    """Spawn agents one by one up to the largest size; for each size, the least
    seconds of the `window` spawns ending at it (the least: a shared machine's
    load only ever adds), the seconds of one `status()` of the whole hive and
    of one `agent_status`."""
    _register()
    root = Path(tempfile.mkdtemp(prefix="hive-bench-"))
    results: dict[int, dict[str, float]] = {}
    try:
        with Engine(root / "hive", runtime=QUIET, locker="builtin") as engine:
            spent: list[float] = []
            for n in range(1, max(sizes) + 1):
                name = f"a{n:04d}"
                start = time.perf_counter()
                engine.install_agent(name, new_agent_files(name))
                spent.append(time.perf_counter() - start)
                if n in sizes:
                    start = time.perf_counter()
                    rows = engine.status()
                    status = time.perf_counter() - start
                    assert len(rows) == n, (len(rows), n)
                    start = time.perf_counter()
                    engine.agent_status(name)
                    one = time.perf_counter() - start
                    results[n] = {"spawn": min(spent[max(0, n - window):n]),
                                  "status": status, "agent_status": one}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return results


def figures(bench) -> None:
    """The Nth spawn against the 10th, and a status read of the hive at each size."""
    sizes = (10, 100) if bench.quick else (10, 100, 1000)
    results = spawn_scale(sizes, window=3 if bench.quick else 7)
    first = results[sizes[0]]
    for n in sizes[1:]:
        bench.ratio(f"spawn cost, agent {n} (quiet runtime, least of the spawns up to it)", results[n]["spawn"],
                    f"agent {sizes[0]}",
                    first["spawn"], goal="<= 1.5" if n == sizes[-1] else "")
    for n in sizes[1:]:
        bench.ratio(f"status of the whole hive at {n} agents (quiet runtime)", results[n]["status"],
                    f"at {sizes[0]} agents", first["status"], goal="<= 100 ms at 1000" if n == 1000 else "")
        bench.ratio(f"agent_status of one agent at {n} agents (quiet runtime)", results[n]["agent_status"],
                    f"at {sizes[0]} agents", first["agent_status"])


def nixos_status_figures(bench) -> None:
    """The nixos runtime's status read, against stand-ins for its programs that
    record each call: systemctl processes per read of the hive, against agents."""
    agents = 5 if bench.quick else 20
    calls, seconds, one = nixos_status(agents)
    bench.ratio(f"nixos runtime: systemctl processes per status read of {agents} agents", calls,
                "agents", agents, unit="", scale=1.0, goal=f"one call: {1 / agents:.2f}")
    bench.ratio(f"nixos runtime: status read of {agents} agents (stand-in programs)", seconds,
                "agent_status of one", one)


def nixos_status(agents: int) -> tuple[int, float, float]:
    """systemctl calls in one `status()` of `agents` agents, its seconds, and
    the seconds of one `agent_status`."""
    import json
    import sys

    root = Path(tempfile.mkdtemp(prefix="hive-bench-"))
    saved = dict(os.environ)
    try:
        standin = Path(__file__).resolve().parent.parent / "tests" / "standin.py"
        bin_dir = root / "bin"
        bin_dir.mkdir()
        (bin_dir / "standin").write_text(f"#!{sys.executable}\n" + standin.read_text())
        (bin_dir / "standin").chmod(0o755)
        for program in ("nixos-container", "systemctl", "nix-env", "journalctl"):
            (bin_dir / program).symlink_to("standin")
        (root / "standin").mkdir()
        os.environ.update(PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", STANDIN_DIR=str(root / "standin"),
                          STANDIN_ETC=str(root / "etc"), STANDIN_VAR=str(root / "var"),
                          STANDIN_PROFILES=str(root / "profiles"))
        options = {"profiles_dir": root / "profiles", "container_config_dir": root / "etc"}
        with Engine(root / "hive", runtime="nixos", locker="builtin", runtime_options=options) as engine:
            for n in range(agents):
                engine.install_agent(f"a{n}")
            calls = root / "standin" / "calls.jsonl"
            before = len(calls.read_text().splitlines())
            start = time.perf_counter()
            engine.status()
            seconds = time.perf_counter() - start
            made = [json.loads(line) for line in calls.read_text().splitlines()[before:]]
            start = time.perf_counter()
            engine.agent_status("a0")
            one = time.perf_counter() - start
        return sum(1 for c in made if c[:2] == ["systemctl", "show"]), seconds, one
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(root, ignore_errors=True)
