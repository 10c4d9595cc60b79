"""The client's many-hosts module, without the console: a link per host with its
own backoff and state, one queue of requests across hosts, and bulk actions
with a limit per host. Against a real `hive-tui serve`, a real sshd (one key
trusted, one not), the fake hyperhive daemon and a socket nobody serves."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from hive_tui.client.base import ReadOnly
from hive_tui.client.connect import open_client
from hive_tui.client.fleet import KEY_REFUSED, LIVE, RECONNECTING, UNREACHABLE, Bulk, Fleet, Target
from hive_tui.client.stream import UnixClient
from hive_tui.config import Host
from hive_tui.errors import HiveError
from hive_tui.host import gitrepo
from hive_tui.models import Event

from .helpers import agent_files
from .hyperhive_daemon import sample_daemon
from .serving import ServerProcess, run_async, seeded_hive, stop_agents
from .sshd import start_sshd


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "hive"
    seeded_hive(root, {"alpha": agent_files(), "beta": agent_files()})
    server = ServerProcess(root, tmp_path / "a.sock").start()
    yield server
    server.kill()
    stop_agents(root)


@pytest.fixture
def daemon(tmp_path):
    with sample_daemon(tmp_path / "hh.sock") as d:
        yield d


def unix(name: str, sock, **kw) -> Host:
    return Host(name, "unix", socket=str(sock), **kw)


async def opener(host: Host):
    return await open_client(host, redial_for=0)


async def until(condition, timeout: float = 60.0, what: str = "condition"):
    """Poll `condition` on the loop until it holds, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


OPTIONS = {"backoff_first": 0.05, "backoff_max": 0.4, "poll": 0.1, "timeout": 30}


def test_each_host_has_its_own_link_and_state(served, daemon, tmp_path, monkeypatch):
    sshd = start_sshd(tmp_path, monkeypatch)
    sshd.trust()  # as [127.0.0.1]:port: reached as localhost, the key is not known
    hosts = [
        unix("a", served.sock),
        Host("a-ssh", "ssh", socket=str(served.sock), user=sshd.user, hostname="127.0.0.1", port=sshd.port),
        Host("refused", "ssh", socket=str(served.sock), user=sshd.user, hostname="localhost", port=sshd.port),
        unix("hh", daemon.sock),
        unix("dead", tmp_path / "dead.sock"),
    ]

    async def scenario():
        async with Fleet(hosts, opener, **OPTIONS) as fleet:
            links = fleet.links
            await until(lambda: [links[h].link.state for h in links] == [LIVE, LIVE, KEY_REFUSED, LIVE, UNREACHABLE],
                        what="every host to settle")
            seen = {"described": {h: links[h].link.describe() for h in links},
                    "history": {h: "history" in links[h].offer for h in ("a", "hh")},
                    "fingerprint": links["refused"].link.fingerprint,
                    "agents": [(h, r.name) for h, r in fleet.agents()]}
            # The dead host keeps trying on its own backoff; the live ones stay live.
            tries = links["dead"].tries
            await until(lambda: links["dead"].tries >= tries + 2, what="two more tries of the dead host")
            seen["still"] = [links[h].link.state for h in ("a", "a-ssh", "hh")]
            seen["retry_in"] = links["dead"].link.retry_at - time.time()
            return seen

    try:
        seen = run_async(scenario())
    finally:
        sshd.stop()
    assert seen["agents"] == [("a", "alpha"), ("a", "beta"), ("a-ssh", "alpha"), ("a-ssh", "beta"),
                              ("hh", "north"), ("hh", "south"), ("hh", "west")]
    assert seen["fingerprint"] == sshd.fingerprint()
    assert seen["history"] == {"a": True, "hh": False}
    described = seen["described"]
    assert described["a"] == described["hh"] == "live"
    assert described["refused"].startswith(f"host key refused: {sshd.fingerprint()} (next try in ")
    assert described["dead"].startswith("unreachable: cannot reach unix:") and "(next try in " in described["dead"]
    assert seen["still"] == [LIVE] * 3 and seen["retry_in"] <= OPTIONS["backoff_max"]


def test_a_lost_host_reconnects_while_the_others_stay_live(served, daemon):
    hosts = [unix("a", served.sock), unix("hh", daemon.sock)]

    async def scenario():
        async with Fleet(hosts, opener, **OPTIONS) as fleet:
            a = fleet.links["a"]
            await until(lambda: a.link.state == LIVE and fleet.links["hh"].link.state == LIVE, what="both live")
            await asyncio.to_thread(served.terminate)
            await until(lambda: a.link.state == RECONNECTING, what="a to be reconnecting")
            seen = {"while_down": (a.link.describe(), fleet.links["hh"].link.state)}
            await asyncio.to_thread(served.start)
            await until(lambda: a.link.state == LIVE, what="a to be live again")
            seen["after"] = sorted(a.rows)
            return seen

    seen = run_async(scenario())
    described, hh = seen["while_down"]
    assert described.startswith("reconnecting… (next try in ") and hh == LIVE
    assert seen["after"] == ["alpha", "beta"]


