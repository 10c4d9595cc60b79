"""The host admin socket, served by a real `hive-tui serve` process and
driven through real Unix sockets: every verb, the subscription, a deploy that
outlives its client, shutdown, restart, and what bad input cannot do."""

from __future__ import annotations

import grp
import json
import os
import socket
import stat
import subprocess

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hive_tui import wire
from hive_tui.client.base import LinkState
from hive_tui.client.stream import UnixClient
from hive_tui.host.engine import Engine
from hive_tui.models import AgentStatus, Approval, DeployStep, Event, Lagged, Transient

from .helpers import Gate, wait_for
from .serving import EXE, ServerProcess, observable, raw_connection, ride_through_restart, run_async, seeded_hive


def propose_on(root, name: str, files: dict[str, bytes]) -> None:
    """The manager commits to the agent's proposed repo (the server owns the engine)."""
    from hive_tui.host import gitrepo

    gitrepo.commit_files(gitrepo.open_repo(root / "proposed" / name), files, "change")


def test_the_socket_is_0660_and_each_peer_is_known_by_uid(served):
    mode = os.stat(served.sock).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660
    me = run_async(UnixClient(str(served.sock)).whoami())
    assert (me["uid"], me["gid"], me["pid"]) == (os.getuid(), os.getgid(), os.getpid())
    assert f"connection from pid {os.getpid()} uid {os.getuid()}" in served.log.read_text()


def test_every_verb_over_the_socket(served):
    root = served.root
    propose_on(root, "beta", {"notes.txt": b"one\n"})

    async def scenario():
        c = UnixClient(str(served.sock))
        seen = {}
        seen["list"] = await c.agents()
        seen["status"] = [r.name for r in await c.status()]
        first = await c.propose("beta", "main", "notes")
        seen["pending"] = [a.id for a in await c.pending()]
        seen["diff"] = await c.diff(first.id)
        seen["approved"] = await c.approve(first.id)
        propose_on(root, "beta", {"notes.txt": b"two\n"})
        second = await c.propose("beta", "main", "more notes")
        seen["denied"] = await c.deny(second.id, "not [b]now[/b]")
        spawn = await c.request_spawn("gamma", "a third")
        seen["spawned"] = await c.approve(spawn.id)
        seen["approvals"] = [(a.id, a.status) for a in await c.approvals()]
        seen["approval"] = await c.approval(second.id)
        seen["history"] = [t.tag for t in await c.history("beta")]
        seen["events"] = [e.kind for e in await c.events()]
        seen["meta_log"] = [m["message"].split()[0] for m in await c.meta_log()]
        await c.stop("beta")
        seen["stopped"] = {r.name: r.running for r in await c.status()}["beta"]
        await c.start("beta")
        await c.restart("beta")
        seen["paused"] = (await c.set_paused("beta", True)).paused
        seen["rebuilt"] = await c.rebuild("beta")
        seen["transients"] = await c.transients()
        seen["logs"] = await c.logs("beta", 50)
        seen["urls"] = (await c.request({"cmd": "urls"}))["urls"]
        seen["destroyed"] = await c.destroy("gamma", purge=True)
        seen["after"] = await c.agents()
        await c.close()
        return seen

    seen = run_async(scenario())
    assert seen["list"] == ["alpha", "beta"] and seen["status"] == ["alpha", "beta"]
    assert seen["pending"] == [1]
    assert [(f["path"], f["status"], f["additions"]) for f in seen["diff"]["files"]] == [("notes.txt", "A", 1)]
    assert "+one" in seen["diff"]["patch"] and seen["diff"]["truncated"] is False
    assert (seen["approved"].status, seen["approved"].terminal_tag) == ("approved", "deployed/1")
    assert (seen["denied"].terminal_tag, seen["denied"].note) == ("denied/2", "not [b]now[/b]")
    assert seen["spawned"].status == "approved"
    assert seen["approvals"] == [(1, "approved"), (2, "denied"), (3, "approved")]
    assert seen["approval"].status == "denied"
    assert seen["history"] == ["proposal/1", "approved/1", "building/1", "deployed/1", "proposal/2", "denied/2"]
    assert seen["events"] == ["Rebuilt", "ApprovalResolved", "ApprovalResolved", "Spawned", "ApprovalResolved"]
    assert seen["meta_log"][:2] == ["spawn", "deploy"]
    assert seen["stopped"] is False and seen["paused"] is True
    assert seen["rebuilt"] is None and seen["transients"] == []
    assert any("beta started" in line for line in seen["logs"])
    assert set(seen["urls"]) == {"domain", "home"}
    assert seen["destroyed"] is None and seen["after"] == ["alpha", "beta"]
    assert not (served.root / "applied" / "gamma").exists()


