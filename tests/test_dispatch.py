"""The verbs behind every transport: requests checked field by field, errors
as `ok: false`, and the embedded client's typed calls over them."""

from __future__ import annotations

import asyncio

import pytest

from hive_tui import wire
from hive_tui.client.embedded import EmbeddedClient
from hive_tui.dispatch import Dispatcher
from hive_tui.errors import HiveError
from hive_tui.models import DeployStep, Event

from .helpers import agent_files, manager_commit, tree_snapshot


@pytest.fixture
def dispatcher(engine):
    engine.install_agent("alpha", agent_files())
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
])
def test_bad_requests_are_answered_and_change_nothing(engine, dispatcher, request_, error):
    before = tree_snapshot(engine.state.root)
    response = asyncio.run(dispatcher.handle(request_))
    assert response == {"version": wire.VERSION, "ok": False, "error": response["error"]}
    assert error in response["error"]
    assert tree_snapshot(engine.state.root) == before
    assert asyncio.run(dispatcher.handle({"cmd": "list"})) == wire.ok(agents=["alpha"])


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
