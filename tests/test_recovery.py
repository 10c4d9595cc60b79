"""Crash recovery: an engine process killed with SIGKILL at every step boundary
of a deploy (built or failed), a rebuild, a spawn, a destroy and a denial,
mid-build, and as a spawn creates its repo; then a new engine on the same
state, and the invariants that must hold."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from hive_tui.host import gitrepo
from hive_tui.host.engine import Engine
from hive_tui.host.faults import VARIABLE
from hive_tui.host.runtime.procs import BUILD_RECORD, is_alive, start_ticks

from .helpers import agent_files, propose, stop_all, wait_for
from .invariants import check_invariants, version

# The build fails while the agent's state folder holds `fail`.
BUILD = ["sh", "-c", 'test ! -e "$HIVE_AGENT_STATE/fail"']
OPERATION = """
import sys
from hive_tui.host.engine import Engine
root, op = sys.argv[1], sys.argv[2]
engine = Engine(root, locker="builtin", runtime_options={"stop_grace": 2.0})
if op in ("deploy", "deploy-fail", "spawn"):
    engine.approve(engine.pending()[0].id)
elif op == "deny":
    engine.deny(engine.pending()[0].id, "not this one")
elif op == "rebuild":
    engine.rebuild("alpha")
elif op == "destroy":
    engine.destroy("beta", purge=True)