def test_the_subscription_pushes_what_a_console_needs(served):
    propose_on(served.root, "beta", {"notes.txt": b"one\n"})

    async def scenario():
        c = UnixClient(str(served.sock))
        items = []
        async with c.feed() as feed:
            approval = await c.propose("beta", "main")
            await c.approve(approval.id)
            await c.set_paused("alpha", True)
            async for item in feed:
                items.append(item)
                if isinstance(item, AgentStatus) and item.name == "alpha" and item.paused:
                    break
        await c.close()
        return items

    items = run_async(scenario())
    kinds = {type(i) for i in items}
    assert {Approval, DeployStep, Event, Transient, AgentStatus} <= kinds
    steps = [i.step for i in items if isinstance(i, DeployStep) and i.step != "output"]
    assert steps == ["captured", "tagging", "fast-forward", "meta-prepare", "rebuild", "finalize", "deployed"]
    assert [(t.kind, t.ended) for t in items if isinstance(t, Transient)] == [("Rebuilding", False), ("Rebuilding", True)]
    assert [i.status for i in items if isinstance(i, Approval)] == ["pending", "approved", "approved"]


def test_subscribe_agent_status_pushes_rows_only(served):
    s = raw_connection(served.sock)
    reader = s.makefile("rb")
    s.sendall(b'{"cmd": "subscribe_agent_status"}\n')
    assert json.loads(reader.readline()) == {"version": 1, "ok": True}
    run_async(UnixClient(str(served.sock)).set_paused("beta", True))
    row = json.loads(reader.readline())
    assert [(r["name"], r["paused"]) for r in row["agent_statuses"]] == [("beta", True)]
    s.close()


def test_a_deploy_outlives_the_client_that_asked_for_it(served):
    propose_on(served.root, "alpha", {"notes.txt": b"one\n"})
    gate = Gate(served.root / "agents" / "alpha")
    client = UnixClient(str(served.sock))
    approval = run_async(client.propose("alpha", "main"))
    s = raw_connection(served.sock)
    s.sendall(wire.encode({"cmd": "approve", "id": approval.id}))
    assert json.loads(s.makefile("rb").readline())["ok"] is True
    wait_for(lambda: run_async(UnixClient(str(served.sock)).transients()), what="the deploy to be building")
    s.close()  # the client goes away mid-deploy

    gate.open("ok")

    def resolved():
        a = run_async(UnixClient(str(served.sock)).approval(approval.id))
        return a if a.terminal_tag else None

    done = wait_for(resolved, timeout=60, what="the deploy to finish")
    assert done.terminal_tag == f"deployed/{approval.id}"
    rows = run_async(UnixClient(str(served.sock)).status())
    assert [r.transient for r in rows] == [None, None]


def test_sigterm_lets_the_deploy_in_flight_finish(served):
    propose_on(served.root, "alpha", {"notes.txt": b"one\n"})
    gate = Gate(served.root / "agents" / "alpha")
    approval = run_async(UnixClient(str(served.sock)).propose("alpha", "main"))
    run_async(UnixClient(str(served.sock)).request({"cmd": "approve", "id": approval.id}))
    wait_for(lambda: run_async(UnixClient(str(served.sock)).transients()), what="the deploy to be building")

    served.proc.send_signal(15)
    wait_for(lambda: not served.answers(), what="the server to stop taking connections")
    assert served.proc.poll() is None, "the server left before its deploy finished"
    gate.open("ok")
    assert served.proc.wait(60) == 0

    with Engine(served.root, locker="builtin") as engine:
        done = engine.approval(approval.id)
        assert (done.status, done.terminal_tag) == ("approved", f"deployed/{approval.id}")
        assert engine.meta_log()[0].message.startswith(f"deploy alpha deployed/{approval.id}")
        assert engine.interrupted == []
    assert not served.sock.exists()


