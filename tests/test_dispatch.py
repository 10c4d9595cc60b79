"""The verbs behind every transport: requests checked field by field, errors
as `ok: false`, and the embedded client's typed calls over them."""

from __future__ import annotations

import asyncio
import os

import pytest

from hive_tui import wire
from hive_tui.client.embedded import EmbeddedClient
from hive_tui.host.dispatch import Dispatcher
from hive_tui.errors import HiveError
from hive_tui.models import AgentStatus, DeployStep, Event, Lagged

from .helpers import GATED_BUILD, Gate, agent_files, manager_commit, tree_snapshot, wait_for


@pytest.fixture
def dispatcher(engine):
    engine.install_agent("alpha", agent_files())
    # The agent's first log line comes when it gets to it: wait, so that
    # snapshots of the state root see only what the requests change.
    log = engine.runtime.log_path("alpha")
    wait_for(lambda: log.read_bytes().endswith(b"\n"), what="alpha's first log line")
    return Dispatcher(engine)


@pytest.mark.parametrize("request_, error", [
    ([1, 2], "a request must be a JSON object, not list"),
    ({}, "missing field `cmd`"),
    ({"cmd": 7}, "missing field `cmd`"),
    ({"cmd": "explode"}, "unknown verb 'explode'"),
    ({"cmd": "approve"}, "missing field `id`"),
    ({"cmd": "approve", "id": "1"}, "field `id` must be an integer, not str"),
    ({"cmd": "approve", "id": True}, "field `id` must be an integer, not bool"),
    ({"cmd": "approve", "id": 0}, "approval id must be a positive integer"),
    ({"cmd": "deny", "id": 1, "note": 5}, "field `note` must be a string, not int"),
    ({"cmd": "history", "name": "../etc"}, "invalid agent name '../etc'"),
    ({"cmd": "request_apply_commit", "agent": "alpha"}, "missing field `commit_ref`"),
    ({"cmd": "request_spawn", "name": "a\x1bb"}, "invalid agent name 'a\\x1bb'"),
    ({"cmd": "start"}, "missing field `scope`"),
    ({"cmd": "start", "scope": "alpha"}, "field `scope` must be an object, not str"),
    ({"cmd": "start", "scope": {}}, "scope names no agent"),
    ({"cmd": "stop", "scope": {"agent_names": []}}, "an empty scope is never 'all'"),
    ({"cmd": "stop", "scope": {"agent_names": ["alpha", "alpha"]}}, "scope names alpha twice"),
    ({"cmd": "stop", "scope": {"agent_names": ["alpha"], "services": ["x"]}}, "scope selectors services"),
    ({"cmd": "start", "scope": {"agent_names": [5]}}, "must hold strings, not int"),
    ({"cmd": "stop", "scope": {"agent_names": ["../x"]}}, "invalid agent name '../x'"),
    ({"cmd": "restart", "name": "ghost"}, "no agent named ghost"),
    ({"cmd": "destroy", "name": "alpha", "purge": "yes"}, "field `purge` must be a boolean, not str"),
    ({"cmd": "destroy", "name": "../x", "purge": True}, "invalid agent name '../x'"),
    ({"cmd": "set_paused", "name": "alpha"}, "missing field `paused`"),
    ({"cmd": "logs", "name": "alpha", "lines": 0}, "lines must be between 1 and 10000"),
])
def test_bad_requests_are_answered_and_change_nothing(engine, dispatcher, request_, error):
    before = tree_snapshot(engine.state.root)
    response = asyncio.run(dispatcher.handle(request_))
    assert response == {"version": wire.VERSION, "ok": False, "error": response["error"]}
    assert error in response["error"]
    assert tree_snapshot(engine.state.root) == before
    assert asyncio.run(dispatcher.handle({"cmd": "list"})) == wire.ok(agents=["alpha"])


def test_whoami_in_process_is_this_process(dispatcher):
    answer = asyncio.run(dispatcher.handle({"cmd": "whoami"}))
    assert answer == wire.ok(pid=os.getpid(), uid=os.getuid(), gid=os.getgid())


def test_unknown_keys_are_tolerated(dispatcher):
    assert asyncio.run(dispatcher.handle({"cmd": "list", "from_the_future": 1}))["ok"]


def test_client_refuses_a_newer_daemon():
    with pytest.raises(HiveError, match="daemon speaks v2, this client v1"):
        wire.check_response({"version": 2, "ok": True})
    assert wire.check_response({"ok": True}) == {"ok": True}  # a pre-version daemon reads as 0


def test_embedded_client_round_trip(engine):
    engine.install_agent("alpha", agent_files())
    sha = manager_commit(engine, "alpha", {"more.txt": b"more\n"})

    async def scenario():
        async with EmbeddedClient(engine) as client:
            assert await client.agents() == ["alpha"]
            proposal = await client.propose("alpha", "main", "more")
            assert proposal.fetched_sha == sha and [p.id for p in await client.pending()] == [proposal.id]
            seen = []
            done = await client.approve(proposal.id, seen.append)
            spawn = await client.request_spawn("beta")
            denied = await client.deny(spawn.id, "later")
            return done, seen, denied, await client.history("alpha"), await client.events()

    done, seen, denied, history, events = asyncio.run(scenario())
    assert (done.status, done.terminal_tag) == ("approved", "deployed/1")
    assert [s.step for s in seen if isinstance(s, DeployStep)][0] == "captured"
    assert any(isinstance(s, Event) and s.kind == "ApprovalResolved" for s in seen)
    assert (denied.status, denied.note) == ("denied", "later")
    assert [t.tag for t in history] == ["proposal/1", "approved/1", "building/1", "deployed/1"]
    assert [e.kind for e in events] == ["Rebuilt", "ApprovalResolved", "ApprovalResolved"]


