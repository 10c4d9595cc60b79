"""Agents and requests that are gone: a purge denies the agent's pending
requests, and a destroyed agent whose repos were kept stays listed as a
`kept` row until it is purged or spawned again."""

from __future__ import annotations

from hive_tui.models import AgentStatus, Approval, Event

from .helpers import agent_files, propose
from .invariants import check_invariants
from .serving import run_async
from hive_tui.client.stream import UnixClient


def test_a_purge_denies_the_agents_pending_requests_and_tells_the_manager(engine):
    engine.install_agent("alpha", agent_files())
    engine.install_agent("beta", agent_files())
    first = propose(engine, "alpha", {"notes.txt": b"one\n"}, "one")
    second = propose(engine, "alpha", {"notes.txt": b"two\n"}, "two")
    other = propose(engine, "beta", {"notes.txt": b"beta\n"}, "beta's")
    pushed: list[object] = []
    engine.subscribe(pushed.append)
    since = engine.db.last_event_seq()

    engine.destroy("alpha", purge=True)

    for id in (first.id, second.id):
        done = engine.approval(id)
        assert (done.status, done.note, done.terminal_tag) == ("denied", "agent purged", None)
        assert done.resolved_at is not None
    assert engine.approval(other.id).status == "pending"
    resolved = [(e.id, e.status, e.note) for e in engine.events(since) if e.kind == "ApprovalResolved"]
    assert resolved == [(first.id, "denied", "agent purged"), (second.id, "denied", "agent purged")]
    assert [(a.id, a.status) for a in pushed if isinstance(a, Approval)] == [(first.id, "denied"), (second.id, "denied")]
    assert [e.id for e in pushed if isinstance(e, Event) and e.kind == "ApprovalResolved"] == [first.id, second.id]
    assert [a.id for a in engine.pending()] == [other.id]
    check_invariants(engine)


def test_a_destroy_that_keeps_the_repos_leaves_their_requests_pending(engine):
    engine.install_agent("alpha", agent_files())
    request = propose(engine, "alpha", {"notes.txt": b"one\n"})
    engine.destroy("alpha")
    assert engine.approval(request.id).status == "pending"


def test_a_destroyed_agent_whose_repos_were_kept_is_a_kept_row_until_purged(engine):
    engine.install_agent("alpha", agent_files())
    engine.install_agent("beta", agent_files())
    pushed: list[object] = []
    engine.subscribe(pushed.append)

    engine.destroy("alpha")

    rows = {r.name: r for r in engine.status()}
    assert sorted(rows) == ["alpha", "beta"]
    assert (rows["alpha"].kept, rows["alpha"].running, rows["alpha"].transient) == (True, False, None)
    assert rows["beta"].kept is False and rows["beta"].running
    assert engine.agent_status("alpha").kept is True
    assert engine.agents() == ["beta"], "`list` names the agents the hive runs, as hyperhive's does"
    last = [r for r in pushed if isinstance(r, AgentStatus) and r.name == "alpha"][-1]
    assert (last.kept, last.running) == (True, False)

    engine.destroy("alpha", purge=True)
    assert [r.name for r in engine.status()] == ["beta"]
    check_invariants(engine)


def test_spawning_a_kept_name_again_makes_it_a_normal_row(engine):
    engine.install_agent("alpha", agent_files())
    engine.destroy("alpha")
    request = engine.request_spawn("alpha", "back again")
    assert [(a.agent, a.kind) for a in engine.pending()] == [("alpha", "spawn")]
    assert engine.agent_status("alpha").kept is True

    engine.approve(request.id)

    row = engine.agent_status("alpha")
    assert (row.kept, row.running) == (False, True)
    assert [r.name for r in engine.status()] == ["alpha"]
    check_invariants(engine)


def test_over_the_socket_a_kept_row_is_listed_and_can_be_purged(served):
    async def scenario():
        c = UnixClient(str(served.sock))
        await c.destroy("beta")
        kept = {r.name: r.kept for r in await c.status()}
        await c.destroy("beta", purge=True)
        after = [r.name for r in await c.status()]
        await c.close()
        return kept, after

    kept, after = run_async(scenario())
    assert kept == {"alpha": False, "beta": True}
    assert after == ["alpha"]
