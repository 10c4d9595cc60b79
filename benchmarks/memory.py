"""Memory per agent on the local runtime: the resident memory of every
supervisor process the runtime keeps for a hive of N idle agents, divided by
N, against one bare Python interpreter measured in the same run.

A supervisor process is one whose command line runs the runtime's
supervisor module for this hive's state root; the agents' own processes
(`sleep` here) are not counted. RSS counts shared pages in full in every
process; PSS (where /proc gives it) shares them out, so the two bound what
the supervisors cost.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pygit2

from hive_tui.host import gitrepo
from hive_tui.host.runtime import local
from hive_tui.host.runtime.local import LocalRuntime
from hive_tui.host.stateroot import StateRoot
from hive_tui.host.template import agent_yaml

AGENT = ["sleep", "100000"]


@dataclass(frozen=True)
class Memory:
    rss: int  # bytes
    pss: int | None  # bytes, None where /proc gives no PSS
    processes: int = 1


def process_memory(pid: int) -> Memory:
    """One process's RSS and PSS from /proc."""
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        pss: int | None = next(int(line.split()[1]) for line in rollup if line.startswith("Pss:")) * 1024
    except (OSError, StopIteration):
        pss = None
    return Memory(rss * 1024, pss)


def supervisors(root: Path) -> list[int]:
    """The pids of the supervisor processes running for the hive at `root`."""
    module, found = local.SUPERVISOR, []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if module in argv and any(a == str(root) or a.startswith(f"{root}/") for a in argv):
            found.append(int(entry.name))
    return found


def total(pids: list[int]) -> Memory:
    parts = [process_memory(pid) for pid in pids]
    pss = None if any(p.pss is None for p in parts) else sum(p.pss or 0 for p in parts)
    return Memory(sum(p.rss for p in parts), pss, len(parts))


def hive_supervisors(agents: int) -> Memory:
    """What the supervisors of a hive of `agents` running agents hold, in all."""
    tmp = Path(tempfile.mkdtemp(prefix="hive-bench-"))
    state = StateRoot.at(tmp / "hive")
    state.create()
    runtime = LocalRuntime(state, stop_grace=2.0)
    names = [f"agent-{i:04d}" for i in range(agents)]
    try:
        repo_path = tmp / "config"
        sha = gitrepo.init_repo(repo_path, {"agent.yaml": agent_yaml(AGENT)}, "an idle agent")
        repo = gitrepo.open_repo(repo_path)
        assert isinstance(repo[sha], pygit2.Commit)
        for name in names:
            runtime.create(name, repo_path, str(sha), lambda line: None)
        assert all(runtime.run_state(name).running for name in names)
        return total(supervisors(state.root))
    finally:
        for name in runtime.containers():
            runtime.stop(name)
        shutil.rmtree(tmp, ignore_errors=True)


def bare_interpreter() -> Memory:
    """One `python -c pass`-sized interpreter, kept alive while it is measured."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; print(flush=True); sys.stdin.read()"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        proc.stdout.readline()  # type: ignore[union-attr]  # loaded, and waiting on its stdin
        return process_memory(proc.pid)
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        proc.stdout.close()  # type: ignore[union-attr]
        proc.wait()


def figures(sizes: tuple[int, ...], figure) -> None:
    bare = bare_interpreter()
    mib = 2**20
    figure("bare Python interpreter (python -c pass), RSS / PSS, MiB",
           f"{bare.rss / mib:.1f} / {bare.pss / mib:.1f}" if bare.pss is not None else f"{bare.rss / mib:.1f}")
    for agents in sizes:
        held = hive_supervisors(agents)
        per_rss = held.rss / agents
        value = f"{per_rss / mib:.2f} RSS ({per_rss / bare.rss:.2f}x bare)"
        if held.pss is not None and bare.pss:
            per_pss = held.pss / agents
            value += f", {per_pss / mib:.2f} PSS ({per_pss / bare.pss:.2f}x bare)"
        figure(f"local runtime, {agents} agents: supervisor memory per agent, MiB "
               f"({held.processes} supervisor processes)", value)