def test_approve_without_waiting_returns_once_claimed(engine):
    """The console's approve: claimed at once, carried out in the background."""
    engine.install_agent("alpha", agent_files(build=GATED_BUILD))
    manager_commit(engine, "alpha", {"more.txt": b"more\n"})
    gate = Gate(engine.state.agent_state("alpha"))

    async def scenario():
        async with EmbeddedClient(engine) as client:
            proposal = await client.propose("alpha", "main", "more")
            async with client.feed() as feed:
                claimed = await client.approve(proposal.id, wait=False)
                # The build is still held at the gate: nothing is deployed yet.
                held = await client.history("alpha")
                await asyncio.to_thread(gate.open, "ok")
                async with asyncio.timeout(60):
                    async for item in feed:
                        if isinstance(item, Event) and item.kind == "ApprovalResolved" and item.id == proposal.id:
                            break
            return claimed, held, await client.approval(proposal.id)

    claimed, held, done = asyncio.run(scenario())
    assert (claimed.status, claimed.terminal_tag) == ("approved", None)
    assert "deployed/1" not in [t.tag for t in held]
    assert (done.status, done.terminal_tag) == ("approved", "deployed/1")


def test_lifecycle_verbs_through_the_embedded_client(engine):
    engine.install_agent("alpha", agent_files())
    engine.install_agent("beta", agent_files())

    async def scenario():
        client = EmbeddedClient(engine)  # not closed: that would close the fixture's engine
        await client.stop("alpha")
        stopped = {r.name: r.running for r in await client.status()}
        await client.start("alpha")
        await client.restart("alpha")
        paused = await client.set_paused("alpha", True)
        rebuilt = await client.rebuild("alpha")
        warning = await client.destroy("beta", purge=True)
        return stopped, paused, rebuilt, warning, await client.status(), await client.transients()

    stopped, paused, rebuilt, warning, rows, transients = asyncio.run(scenario())
    assert stopped == {"alpha": False, "beta": True}
    assert paused.paused and paused.name == "alpha"
    assert rebuilt is None and warning is None
    assert [(r.name, r.running, r.paused, r.transient) for r in rows] == [("alpha", True, True, None)]
    assert transients == []
    assert not engine.state.applied("beta").exists()
    assert [e.kind for e in engine.events()] == ["Rebuilt", "Destroyed"]


@pytest.mark.parametrize("request_", [
    {"cmd": "approval", "id": 2**63},
    {"cmd": "approve", "id": 2**64 + 7},
    {"cmd": "deny", "id": -(2**63) - 1},
    {"cmd": "diff", "id": 10**30},
    {"cmd": "events", "since": 2**63},
    {"cmd": "logs", "name": "alpha", "lines": 2**63},
])
def test_integers_beyond_64_bits_are_refused_by_name(engine, dispatcher, request_):
    def ours() -> dict:
        # The agent's own log is its to write, whenever it starts.
        return {k: v for k, v in tree_snapshot(engine.state.root).items() if not k.endswith("/log")}

    before = ours()
    field = "since" if "since" in request_ else "lines" if "lines" in request_ else "id"
    response = asyncio.run(dispatcher.handle(request_))
    assert response == wire.error(f"field `{field}` must be a 64-bit integer, from -2^63 to 2^63-1")
    assert ours() == before


def test_one_subscription_stream_bounds_what_waits_and_the_embedded_feed_reads_on_after_lagging(engine):
    """The socket's subscription and the embedded client's feed are the
    dispatcher's one stream: a subscriber past its bound is told it lagged, and
    the embedded feed, like a socket client after a dropped link, reads on."""
    engine.install_agent("alpha", agent_files())

    async def scenario():
        client = EmbeddedClient(engine)  # not closed: that would close the fixture's engine
        client.dispatcher.fanout.subscriber_bytes = 1
        stuck = client.dispatcher.subscribe()
        ack = await anext(stuck)
        async with client.feed() as feed:
            # Two pushes before the loop turns: both wait for each subscriber at once.
            engine.set_paused("alpha", True)
            engine.set_paused("alpha", False)
            async with asyncio.timeout(60):
                lagged = await anext(feed)
                engine.set_paused("alpha", True)
                async for after in feed:
                    if isinstance(after, AgentStatus) and after.name == "alpha":
                        break
        rest = [wire.decode(line) async for line in stuck]
        await client.dispatcher.close()
        return ack, lagged, after, rest

    ack, lagged, after, rest = asyncio.run(scenario())
    assert wire.decode(ack) == wire.ok()
    # What waited was dropped whole, and counted.
    assert isinstance(lagged, Lagged) and lagged.lagged >= 2
    assert after.paused
    assert rest[-1] == wire.ok(lagged=rest[-1]["lagged"]) and rest[-1]["lagged"] >= 2
