"""`start` and `stop` with a scope naming several agents, as hyperhive's clients send
it: accepted by our engine, each name checked before any agent is touched, and an
empty or missing scope still refused rather than read as the whole hive."""

from __future__ import annotations

import asyncio

import pytest

from hive_tui.host.dispatch import Dispatcher

from .helpers import agent_files, tree_snapshot


@pytest.fixture
def dispatcher(engine):
    for name in ("alpha", "beta", "gamma"):
        engine.install_agent(name, agent_files())
    return Dispatcher(engine)


def running(engine) -> dict[str, bool]:
    return {r.name: r.running for r in engine.status()}


def test_several_agents_stop_and_start_in_one_request(engine, dispatcher):
    stop = {"cmd": "stop", "scope": {"agent_names": ["alpha", "gamma"]}, "graceful": False}
    assert asyncio.run(dispatcher.handle(stop))["ok"]
    assert running(engine) == {"alpha": False, "beta": True, "gamma": False}
    start = {"cmd": "start", "scope": {"agent_names": ["gamma", "alpha"]}}
    assert asyncio.run(dispatcher.handle(start))["ok"]
    assert running(engine) == {"alpha": True, "beta": True, "gamma": True}


@pytest.mark.parametrize("scope, error", [
    ({"agent_names": ["alpha", "../x"]}, "invalid agent name '../x'"),
    ({"agent_names": ["alpha", 5]}, "must hold strings, not int"),
    ({"agent_names": ["alpha", "ghost"]}, "no agent named ghost"),
    ({"agent_names": ["alpha", "alpha"]}, "names alpha twice"),
    ({"agent_names": []}, "an empty scope is never 'all'"),
    ({}, "scope names no agent"),
    (None, "missing field `scope`"),
    ({"agent_names": ["alpha"], "services": ["x"]}, "scope selectors services"),
])
def test_a_bad_name_anywhere_in_the_scope_changes_nothing(engine, dispatcher, scope, error):
    before = (tree_snapshot(engine.state.root / "applied"), running(engine))
    request = {"cmd": "stop", "graceful": False}
    if scope is not None:
        request["scope"] = scope
    answer = asyncio.run(dispatcher.handle(request))
    assert not answer["ok"] and error in answer["error"], answer
    assert (tree_snapshot(engine.state.root / "applied"), running(engine)) == before
