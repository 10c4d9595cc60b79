"""A write that fails mid-action (a full disk, no file descriptors left, a
permission refused) at every step of a deploy (built or failed), a rebuild,
a spawn and a destroy: the running engine repairs it at once, as a restarted
one would, and takes new work on the same agent once the fault is gone."""

from __future__ import annotations

import errno

import pygit2
import pytest

from hive_tui.host import gitrepo
from hive_tui.host.engine import Engine
from hive_tui.errors import HiveError
from hive_tui.host.faults import hits_left, inject

from .helpers import agent_files, main_sha, manager_rebase, propose, stop_all
from .invariants import check_invariants, version

# The build fails while the agent's state folder holds `fail`.
BUILD = ["sh", "-c", 'test ! -e "$HIVE_AGENT_STATE/fail"']
RUNTIME = ("runtime:export", "runtime:build", "runtime:swap", "runtime:start", "runtime:started")

POINTS = [
    *[("deploy", p) for p in ("deploy:claimed", "deploy:before-tagging", "deploy:before-fast-forward",
                              "deploy:before-meta-prepare", "deploy:before-rebuild", *RUNTIME,
                              "deploy:before-finalize", "deploy:deployed-tagged", "deploy:meta-committed")],
    *[("deploy-fail", p) for p in ("deploy:before-rollback", "deploy:failed-tagged", "deploy:rolled-back")],
    *[("rebuild", p) for p in ("rebuild:prepared", *RUNTIME, "rebuild:built")],
    # A new agent's template has no build step.
    *[("spawn", p) for p in ("spawn:seeded", "spawn:prepared", *(p for p in RUNTIME if p != "runtime:build"),
                             "spawn:created", "spawn:committed")],
    *[("destroy", p) for p in ("runtime:remove", "destroy:container-gone", "destroy:purged")],
]
ERRNOS = (errno.ENOSPC, errno.EMFILE, errno.EACCES)
CASES = [(op, point, code) for op, point in POINTS for code in ERRNOS]


@pytest.fixture
def hive(hive_root):
    with Engine(hive_root, locker="builtin", runtime_options={"stop_grace": 2.0}) as engine:
        for name in ("alpha", "beta"):
            engine.install_agent(name, agent_files(build=BUILD, **{"version.txt": b"1\n"}))
        try:
            yield engine
        finally:
            stop_all(engine)


def act(engine: Engine, op: str) -> None:
    """Carry out `op`, as the operator would ask for it; an error it reports is fine."""
    try:
        if op in ("deploy", "deploy-fail"):
            if op == "deploy-fail":
                (engine.state.agent_state("alpha") / "fail").touch()
            engine.approve(propose(engine, "alpha", {"version.txt": b"2\n"}).id)
        elif op == "rebuild":
            gitrepo.commit_files(gitrepo.open_repo(engine.state.applied("alpha")), {"version.txt": b"3\n"},
                                 "version 3, outside a deploy")
            engine.rebuild("alpha")
        elif op == "spawn":
            engine.approve(engine.request_spawn("gamma", "a third").id)
        elif op == "destroy":
            engine.destroy("beta", purge=True)
    except HiveError:
        pass
    (engine.state.agent_state("alpha") / "fail").unlink(missing_ok=True)


@pytest.mark.parametrize("op, point, code", CASES,
                         ids=[f"{op}-{p}-{errno.errorcode[c]}" for op, p, c in CASES])
def test_a_failed_write_is_repaired_without_a_restart(hive, op, point, code):
    engine = hive
    with inject(point, code):
        act(engine, op)
        assert hits_left(point) == 0, f"the operation never reached {point}"

    check_invariants(engine)
    assert all(row.error is None for row in engine.status())
    if op.startswith("deploy"):
        # Past finalize a deploy is finished forward; before it, rolled back with the fault as its error.
        forward = point in ("deploy:deployed-tagged", "deploy:meta-committed")
        done = engine.approval(1)
        assert done.status == ("approved" if forward else "failed")
        assert version(engine, "alpha") == (b"2\n" if forward else b"1\n")
        assert forward or f"(injected at {point})" in done.error
    elif op == "spawn":
        assert ("gamma" in engine.agents()) == (point == "spawn:committed")
    # Every other agent is served as before.
    assert engine.agent_status("alpha" if op == "destroy" else "beta").running

    # The same agent takes new work.
    if op == "spawn":
        if "gamma" not in engine.agents():
            assert engine.approve(engine.request_spawn("gamma").id).status == "approved"
        done = engine.approve(propose(engine, "gamma", {"version.txt": b"7\n"}).id)
        assert done.status == "approved" and version(engine, "gamma") == b"7\n"
    elif op == "destroy":
        assert "beta" not in engine.agents()
        assert engine.approve(engine.request_spawn("beta").id).status == "approved"
    else:
        # The manager picks up what the applied repo has (the rebuild's version 3).
        gitrepo.fetch_commit(gitrepo.open_repo(engine.state.proposed("alpha")), engine.state.applied("alpha"),
                             pygit2.Oid(hex=main_sha(engine, "alpha")), "refs/hive/applied")
        manager_rebase(engine, "alpha")
        done = engine.approve(propose(engine, "alpha", {"version.txt": b"7\n"}).id)
        assert done.status == "approved", done.error
        assert version(engine, "alpha") == b"7\n"
    check_invariants(engine)


@pytest.mark.parametrize("op", ["deploy", "rebuild"])
def test_an_agent_that_cannot_be_repaired_is_marked_failed_and_the_rest_served(hive, op):
    engine = hive
    # No file descriptors to start any agent with: the new build cannot start,
    # and neither can the old one that the repair puts back.
    with inject("runtime:start", errno.EMFILE, times=-1):
        act(engine, op)
        row = engine.agent_status("alpha")
        assert row.failed and not row.running
        assert "Too many open files" in row.error and "failed" in row.error
        if op == "deploy":
            done = engine.approval(1)
            assert (done.status, done.terminal_tag) == ("failed", "failed/1")
            assert "Too many open files" in done.error
        assert engine.transients_in_flight() == [] and engine.db.transients() == []
        # Every other agent is served.
        assert [r.name for r in engine.status()] == ["alpha", "beta"]
        assert engine.agent_status("beta").running and engine.agent_status("beta").error is None

    gitrepo.fetch_commit(gitrepo.open_repo(engine.state.proposed("alpha")), engine.state.applied("alpha"),
                         pygit2.Oid(hex=main_sha(engine, "alpha")), "refs/hive/applied")
    manager_rebase(engine, "alpha")
    done = engine.approve(propose(engine, "alpha", {"version.txt": b"7\n"}).id)
    assert done.status == "approved", done.error
    row = engine.agent_status("alpha")
    assert row.running and not row.failed and row.error is None
    check_invariants(engine)


def test_a_transient_whose_clearing_failed_does_not_block_the_next_action(hive):
    engine = hive
    with inject("transient:clear", errno.ENOSPC):
        engine.restart("alpha")
    engine.restart("alpha")
    assert engine.agent_status("alpha").running
    check_invariants(engine)
