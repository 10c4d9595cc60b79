"""The manager's socket, served beside the admin socket by a real `hive-tui
serve`: the manager files requests and reads their outcome there, and
nothing that resolves a request or acts on a container gets through."""

from __future__ import annotations

import grp
import json
import os
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from hive_tui.host import gitrepo
from hive_tui import wire
from hive_tui.client.stream import UnixClient
from hive_tui.host.policy import MANAGER, Policy
from hive_tui.verbs import VERBS

from .helpers import agent_files, wait_for
from .serving import EXE, ServerProcess, observable, raw_connection, run_async, seeded_hive, stop_agents

ADMIN_GROUP, MANAGER_GROUP = "nogroup", "daemon"


def answers(path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "hive"
    seeded_hive(root, {"alpha": agent_files(), "beta": agent_files()})
    manager_dir = tmp_path / "manager"
    manager_dir.mkdir()
    server = ServerProcess(root, tmp_path / "host.sock", "--group", ADMIN_GROUP,
                           "--manager-socket", str(manager_dir / "manager.sock"),
                           "--manager-group", MANAGER_GROUP)
    server.manager_sock = manager_dir / "manager.sock"
    server.start()
    wait_for(lambda: answers(server.manager_sock), what="the manager's socket to listen")
    yield server
    server.kill()
    stop_agents(root)


def commit_proposal(root, name: str, files: dict[str, bytes]) -> None:
    """The manager commits to the agent's proposed repo."""
    gitrepo.commit_files(gitrepo.open_repo(root / "proposed" / name), files, "change")



def every_verb(tmp_path) -> dict[str, dict]:
    """Each verb either socket could take, with its fields, read off the
    table of verbs: a verb added there is covered here unasked."""
    return {name: verb.fields for name, verb in VERBS.items()}


def well_formed(cmd: str, fields: dict, approval_id: int) -> dict:
    """A request the admin socket would carry out: right types, real names and ids."""
    by_name = {"scope": {"agent_names": ["beta"]}, "commit_ref": "main", "id": approval_id}
    by_type = {int: approval_id, str: "beta", bool: True, dict: {"agent_names": ["beta"]}}
    request = {"cmd": cmd}
    for name, spec in fields.items():
        request[name] = by_name.get(name, by_type[spec.type])
    return request


def test_every_operator_verb_is_refused_on_the_managers_socket_and_changes_nothing(served, tmp_path):
    commit_proposal(served.root, "beta", {"notes.txt": b"one\n"})
    manager = UnixClient(str(served.manager_sock))
    pending = run_async(manager.propose("beta", "main", "notes"))
    operator_verbs = {cmd: fields for cmd, fields in every_verb(tmp_path).items() if cmd not in MANAGER.verbs}
    assert {"approve", "deny", "start", "stop", "restart", "rebuild", "destroy", "set_paused",
            "logs", "subscribe", "subscribe_agent_status"} <= set(operator_verbs)
    requests = [well_formed(cmd, fields, pending.id) for cmd, fields in sorted(operator_verbs.items())]
    requests.append({"cmd": "logs", "name": "beta", "lines": 5, "follow": True})
    requests.append({"cmd": "destroy", "name": "beta", "purge": True})
    requests.append({"cmd": "stop", "scope": {"agent_names": ["beta"]}, "graceful": False})

    before = observable(served.root)
    s = raw_connection(served.manager_sock)
    reader = s.makefile("rb")
    for request in requests:
        s.sendall(wire.encode(request))
        answer = json.loads(reader.readline())
        assert answer["ok"] is False, (request, answer)
        assert f"'{request['cmd']}' is the operator's: the manager's socket does not offer it" in answer["error"]
    # The connection is still the manager's to use.
    s.sendall(wire.encode({"cmd": "pending"}))
    assert [a["id"] for a in json.loads(reader.readline())["approvals"]] == [pending.id]
    s.close()
    assert observable(served.root) == before
    still = run_async(UnixClient(str(served.sock)).approval(pending.id))
    assert (still.status, still.terminal_tag) == ("pending", None)
    rows = {r.name: (r.running, r.paused) for r in run_async(UnixClient(str(served.sock)).status())}
    assert rows == {"alpha": (True, False), "beta": (True, False)}


def test_an_unknown_verb_on_the_managers_socket_is_refused_as_unknown(served):
    s = raw_connection(served.manager_sock)
    reader = s.makefile("rb")
    s.sendall(b'{"cmd": "approve_all\\u001b[2J"}\n')
    answer = json.loads(reader.readline())
    assert answer == wire.error("unknown verb 'approve_all\\x1b[2J'")
    s.sendall(b'{"id": 1}\n')
    assert json.loads(reader.readline())["error"] == "missing field `cmd` (the verb)"
    s.close()


def test_the_manager_files_and_follows_while_the_operator_approves(served):
    root = served.root
    commit_proposal(root, "beta", {"notes.txt": b"one\n"})

    async def scenario():
        manager = UnixClient(str(served.manager_sock))
        operator = UnixClient(str(served.sock))
        seen = {"list": await manager.agents(), "whoami": await manager.whoami()}
        change = await manager.propose("beta", "main", "notes")
        spawn = await manager.request_spawn("gamma", "a third")
        seen["pending"] = [a.id for a in await manager.pending()]
        seen["diff"] = [f["path"] for f in (await manager.diff(change.id))["files"]]
        seen["approved"] = await operator.approve(change.id)
        seen["denied"] = await operator.deny(spawn.id, "not now")
        seen["approval"] = await manager.approval(spawn.id)
        seen["approvals"] = [(a.id, a.status) for a in await manager.approvals()]
        seen["history"] = [t.tag for t in await manager.history("beta")]
        seen["events"] = [(e.kind, e.id, e.status, e.note) for e in await manager.events()]
        seen["later"] = await manager.events(since=max(e.seq for e in await manager.events()))
        # The admin socket still does everything.
        seen["paused"] = (await operator.set_paused("alpha", True)).paused
        await operator.restart("alpha")
        seen["logs"] = await operator.logs("alpha", 5)
        await manager.close()
        await operator.close()
        return seen

    seen = run_async(scenario())
    assert seen["list"] == ["alpha", "beta"] and seen["whoami"]["uid"] == os.getuid()
    assert seen["pending"] == [1, 2] and seen["diff"] == ["notes.txt"]
    assert seen["approved"].terminal_tag == "deployed/1"
    assert (seen["denied"].status, seen["approval"].status, seen["approval"].note) == ("denied", "denied", "not now")
    assert seen["approvals"] == [(1, "approved"), (2, "denied")]
    assert seen["history"] == ["proposal/1", "approved/1", "building/1", "deployed/1"]
    assert ("ApprovalResolved", 1, "approved", None) in seen["events"]
    assert ("ApprovalResolved", 2, "denied", "not now") in seen["events"]
    assert seen["later"] == []
    assert seen["paused"] is True and any("alpha started" in line for line in seen["logs"])


def test_the_cli_through_the_managers_socket(served):
    commit_proposal(served.root, "beta", {"notes.txt": b"one\n"})
    host = f"unix:{served.manager_sock}"

    def cli(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(EXE), "--host", host, *argv], capture_output=True, text=True, timeout=60)

    proposed = cli("--json", "propose", "beta", "main")
    assert proposed.returncode == 0, proposed.stderr
    approval_id = json.loads(proposed.stdout)["id"]
    refused = cli("deny", str(approval_id))
    assert refused.returncode == 1
    assert "'deny' is the operator's: the manager's socket does not offer it" in refused.stderr
    assert cli("--json", "pending").stdout.count('"status": "pending"') == 1


