"""Concurrent clients against a real `hive-tui serve` over its socket, round
after round, with the idle-hive invariants checked after every round: the
meta flake names exactly the agents the hive has, status never fails while
an agent goes away, queued approvals never hold up reads, pushes arrive in
order and the last pushed row is true."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sqlite3
from pathlib import Path

import pytest

from hive_tui.host import gitrepo
from hive_tui import wire
from hive_tui.host.flakelock import make_locker
from hive_tui.host.stateroot import StateRoot
from hive_tui.host.meta import MetaCommit, MetaFlake
from hive_tui.models import AgentStatus, Approval, Event, TagRecord, Transient

from .helpers import GATED_BUILD, Gate, agent_files, wait_for
from .invariants import check_invariants
from .serving import ServerProcess, seeded_hive, stop_agents

TIMEOUT = 60.0


class Client:
    """One connection to the socket, one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, sock: Path) -> "Client":
        return cls(*await asyncio.open_unix_connection(str(sock), limit=wire.MAX_REQUEST))

    async def call(self, cmd: str, **fields) -> dict:
        self.writer.write(wire.encode({"cmd": cmd, **fields}))
        await self.writer.drain()
        return json.loads(await self.reader.readline())

    async def ok(self, cmd: str, **fields) -> dict:
        answer = await self.call(cmd, **fields)
        assert answer["ok"], (cmd, fields, answer)
        return answer

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


class Subscriber:
    """A `subscribe` stream whose pushes are collected as they arrive."""

    def __init__(self, client: Client):
        self.client = client
        self.items: list[object] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None

    @classmethod
    async def open(cls, sock: Path) -> "Subscriber":
        sub = cls(await Client.open(sock))
        await sub.client.ok("subscribe")
        sub._task = asyncio.create_task(sub._read())
        return sub

    async def _read(self) -> None:
        while line := await self.client.reader.readline():
            self.items.append(wire.decode_push(json.loads(line)))
            self._changed.set()

    async def until(self, condition, what: str):
        """Wait for `condition(items)` to hold, for at most TIMEOUT seconds."""
        async def wait():
            while not (found := condition(self.items)):
                self._changed.clear()
                await self._changed.wait()
            return found

        try:
            return await asyncio.wait_for(wait(), TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None

    def resolved(self) -> set[int]:
        return {i.id for i in self.items if isinstance(i, Event) and i.kind == "ApprovalResolved"}

    async def close(self) -> None:
        assert self._task is not None
        self._task.cancel()
        await self.client.close()


class DatabaseReader:
    """The served hive's database, opened read-only beside the server (WAL lets a reader in)."""

    def __init__(self, path: Path):
        self.path = path

    def _rows(self, sql: str) -> list[tuple]:
        with contextlib.closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)) as conn:
            return conn.execute(sql).fetchall()

    def transients(self) -> list[Transient]:
        return [Transient(agent=a, kind=k, since=s)
                for a, k, s in self._rows("SELECT agent, kind, since FROM transients ORDER BY agent")]

    def broken(self) -> dict[str, str]:
        return dict(self._rows("SELECT agent, reason FROM broken"))


class SocketHive:
    """What check_invariants reads, answered by a served hive: its verbs over
    the socket, its repos read from disk (git reads need no owner) and its
    database read-only."""

    def __init__(self, root: Path, sock: Path):
        self.state = StateRoot.at(root)
        self.meta = MetaFlake(self.state, make_locker("builtin"))
        self.db = DatabaseReader(self.state.db)
        self.sock = sock

    def _call(self, cmd: str, **fields) -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(TIMEOUT)
            s.connect(str(self.sock))
            s.sendall(wire.encode({"cmd": cmd, **fields}))
            answer = json.loads(s.makefile("rb").readline())
        assert answer["ok"], (cmd, answer)
        return answer

    def events(self) -> list[Event]:
        return [Event.from_wire(e) for e in self._call("events")["events"]]

    def meta_log(self) -> list[MetaCommit]:
        return [MetaCommit(**c) for c in self._call("meta_log")["commits"]]

    def approvals(self) -> list[Approval]:
        return [Approval.from_wire(a) for a in self._call("approvals")["approvals"]]

    def history(self, name: str) -> list[TagRecord]:
        return [TagRecord.from_wire(t) for t in self._call("history", name=name)["tags"]]

    def agents(self) -> list[str]:
        return self._call("list")["agents"]

    def transients_in_flight(self) -> list[Transient]:
        return [Transient.from_wire(t) for t in self._call("transients")["transients"]]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 300))


