"""Crash recovery: an engine process killed with SIGKILL at every step boundary
of a deploy (built or failed), a rebuild, a spawn, a destroy and a denial,
then a new engine on the same state, and the invariants that must hold."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from hive_tui import gitrepo
from hive_tui.engine import Engine
from hive_tui.faults import VARIABLE

from .helpers import agent_files, stop_all
from .invariants import check_invariants, version

# The build fails while the agent's state folder holds `fail`.
BUILD = ["sh", "-c", 'test ! -e "$HIVE_AGENT_STATE/fail"']
OPERATION = """
import sys
from hive_tui.engine import Engine
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
