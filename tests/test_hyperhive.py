"""A genuine hyperhive daemon, which speaks only HOST_SOCK.md's table: every
CLI verb with a counterpart there works against it, the others say they are
not available, and what it lacks is learned once per connection."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

from hive_tui.client.base import Unavailable
from hive_tui.client.stream import UnixClient
from hive_tui.models import AgentStatus

from .hyperhive_daemon import sample_daemon
from .serving import EXE, run_async


@pytest.fixture(params=[False, True], ids=["v1", "v0"])
def daemon(request, tmp_path):
    with sample_daemon(tmp_path / "hh.sock", version0=request.param) as d:
        yield d


def cli(daemon, *args: str, check: int | None = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(EXE), "--host", f"unix:{daemon.sock}", *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    if check is not None:
        assert proc.returncode == check, (proc.stdout, proc.stderr)
    return proc


def test_status_and_pending(daemon):
    rows = json.loads(cli(daemon, "--json", "status").stdout)
    assert [(r["name"], r["running"]) for r in rows] == [("north", True), ("south", True), ("west", False)]
    text = cli(daemon, "status").stdout
    assert text.splitlines()[0].split() == ["NAME", "STATE", "DEPLOYED", "FLAGS", "MODEL", "STATUS"]
    assert "west" in text and "stopped" in text
    pending = json.loads(cli(daemon, "--json", "pending").stdout)
    assert [(a["id"], a["kind"]) for a in pending] == [(1, "apply_commit"), (2, "merge_config_pr"), (3, "spawn")]
    assert "merge_config_pr" in cli(daemon, "pending").stdout


def test_actions_reach_the_daemon(daemon):
    cli(daemon, "stop", "north")
    cli(daemon, "start", "west")
    cli(daemon, "restart", "north")
    cli(daemon, "pause", "south")
    assert {n: (a.running, a.paused) for n, a in daemon.agents.items()} == {
        "north": (True, False), "south": (True, True), "west": (True, False)}
    cli(daemon, "resume", "south")
    assert not daemon.agents["south"].paused
    # The scope names exactly the agent asked for, never an empty (whole hive) one.
    cli(daemon, "stop", "--force", "west")
    assert [n for n, a in daemon.agents.items() if not a.running] == ["west"]
    assert "approval 1 for north" in cli(daemon, "approve", "1").stdout
    assert "approval 2 for south: denied" in cli(daemon, "deny", "2").stdout
    assert [a["status"] for a in daemon.approvals] == ["approved", "denied", "pending"]
    assert daemon.agents["north"].deployed_sha == "c0ffee" * 2


@pytest.mark.parametrize("args", [
    ["history", "north"], ["events"], ["meta-log"], ["rebuild", "north"], ["destroy", "north"],
    ["logs", "north"], ["pending", "--all"], ["propose", "north", "main"], ["request-spawn", "east"],
    ["deny", "2", "--note", "not now"],
])
def test_what_the_daemon_lacks_is_not_available(daemon, args):
    proc = cli(daemon, *args, check=1)
    assert "not available on this host" in proc.stderr, proc.stderr
    # Refused in the client: nothing the daemon lacks was sent, and a deny without its note was not sent either.
    assert set(daemon.received) <= {"capabilities", "pending", "list"}
    assert [a["status"] for a in daemon.approvals] == ["pending"] * 3


def test_what_it_lacks_is_learned_once_per_connection(daemon):
    async def scenario():
        async with UnixClient(str(daemon.sock)) as client:
            rows = await client.status()
            await client.status()
            offered = await client.offered()
            with pytest.raises(Unavailable, match="history is not available on this host"):
                await client.history("north")
            return rows, offered

    rows, offered = run_async(scenario())
    assert [r.name for r in rows] == ["north", "south", "west"]
    assert "history" not in offered and "agent_status" in offered
    assert daemon.received.count("capabilities") == 1
    # Nothing it lacks was asked for: `transients` is known missing without asking.
    assert set(daemon.received) == {"capabilities", "agent_status"}


def test_the_feed_falls_back_to_the_status_rows(daemon):
    async def scenario():
        async with UnixClient(str(daemon.sock)) as client:
            async with client.feed() as feed:
                await client.set_paused("north", True)
                async with asyncio.timeout(30):
                    async for item in feed:
                        if isinstance(item, AgentStatus) and item.name == "north":
                            return item

    row = run_async(scenario())
    assert row.paused and row.deployed_sha == "ab" * 6
    assert "subscribe" not in daemon.received