def test_each_socket_is_0660_and_owned_by_its_own_group(served):
    for path, group in ((served.sock, ADMIN_GROUP), (served.manager_sock, MANAGER_GROUP)):
        st_ = os.stat(path)
        assert stat.S_ISSOCK(st_.st_mode) and stat.S_IMODE(st_.st_mode) == 0o660
        assert (st_.st_uid, st_.st_gid) == (os.getuid(), grp.getgrnam(group).gr_gid), path


def test_sigterm_removes_both_sockets(served):
    assert served.terminate() == 0
    assert not served.sock.exists() and not served.manager_sock.exists()


def serve_argv(root, *extra: str) -> list[str]:
    return [str(EXE), "--state", str(root), "--locker", "builtin", "serve", *extra]


@pytest.mark.parametrize("extra, error", [
    (["--manager-socket", "{admin}"], "the manager's socket must not be the admin socket"),
    (["--manager-group", MANAGER_GROUP], "--manager-group needs --manager-socket"),
    (["--manager-socket", "{manager}", "--manager-group", "no-such-group"], "no group named 'no-such-group'"),
    (["--group", "no-such-group", "--manager-socket", "{manager}"], "no group named 'no-such-group'"),
])
def test_a_bad_manager_socket_option_is_refused_and_leaves_no_socket(tmp_path, extra, error):
    root = tmp_path / "hive"
    seeded_hive(root, {})
    admin, manager = tmp_path / "host.sock", tmp_path / "manager.sock"
    extra = [x.format(admin=admin, manager=manager) for x in extra]
    run = subprocess.run(serve_argv(root, "--socket", str(admin), *extra), capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and error in run.stderr, run.stderr
    assert not admin.exists() and not manager.exists()


def test_the_manager_policy_names_only_real_verbs(tmp_path):
    verbs = every_verb(tmp_path)
    assert MANAGER.verbs <= set(verbs)
    assert not MANAGER.verbs & {"approve", "deny", "start", "stop", "restart", "rebuild", "destroy", "set_paused"}
    with pytest.raises(ValueError, match="names no such verb: aprove"):
        Policy("manager's", frozenset({"list", "aprove"}))


CONNECT = "import socket, sys\ns = socket.socket(socket.AF_UNIX)\ntry:\n    s.connect(sys.argv[1])\nexcept PermissionError:\n    print('refused')\nelse:\n    print('connected')\n"


def connects_as(path, gid: int) -> str:
    """Whether a process of the unprivileged user `nobody` in group `gid` alone may connect to `path`."""
    run = subprocess.run(["/usr/bin/python3", "-c", CONNECT, str(path)], user="nobody", group=gid,
                         extra_groups=[], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user to connect needs root")
def test_each_socket_admits_its_own_group_only(tmp_path):
    import shutil
    import tempfile

    root = tmp_path / "hive"
    seeded_hive(root, {})
    # A folder anyone may traverse, so only the sockets' own modes decide.
    folder = Path(tempfile.mkdtemp(prefix="hive-sockets-", dir="/tmp"))
    folder.chmod(0o755)
    admin, manager = folder / "host.sock", folder / "manager.sock"
    server = ServerProcess(root, admin, "--group", ADMIN_GROUP,
                           "--manager-socket", str(manager), "--manager-group", MANAGER_GROUP).start()
    try:
        wait_for(lambda: answers(manager), what="the manager's socket to listen")
        admins, managers, others = (grp.getgrnam(g).gr_gid for g in (ADMIN_GROUP, MANAGER_GROUP, "users"))
        assert (connects_as(admin, admins), connects_as(manager, admins)) == ("connected", "refused")
        assert (connects_as(admin, managers), connects_as(manager, managers)) == ("refused", "connected")
        assert (connects_as(admin, others), connects_as(manager, others)) == ("refused", "refused")
    finally:
        server.kill()
        shutil.rmtree(folder)
