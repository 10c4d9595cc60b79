"""Deploy benchmarks: the state machine's own overhead against the same git
steps done with the git program, and deploys of 1, 5 and 20 agents at once
against one build's time."""

from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from hive_tui.host import gitrepo
from hive_tui.client.embedded import EmbeddedClient
from hive_tui.host.engine import Engine
from hive_tui.host.template import agent_yaml

IDLE = ["sh", "-c", 'while [ -d "$HIVE_AGENT_STATE" ]; do sleep 1; done']


def _files(build: list[str] | None = None, version: bytes = b"1\n") -> dict[str, bytes]:
    return {"agent.yaml": agent_yaml(IDLE, build), "version.txt": version}


def _stop(engine: Engine) -> None:
    for name in engine.runtime.containers():
        engine.runtime.stop(name)


def figures(bench) -> None:
    """Deploy overhead against the git program; 20 deploys at once against one."""
    ours, git = deploy_overhead(2 if bench.quick else bench.runs)
    bench.ratio("deploy overhead (all but build and nix)", ours, "the same steps with the git program", git,
                goal="<= 0.3")
    runs = 1 if bench.quick else max(1, bench.runs // 2)
    one = bench.median(lambda: parallel(1), runs)
    for agents in ((20,) if bench.quick else (5, 20)):
        wall = bench.median(lambda: parallel(agents), runs)
        bench.ratio(f"{agents} deploys at once (each build 1 s), wall time", wall, "one deploy", one,
                    goal="<= 1.5" if agents == 20 else "")


def deploy_overhead(runs: int) -> tuple[float, float]:
    """Median seconds of a deploy minus its container rebuild, and of the same git steps by `git`."""
    ours, theirs = [], []
    for _ in range(runs):
        root = Path(tempfile.mkdtemp(prefix="hive-bench-"))
        try:
            with Engine(root / "hive", locker="builtin", runtime_options={"stop_grace": 2.0}) as engine:
                engine.install_agent("alpha", _files())
                gitrepo.commit_files(gitrepo.open_repo(engine.state.proposed("alpha")), {"version.txt": b"2\n"}, "v2")
                approval = engine.request_apply_commit("alpha", "main")
                spent = []
                rebuild = engine.runtime.rebuild

                def timed(*args, **kwargs):
                    start = time.perf_counter()
                    try:
                        return rebuild(*args, **kwargs)
                    finally:
                        spent.append(time.perf_counter() - start)

                engine.runtime.rebuild = timed
                start = time.perf_counter()
                engine.approve(approval.id)
                ours.append(time.perf_counter() - start - sum(spent))
                _stop(engine)
            theirs.append(_git_sequence(root / "git"))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return statistics.median(ours), statistics.median(theirs)


def _git_sequence(folder: Path) -> float:
    """The deploy's repository steps done with the git program, timed: tags, a
    fast-forward, a working-tree sync and a meta commit."""
    def git(repo: Path, *args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                              env={"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
                                   "GIT_COMMITTER_EMAIL": "b@b", "HOME": str(folder), "PATH": "/usr/bin:/bin"}).stdout
    applied, meta = folder / "applied", folder / "meta"
    for repo in (applied, meta):
        repo.mkdir(parents=True)
        git(repo, "init", "-q", "-b", "main")
        (repo / "file").write_text("1\n")
        git(repo, "add", "file")
        git(repo, "commit", "-q", "-m", "one")
    prev = git(applied, "rev-parse", "HEAD").strip()
    tree = git(applied, "write-tree").strip()
    target = subprocess.run(["git", "-C", str(applied), "commit-tree", tree, "-p", prev, "-m", "two"], check=True,
                            capture_output=True, text=True, env={"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b",
                            "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b", "PATH": "/usr/bin:/bin"}).stdout.strip()
    start = time.perf_counter()
    git(applied, "tag", "-a", "-m", "", "approved/1", target)
    git(applied, "tag", "-a", "-m", "", "building/1", target)
    git(applied, "merge-base", "--is-ancestor", prev, target)
    git(applied, "update-ref", "refs/heads/main", target, prev)
    git(applied, "read-tree", "-u", "--reset", target)
    git(applied, "tag", "-a", "-m", "", "deployed/1", target)
    (meta / "file").write_text("2\n")
    git(meta, "add", "file")
    git(meta, "commit", "-q", "-m", "deploy alpha deployed/1")
    return time.perf_counter() - start


def parallel(agents: int, build_seconds: float = 1.0) -> float:
    """Wall seconds to deploy `agents` agents at once, each build taking `build_seconds`."""
    build = ["sh", "-c", f'if [ -e "$HIVE_AGENT_STATE/slow" ]; then sleep {build_seconds}; fi']
    root = Path(tempfile.mkdtemp(prefix="hive-bench-"))
    try:
        with Engine(root / "hive", locker="builtin", runtime_options={"stop_grace": 2.0}) as engine:
            names = [f"agent-{i:02d}" for i in range(agents)]
            for name in names:
                engine.install_agent(name, _files(build))
                (engine.state.agent_state(name) / "slow").touch()
                gitrepo.commit_files(gitrepo.open_repo(engine.state.proposed(name)), {"version.txt": b"2\n"}, "v2")
                engine.request_apply_commit(name, "main")

            async def all_at_once() -> float:
                client = EmbeddedClient(engine)
                start = time.perf_counter()
                await asyncio.gather(*(client.approve(a.id) for a in engine.pending()))
                return time.perf_counter() - start

            wall = asyncio.run(all_at_once())
            _stop(engine)
            return wall
    finally:
        shutil.rmtree(root, ignore_errors=True)