@pytest.fixture
def serve(tmp_path):
    """A served hive seeded with `agents`; the server and every agent stopped afterwards."""
    started: list[ServerProcess] = []

    def start(agents: dict[str, dict[str, bytes]]) -> ServerProcess:
        root = tmp_path / "hive"
        seeded_hive(root, agents)
        started.append(ServerProcess(root, tmp_path / "host.sock").start())
        return started[-1]

    yield start
    for server in started:
        server.kill()
        _release_gates(server.root)
        stop_agents(server.root)


def _release_gates(root: Path) -> None:
    """Let any build still blocked at a gate finish, so no process outlives the test."""
    for gate in (root / "agents").glob("*/gate"):
        try:
            fd = os.open(gate, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            continue  # nobody reads it
        os.write(fd, b"no\n")
        os.close(fd)
    for gate in (root / "agents").glob("*/gate"):
        gate.unlink()


def new_meta_commits(hive: SocketHive, head: str) -> list[str]:
    """Messages of the meta commits made after `head`, oldest first."""
    log = hive.meta_log()
    return [c.message for c in reversed(log[:[c.sha for c in log].index(head)])]


async def gather_ok(clients: list[Client], calls: list[tuple[str, dict]]) -> list[dict]:
    """Each call on its own connection, all at once; every one must answer ok."""
    return await asyncio.gather(*(c.ok(cmd, **fields) for c, (cmd, fields) in zip(clients, calls)))


async def spawn_all(clients: list[Client], sub: Subscriber, names: list[str]) -> list[Approval]:
    """Request and approve a spawn of each name at once; the resolved approvals."""
    asked = await gather_ok(clients, [("request_spawn", {"name": n}) for n in names])
    ids = [a["approval"]["id"] for a in asked]
    await gather_ok(clients, [("approve", {"id": i}) for i in ids])
    await sub.until(lambda _: set(ids) <= sub.resolved(), f"spawns {ids} to resolve")
    answers = await gather_ok(clients, [("approval", {"id": i}) for i in ids])
    return [Approval.from_wire(a["approval"]) for a in answers]


# -- 1. the meta flake names exactly the agents the hive has -----------------

SWARM = [f"d{i}" for i in range(6)]


def test_concurrent_spawns_and_destroys_commit_once_each_and_leave_no_stray_node(serve):
    server = serve({"keeper": agent_files()})
    hive = SocketHive(server.root, server.sock)

    async def rounds():
        clients = [await Client.open(server.sock) for _ in SWARM]
        sub = await Subscriber.open(server.sock)
        for round in range(5):
            head = hive.meta_log()[0].sha
            spawned = await spawn_all(clients, sub, SWARM)
            assert [(a.agent, a.status) for a in spawned] == [(n, "approved") for n in SWARM]
            check_invariants(hive)
            await gather_ok(clients, [("destroy", {"name": n, "purge": round % 2 == 1}) for n in SWARM])
            check_invariants(hive)
            assert hive.agents() == ["keeper"]
            # One commit per success, and nothing else.
            made = new_meta_commits(hive, head)
            assert sorted(m.split()[0] + " " + m.split()[1] for m in made) == sorted(
                [f"spawn {n}" for n in SWARM] + [f"destroy {n}" for n in SWARM]), (round, made)
        await sub.close()
        for c in clients:
            await c.close()

    run(rounds())


def test_a_spawn_that_fails_while_another_action_renders_is_never_committed(serve):
    server = serve({"gx": agent_files(build=GATED_BUILD), "beta": agent_files()})
    hive = SocketHive(server.root, server.sock)
    state = hive.state

    async def rounds():
        a, b = await Client.open(server.sock), await Client.open(server.sock)
        sub = await Subscriber.open(server.sock)
        await a.ok("destroy", name="gx")  # its repos stay, with the gated build
        for round in range(4):
            head = hive.meta_log()[0].sha
            gate = Gate(state.agent_state("gx"))
            asked = await a.ok("request_spawn", name="gx")
            gx = asked["approval"]["id"]
            await a.ok("approve", id=gx)
            # gx's container exists and its build waits at the gate.
            await asyncio.to_thread(wait_for, lambda: state.container("gx").is_dir(), TIMEOUT, "gx's container")
            if round % 2 == 0:
                await b.ok("destroy", name="beta")
                expected = ["destroy beta"]
            else:
                (beta,) = await spawn_all([b], sub, ["beta"])
                assert beta.status == "approved"
                expected = ["spawn beta"]
            assert "gx" not in hive.meta.agents()
            await asyncio.to_thread(gate.open, "fail")
            await sub.until(lambda _: gx in sub.resolved(), "gx's spawn to fail")
            assert (await a.ok("approval", id=gx))["approval"]["status"] == "failed"
            check_invariants(hive)
            assert [m.split()[0] + " " + m.split()[1] for m in new_meta_commits(hive, head)] == expected
        await sub.close()
        await a.close()
        await b.close()

    run(rounds())


# -- 2. status never fails while an agent is purged -----------------------------

KEEPERS = [f"a{i:02d}" for i in range(12)]


def test_agent_status_answers_for_the_rest_of_the_hive_while_agents_are_purged(serve):
    # Rows are built in name order: the keepers' rows come first and give a
    # purge time to finish between listing an agent and reading its row.
    server = serve({n: agent_files() for n in KEEPERS})
    hive = SocketHive(server.root, server.sock)
    names = [f"p{i}" for i in range(4)]

    async def poll(client: Client, done: asyncio.Event, seen: list[dict]) -> None:
        while not done.is_set():
            seen.append(await client.call("agent_status"))

    async def rounds():
        clients = [await Client.open(server.sock) for _ in names]
        pollers = [await Client.open(server.sock) for _ in range(3)]
        sub = await Subscriber.open(server.sock)
        polls = 0
        for _ in range(4):
            await spawn_all(clients, sub, names)
            done, seen = asyncio.Event(), []
            polling = [asyncio.create_task(poll(p, done, seen)) for p in pollers]
            await gather_ok(clients, [("destroy", {"name": n, "purge": True}) for n in names])
            done.set()
            await asyncio.gather(*polling)
            failed = [s["error"] for s in seen if not s["ok"]]
            assert failed == [], failed[:3]
            for s in seen:
                assert KEEPERS == [r["name"] for r in s["agent_statuses"]][:len(KEEPERS)]
            polls += len(seen)
            check_invariants(hive)
        assert polls > 0
        await sub.close()
        for c in clients + pollers:
            await c.close()

    run(rounds())


# -- 3. approvals waiting their turn do not hold up the socket ------------------

BACKLOG = 70  # more than the engine's worker threads


def test_a_backlog_of_approvals_for_one_agent_leaves_reads_answering(serve):
    server = serve({"alpha": agent_files(build=GATED_BUILD, **{"version.txt": b"0\n"})})
    hive = SocketHive(server.root, server.sock)
    state = hive.state
    # Sibling proposals on alpha's main: the first to deploy wins, the rest fail as stale.
    proposed = gitrepo.open_repo(state.proposed("alpha"))
    base = proposed.references[gitrepo.MAIN].target
    shas = []
    for i in range(BACKLOG):
        sha = gitrepo.commit_files(proposed, {"version.txt": f"{i + 1}\n".encode()}, f"v{i + 1}")
        proposed.references.create(f"refs/heads/v{i + 1}", sha)
        proposed.references[gitrepo.MAIN].set_target(base)
        shas.append(f"v{i + 1}")
    gate = Gate(state.agent_state("alpha"))

    async def scenario():
        client, reader = await Client.open(server.sock), await Client.open(server.sock)
        sub = await Subscriber.open(server.sock)
        ids = [(await client.ok("request_apply_commit", agent="alpha", commit_ref=sha))["approval"]["id"]
               for sha in shas]

        async def approve_all_then_read():
            for i in ids:
                await client.ok("approve", id=i)
            return (await reader.ok("list"))["agents"], (await reader.ok("pending"))["approvals"]

        try:
            agents, pending = await asyncio.wait_for(approve_all_then_read(), 30)
        except TimeoutError:
            raise AssertionError("the socket stopped answering behind a backlog of approvals") from None
        # They answered while the first build was still held at its gate.
        assert gate.path.exists() and not any(i in sub.resolved() for i in ids)
        assert agents == ["alpha"] and pending == []
        await asyncio.to_thread(gate.open, "ok")
        await sub.until(lambda _: set(ids) <= sub.resolved(), "every approval to resolve")
        outcome = [a.terminal_tag.split("/")[0] for a in hive.approvals()]
        assert outcome == ["deployed"] + ["failed"] * (BACKLOG - 1)
        check_invariants(hive)
        await sub.close()
        await client.close()
        await reader.close()

    run(scenario())


# -- 4. events are pushed in seq order --------------------------------------------

def test_events_reach_every_subscriber_in_seq_order(serve):
    agents = ["e0", "e1"]
    server = serve({n: agent_files() for n in agents})
    hive = SocketHive(server.root, server.sock)

    async def rounds():
        clients = [await Client.open(server.sock) for _ in range(17)]
        # Each push goes to the listeners in turn: many of them keep a thread
        # pushing long after its commit, while others commit theirs.
        subs = [await Subscriber.open(server.sock) for _ in range(16)]
        for round in range(10):
            first = max([e.seq for e in hive.events()], default=0)
            # Denials are cheap, so their events crowd together.
            asked = await gather_ok(clients, [("request_spawn", {"name": f"s{round}x{i}"}) for i in range(16)])
            ids = [a["approval"]["id"] for a in asked]
            await gather_ok(clients, [("deny", {"id": i}) for i in ids] +
                            [("rebuild", {"name": agents[round % 2]})])
            last = max(e.seq for e in hive.events())
            for sub in subs:
                await sub.until(lambda items: any(isinstance(i, Event) and i.seq == last for i in items),
                                f"event {last}")
                seqs = [i.seq for i in sub.items if isinstance(i, Event) and i.seq > first]
                assert seqs == list(range(first + 1, last + 1)), (round, seqs)
            check_invariants(hive)
        for c in [*clients, *subs]:
            await c.close()

    run(rounds())


# -- 5. the last pushed row is the agent as it is -----------------------------

def test_the_last_pushed_row_matches_the_pause_marker(serve):
    server = serve({"alpha": agent_files(), "beta": agent_files()})
    hive = SocketHive(server.root, server.sock)
    marker = hive.state.agent_state("alpha") / "paused"

    async def rounds():
        clients = [await Client.open(server.sock) for _ in range(16)]
        # Listeners are called in turn: the one checked comes after others, so
        # each push to it lands well after the row it carries was read.
        others = [await Subscriber.open(server.sock) for _ in range(20)]
        sub = await Subscriber.open(server.sock)
        mark = 0
        for round in range(25):
            await gather_ok(clients, [("set_paused", {"name": "alpha", "paused": i % 2 == round % 2})
                                      for i in range(len(clients))])
            # A push after them all: whatever was pushed for alpha has arrived by then.
            flag = round % 2 == 0
            await clients[0].ok("set_paused", name="beta", paused=flag)
            await sub.until(lambda items: any(isinstance(i, AgentStatus) and i.name == "beta"
                                              and i.paused == flag for i in items[mark:]), "beta's row")
            rows = [i for i in sub.items if isinstance(i, AgentStatus) and i.name == "alpha"]
            assert rows[-1].paused == marker.exists(), round
            mark = len(sub.items)
        check_invariants(hive)
        for s in [*others, sub]:
            await s.close()
        for c in clients:
            await c.close()

    run(rounds())