def test_a_client_rides_through_a_server_restart(served):
    seen = run_async(ride_through_restart(UnixClient(str(served.sock)), served))
    assert seen["before"] == seen["after"] == ["alpha", "beta"]
    assert seen["lost"] == LinkState(False, f"lost unix:{served.sock}; reconnecting")
    assert seen["back"].connected
    assert isinstance(seen["pushed"], AgentStatus) and seen["pushed"].paused


def test_a_stale_socket_is_replaced_and_a_live_one_never_taken(served, tmp_path):
    served.terminate()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(served.sock))  # bound, never listening, left behind: what a killed server leaves
    stale.close()
    served.start()
    assert run_async(UnixClient(str(served.sock)).agents()) == ["alpha", "beta"]

    second = subprocess.run(
        [str(EXE), "--state", str(tmp_path / "other"), "--locker", "builtin", "serve", "--socket", str(served.sock)],
        capture_output=True, text=True, timeout=60,
    )
    assert second.returncode == 1
    assert f"a server is already listening on {served.sock}" in second.stderr
    assert run_async(UnixClient(str(served.sock)).agents()) == ["alpha", "beta"]

    not_a_socket = tmp_path / "plain-file"
    not_a_socket.write_text("keep me")
    third = subprocess.run(
        [str(EXE), "--state", str(tmp_path / "other"), "--locker", "builtin", "serve", "--socket", str(not_a_socket)],
        capture_output=True, text=True, timeout=60,
    )
    assert third.returncode == 1 and "exists and is not a socket" in third.stderr
    assert not_a_socket.read_text() == "keep me"


def test_a_stuck_subscriber_holds_up_no_one(served):
    stuck = raw_connection(served.sock)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(b'{"cmd": "subscribe"}\n')
    toggles = 2500

    async def busy():
        c = UnixClient(str(served.sock))
        for i in range(toggles):
            await c.set_paused("beta", i % 2 == 0)
        agents = await c.agents()
        await c.close()
        return agents

    assert run_async(busy()) == ["alpha", "beta"]
    # Now it reads: first the ack, then pushes, with a note of what it lost.
    reader = stuck.makefile("rb")
    assert json.loads(reader.readline()) == {"version": 1, "ok": True}
    lagged = None
    for _ in range(toggles):
        message = wire.decode_push(json.loads(reader.readline()))
        if isinstance(message, Lagged):
            lagged = message
            break
    assert lagged is not None and 0 < lagged.lagged < toggles
    stuck.close()


HOSTILE_LINES = [
    b"[" * 100_000,
    b"{" * 50_000,
    b"x" * (2 << 20),
    b"\xff\xfe\x00",
    b"",
    b"   ",
    b"null",
    b"NaN",
    b"1e999999",
    b'"cmd"',
    b'{"cmd": null}',
    b'{"cmd": "start", "scope": {}}',
    b'{"cmd": "start", "scope": {"agent_names": []}}',
    b'{"cmd": "stop", "scope": {"services": ["all"]}}',
    b'{"cmd": "destroy", "name": "../beta", "purge": true}',
    b'{"cmd": "set_paused", "name": "beta\\u001b[2J", "paused": true}',
    b'{"cmd": "approve", "id": 1e308}',
    b'{"cmd": "deny", "id": 99999999999999999999999}',
    b'{"cmd": "request_spawn", "name": "[b]x[/b]"}',
    b'{"cmd": "logs", "name": "beta", "lines": -1}',
    b'{"cmd": "logs", "name": "beta", "follow": "yes"}',
    b'{"cmd": "subscribe_everything"}',
]



def test_hostile_lines_are_answered_and_change_nothing(served):
    before = observable(served.root)
    s = raw_connection(served.sock)
    reader = s.makefile("rb")
    for line in HOSTILE_LINES:
        s.sendall(line + b"\n")
        answer = json.loads(reader.readline())
        assert answer["ok"] is False and answer["error"], (line[:40], answer)
    s.sendall(b'{"cmd": "list"}\n')
    assert json.loads(reader.readline())["agents"] == ["alpha", "beta"]
    s.close()
    assert observable(served.root) == before