def test_one_queue_oldest_first_and_each_answer_goes_to_its_host(served, daemon):
    gitrepo.commit_files(gitrepo.open_repo(served.root / "proposed" / "beta"), {"n.txt": b"1\n"}, "change")
    proposal = run_async(UnixClient(str(served.sock)).propose("beta", "main", "notes"))
    hosts = [unix("a", served.sock), unix("hh", daemon.sock)]

    pushed: list[tuple[str, object]] = []

    async def scenario():
        async with Fleet(hosts, opener, on_push=lambda host, item: pushed.append((host, item)), **OPTIONS) as fleet:
            await until(lambda: len(fleet.requests()) == 4, what="four requests")
            seen = {"queue": [(r.host, r.approval.id) for r in fleet.requests()]}
            await fleet.approve("hh", 1)
            await fleet.deny("a", proposal.id, "not now")
            await until(lambda: [(r.host, r.approval.id) for r in fleet.requests()] == [("hh", 2), ("hh", 3)],
                        what="both answered requests to leave the queue")
            await until(lambda: any(isinstance(item, Event) for _, item in pushed), what="a's event pushed")
            with pytest.raises(HiveError, match="no host named 'elsewhere'"):
                await fleet.approve("elsewhere", 1)
            return seen

    seen = run_async(scenario())
    # hyperhive's requests are from January; a's was filed just now.
    assert seen["queue"] == [("hh", 1), ("hh", 2), ("hh", 3), ("a", proposal.id)]
    assert [a["status"] for a in daemon.approvals] == ["approved", "pending", "pending"]
    denied = run_async(UnixClient(str(served.sock)).approval(proposal.id))
    assert (denied.status, denied.note) == ("denied", "not now")
    # What a host pushes reaches a deploy log labelled with that host.
    assert ("a", "ApprovalResolved", proposal.id) in [
        (host, item.kind, item.id) for host, item in pushed if isinstance(item, Event)]


def test_a_read_only_host_refuses_in_the_client(daemon):
    async def scenario():
        async with Fleet([unix("hh", daemon.sock, read_only=True)], opener, **OPTIONS) as fleet:
            await until(lambda: fleet.links["hh"].link.state == LIVE, what="hh live")
            with pytest.raises(ReadOnly):
                await fleet.approve("hh", 1)
            bulk = await Bulk("stop", [Target("hh", "north")]).run(fleet.client, lambda h: 4)
            return bulk

    bulk = run_async(scenario())
    assert "read-only" in bulk.failed[0][1]
    assert not {"approve", "stop"} & set(daemon.received)
    assert daemon.agents["north"].running


def test_bulk_actions_keep_to_each_hosts_limit_and_sum_up_failures(served, daemon, tmp_path):
    daemon.gate = threading.Event()
    hosts = [unix("a", served.sock, parallel=1), unix("hh", daemon.sock, parallel=2),
             unix("dead", tmp_path / "dead.sock")]
    targets = [Target("a", "alpha"), Target("a", "beta"), Target("hh", "north"), Target("hh", "south"),
               Target("hh", "west"), Target("dead", "ghost")]

    async def scenario():
        async with Fleet(hosts, opener, **OPTIONS) as fleet:
            await until(lambda: fleet.links["a"].link.state == fleet.links["hh"].link.state == LIVE, what="live")
            lines: list[str] = []
            parallel = {h.name: h.parallel for h in hosts}
            run = asyncio.create_task(Bulk("stop", targets).run(fleet.client, parallel.__getitem__, lines.append))
            # hh's two slots fill and its third agent waits for one.
            await until(lambda: daemon.in_flight == 2, what="two stops in flight on hh")
            daemon.gate.set()
            bulk = await asyncio.wait_for(run, 120)
            rebuild = await Bulk("rebuild", [Target("hh", "north")]).run(fleet.client, parallel.__getitem__)
            await until(lambda: not any(r.running for r in fleet.links["a"].rows.values()), what="a's rows pushed")
            return bulk, lines, rebuild

    bulk, lines, rebuild = run_async(scenario())
    assert daemon.most_in_flight == 2
    assert not any(a.running for a in daemon.agents.values())
    assert lines[-1] == "5/6 done, 1 failed" and len(lines) == 6
    assert bulk.summary().splitlines()[0] == "stop: 1 of 6 failed"
    assert bulk.summary().splitlines()[1].startswith("  dead/ghost: dead is unreachable: ")
    assert rebuild.failed[0][1].startswith("rebuild is not available on this host")
    with pytest.raises(HiveError, match="destroy and purge stay one agent at a time"):
        Bulk("destroy", targets)


def test_a_link_cancelled_as_its_connection_opens_ends():
    """Closing a fleet cancels its links; a link whose connection opens in
    the same turn of the loop as that cancellation must end all the same,
    not go on to follow the host (which would hang the close for good)."""

    class Silent:
        async def offered(self):
            await asyncio.Event().wait()

        async def close(self):
            pass

    async def scenario():
        loop = asyncio.get_running_loop()
        fleet = Fleet([unix("a", "/nonexistent")], None, **OPTIONS)  # type: ignore[arg-type]
        link = fleet.links["a"]

        async def opener(host):
            opened = loop.create_future()

            def open_and_cancel():
                opened.set_result(Silent())
                task.cancel()

            loop.call_soon(open_and_cancel)
            return await opened

        link.opener = opener
        task = asyncio.create_task(link.run())
        done, _ = await asyncio.wait([task], timeout=30)
        return task in done and task.cancelled()

    assert run_async(scenario())
