"""Any verb of the table, by name, from any client: its fields are checked
against the table before the request leaves, so a mistake costs no round
trip and sends nothing."""

from __future__ import annotations

import asyncio

import pytest

from hive_tui import wire
from hive_tui.client.embedded import EmbeddedClient
from hive_tui.errors import HiveError

from .helpers import agent_files
from .scripted import ScriptedClient


@pytest.mark.parametrize("verb, fields, error", [
    ("explode", {}, "unknown verb 'explode'"),
    ("approve", {}, "missing field `id`"),
    ("approve", {"id": "1"}, "field `id` must be an integer, not str"),
    ("approve", {"id": True}, "field `id` must be an integer, not bool"),
    ("history", {"name": "alpha", "nmae": "beta"}, "history has no field `nmae`"),
    ("subscribe", {}, "subscribe streams: use feed()"),
    ("subscribe_agent_status", {}, "subscribe_agent_status streams: use feed()"),
    ("logs", {"name": "alpha", "follow": True}, "logs with follow streams: use follow_logs()"),
])
def test_a_call_the_table_refuses_sends_nothing(verb, fields, error):
    client = ScriptedClient()
    with pytest.raises(HiveError, match=error.replace("(", r"\(").replace(")", r"\)")):
        asyncio.run(client.call(verb, **fields))
    assert client.sent == []


def test_every_answered_verb_is_reachable_by_name(engine):
    engine.install_agent("alpha", agent_files())

    async def scenario():
        client = EmbeddedClient(engine)  # not closed: that would close the fixture's engine
        by_name = {
            "list": await client.call("list"),
            "history": await client.call("history", name="alpha"),
            "set_paused": await client.call("set_paused", name="alpha", paused=True),
            "events": await client.call("events", since=0),
            "logs": await client.call("logs", name="alpha", lines=5, follow=False),
        }
        typed = (await client.agents(), await client.history("alpha"), await client.status())
        return by_name, typed

    by_name, (agents, history, status) = asyncio.run(scenario())
    assert all(response["ok"] and response["version"] == wire.VERSION for response in by_name.values())
    assert by_name["list"]["agents"] == agents == ["alpha"]
    assert by_name["history"]["tags"] == [t.to_wire() for t in history]
    assert by_name["set_paused"]["agent_statuses"][0]["paused"] is True
    assert [r.paused for r in status] == [True]
    assert isinstance(by_name["events"]["events"], list)
    assert isinstance(by_name["logs"]["lines"], list)