# Requests built to be wrong: every verb, with fields of the wrong type, or
# names that can never be an agent's. None of them may change anything.
BAD_NAME = st.one_of(
    st.just(""), st.just(".."), st.text(max_size=20).map(lambda t: "../" + t),
    st.text(max_size=20).map(lambda t: "X" + t), st.text(alphabet="\x00\x1b[]/\\ \u202e", min_size=1, max_size=8),
)
WRONG = st.one_of(st.none(), st.floats(allow_nan=True), st.lists(st.integers(), max_size=3),
                  st.dictionaries(st.text(max_size=5), st.integers(), max_size=3), st.integers(max_value=0))
VERBS = ["list", "agent_status", "pending", "approve", "deny", "approval", "approvals", "request_apply_commit",
         "request_spawn", "history", "events", "meta_log", "start", "stop", "restart", "rebuild", "destroy",
         "set_paused", "logs", "diff", "transients", "urls", "whoami", "nope", ""]
FIELDS = ["id", "name", "agent", "note", "scope", "purge", "paused", "graceful", "lines", "commit_ref", "since"]
REQUESTS = st.builds(
    lambda cmd, fields: {"cmd": cmd, **fields},
    st.sampled_from(VERBS),
    st.dictionaries(st.sampled_from(FIELDS), st.one_of(WRONG, BAD_NAME), max_size=4),
)


def _nested(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)


LINES = st.one_of(
    REQUESTS.map(lambda r: json.dumps(r).encode()),
    st.binary(max_size=200).filter(lambda b: b"\n" not in b),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10), _nested,
                 max_leaves=10).map(lambda v: json.dumps(v).encode()),
)
READS = {"list", "agent_status", "pending", "approvals", "events", "meta_log", "transients", "urls", "whoami"}


def test_generated_junk_is_answered_and_changes_nothing(served):
    before = observable(served.root)
    s = raw_connection(served.sock)
    reader = s.makefile("rb")

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(line=LINES)
    def one(line):
        s.sendall(line + b"\n")
        answer = json.loads(reader.readline())
        assert answer["version"] == 1
        if answer["ok"]:
            # Only a read can succeed: a request whose extra fields are ignored.
            assert json.loads(line)["cmd"] in READS, line

    one()
    s.sendall(b'{"cmd": "list"}\n')
    assert json.loads(reader.readline())["agents"] == ["alpha", "beta"]
    s.close()
    assert observable(served.root) == before


def test_the_socket_belongs_to_the_group_asked_for(tmp_path):
    root = tmp_path / "hive"
    seeded_hive(root, {})
    group = grp.getgrnam("nogroup")
    server = ServerProcess(root, tmp_path / "host.sock", "--group", "nogroup").start()
    try:
        st_ = os.stat(server.sock)
        assert (st_.st_gid, stat.S_IMODE(st_.st_mode)) == (group.gr_gid, 0o660)
    finally:
        server.kill()
    refused = subprocess.run(
        [str(EXE), "serve", "--state", str(root), "--socket", str(tmp_path / "other.sock"), "--group", "no-such-group"],
        capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode == 1 and "no group named 'no-such-group'" in refused.stderr
    assert not (tmp_path / "other.sock").exists()


def test_the_hosts_file_names_the_default_host(served, tmp_path):
    config = tmp_path / "hosts.yaml"
    config.write_text(f"default: here\nhosts:\n  here:\n    transport: unix\n    socket: {served.sock}\n")
    run = subprocess.run([str(EXE), "--config", str(config), "--json", "status"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert [r["name"] for r in json.loads(run.stdout)] == ["alpha", "beta"]
    named = subprocess.run([str(EXE), "--config", str(config), "--host", "here", "pending"],
                           capture_output=True, text=True, timeout=60)
    assert named.returncode == 0 and named.stdout == "no approvals\n"
    config.write_text("hosts:\n  here:\n    transport: unix\n    sockett: /x\n")
    broken = subprocess.run([str(EXE), "--config", str(config), "status"], capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1 and f"{config}:4:" in broken.stderr and "sockett" in broken.stderr