print("finished without crashing")
"""

CASES = [
    *[("deploy", p) for p in ("deploy:claimed", "deploy:before-tagging", "deploy:before-fast-forward",
                              "deploy:before-meta-prepare", "deploy:before-rebuild", "deploy:before-finalize",
                              "deploy:deployed-tagged", "deploy:meta-committed")],
    *[("deploy-fail", p) for p in ("deploy:failed-tagged", "deploy:rolled-back")],
    ("rebuild", "rebuild:prepared"), ("rebuild", "rebuild:built"),
    *[("spawn", p) for p in ("spawn:seeded", "spawn:prepared", "spawn:created", "spawn:committed")],
    ("destroy", "destroy:container-gone"), ("destroy", "destroy:purged"),
    ("deny", "deny:tagged"),
]


@pytest.fixture
def prepared(hive_root):
    """alpha and beta at version 1, and what the operation needs waiting for it."""
    def make(op: str):
        with Engine(hive_root, locker="builtin") as engine:
            for name in ("alpha", "beta"):
                engine.install_agent(name, agent_files(build=BUILD, **{"version.txt": b"1\n"}))
            if op in ("deploy", "deploy-fail", "deny"):
                proposed = gitrepo.open_repo(engine.state.proposed("alpha"))
                gitrepo.commit_files(proposed, {"version.txt": b"2\n"}, "version 2")
                engine.request_apply_commit("alpha", "main", "version 2")
            if op == "deploy-fail":
                (engine.state.agent_state("alpha") / "fail").touch()
            if op == "rebuild":
                gitrepo.commit_files(gitrepo.open_repo(engine.state.applied("alpha")), {"version.txt": b"3\n"},
                                     "version 3, outside a deploy")
            if op == "spawn":
                engine.request_spawn("gamma", "a third")
        return hive_root

    yield make
    if (hive_root / "hive.db").exists():
        with Engine(hive_root, locker="builtin", runtime_options={"stop_grace": 2.0}) as engine:
            stop_all(engine)


@pytest.mark.parametrize("op, point", CASES, ids=[p for _, p in CASES])
def test_a_kill_at_every_step_leaves_a_hive_that_does_not_lie(prepared, op, point):
    root = prepared(op)
    crashed = subprocess.run([sys.executable, "-c", OPERATION, str(root), op],
                             env={**os.environ, VARIABLE: point}, capture_output=True, text=True, timeout=120)
    assert crashed.returncode == -signal.SIGKILL, (crashed.stdout, crashed.stderr)

    with Engine(root, locker="builtin", runtime_options={"stop_grace": 2.0}) as engine:
        assert engine.recovered or engine.interrupted or op == "deny" or point.endswith("committed")
        check_invariants(engine)
        outcome = {a.id: (a.status, a.terminal_tag) for a in engine.approvals()}
        if op == "deploy" and point in ("deploy:deployed-tagged", "deploy:meta-committed"):
            assert outcome[1] == ("approved", "deployed/1") and version(engine, "alpha") == b"2\n"
        elif op in ("deploy", "deploy-fail"):
            assert outcome[1] == ("failed", "failed/1") and version(engine, "alpha") == b"1\n"
            assert "interrupted" in engine.approval(1).error or op == "deploy-fail"
        elif op == "deny":
            assert outcome[1] == ("denied", "denied/1") and engine.approval(1).note == "not this one"
        elif op == "spawn":
            spawned = "gamma" in engine.agents()
            assert outcome[1] == (("approved", None) if spawned else ("failed", None))
            assert spawned == (point in ("spawn:committed",))
        elif op == "destroy":
            assert engine.agents() == ["alpha"] and "beta" not in engine.meta.agents()
        # The recovered hive takes new work.
        engine.restart("alpha")
        check_invariants(engine)


# The build leaves two children in its process group, says who they are, and
# waits at a FIFO nobody opens.
LINGERING_BUILD = ["sh", "-c", 'sleep 1000 & a=$!; sleep 1000 & b=$!; s="$HIVE_AGENT_STATE";'
                               ' echo "$$ $a $b" > "$s/pids.tmp"; mv "$s/pids.tmp" "$s/pids"; read v < "$s/gate"']


def test_a_build_left_running_by_a_killed_engine_is_ended(prepared):
    root = prepared("destroy")  # alpha and beta, nothing pending
    with Engine(root, locker="builtin") as engine:
        propose(engine, "alpha", agent_files(build=LINGERING_BUILD, **{"version.txt": b"3\n"}))
        state = engine.state.agent_state("alpha")
    os.mkfifo(state / "gate")
    server = subprocess.Popen([sys.executable, "-c", OPERATION, str(root), "deploy"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        pids = [int(p) for p in wait_for(lambda: (state / "pids").exists() and (state / "pids").read_text().split(),
                                         timeout=60, what="the build to start")]
    finally:
        server.kill()
        server.wait(timeout=30)
    assert all(is_alive(pid, start_ticks(pid)) for pid in pids)

    with Engine(root, locker="builtin", runtime_options={"stop_grace": 2.0}) as engine:
        assert [pid for pid in pids if start_ticks(pid) is not None] == []
        assert any("ended the interrupted build of alpha" in line for line in engine.recovered)
        check_invariants(engine)
        assert engine.approval(1).status == "failed" and version(engine, "alpha") == b"1\n"
        (engine.state.agent_state("alpha") / "gate").unlink()
        assert not (engine.state.container("alpha") / BUILD_RECORD).exists()


@pytest.mark.parametrize("point", ["init:created", "init:committed"])
def test_a_spawn_killed_as_it_creates_the_applied_repo_leaves_no_dirt(prepared, point):
    root = prepared("spawn")
    crashed = subprocess.run([sys.executable, "-c", OPERATION, str(root), "spawn"],
                             env={**os.environ, VARIABLE: point}, capture_output=True, text=True, timeout=120)
    assert crashed.returncode == -signal.SIGKILL, (crashed.stdout, crashed.stderr)

    with Engine(root, locker="builtin", runtime_options={"stop_grace": 2.0}) as engine:
        check_invariants(engine)
        assert "gamma" not in engine.agents() and engine.approval(1).status == "failed"
        applied = engine.state.applied("gamma")
        if applied.exists():
            repo = gitrepo.open_repo(applied)
            assert gitrepo.MAIN in repo.references and repo.status() == {}, repo.status()
        # A new spawn of that name works.
        assert engine.approve(engine.request_spawn("gamma").id).status == "approved"
        repo = gitrepo.open_repo(applied)
        assert repo.status() == {}
        check_invariants(engine)
