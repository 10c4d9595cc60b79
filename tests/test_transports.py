"""Every CLI verb through each transport: the engine in this process, a Unix
socket, and SSH through a real sshd. Same commands, same outcomes."""

from __future__ import annotations

import json
import subprocess

import pytest

from hive_tui.host import gitrepo

from .helpers import agent_files
from .serving import EXE, ServerProcess, seeded_hive, stop_agents
from .sshd import start_sshd


@pytest.fixture(params=["embedded", "unix", "ssh"])
def target(request, tmp_path, monkeypatch):
    root = tmp_path / "hive"
    seeded_hive(root, {"alpha": agent_files(), "beta": agent_files()})
    server = sshd = None
    try:
        if request.param == "embedded":
            yield ["--state", str(root), "--locker", "builtin"], root
            return
        server = ServerProcess(root, tmp_path / "host.sock").start()
        if request.param == "unix":
            yield ["--host", f"unix:{server.sock}"], root
            return
        sshd = start_sshd(tmp_path, monkeypatch)
        sshd.trust()
        yield ["--host", sshd.url(server.sock)], root
    finally:
        if sshd is not None:
            sshd.stop()
        if server is not None:
            server.kill()
        stop_agents(root)


def test_every_verb_through_the_transport(target):
    where, root = target

    def hive(*args: str, json_out: bool = False):
        argv = [str(EXE), *where, *(["--json"] if json_out else []), *args]
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (args, proc.stdout, proc.stderr)
        return json.loads(proc.stdout) if json_out else proc.stdout

    def manager_commits(text: bytes) -> None:
        gitrepo.commit_files(gitrepo.open_repo(root / "proposed" / "beta"), {"notes.txt": text}, "notes")

    assert [r["name"] for r in hive("status", json_out=True)] == ["alpha", "beta"]
    manager_commits(b"one\n")
    assert hive("propose", "beta", "main", "--description", "notes", json_out=True)["id"] == 1
    assert [a["id"] for a in hive("pending", json_out=True)] == [1]
    assert "deployed (deployed/1)" in hive("approve", "1")
    manager_commits(b"two\n")
    hive("propose", "beta", "main")
    assert hive("deny", "2", "--note", "not yet", json_out=True)["terminal_tag"] == "denied/2"
    assert [t["tag"] for t in hive("history", "beta", json_out=True)][-1] == "denied/2"
    assert [e["kind"] for e in hive("events", json_out=True)] == ["Rebuilt", "ApprovalResolved", "ApprovalResolved"]
    assert hive("meta-log").splitlines()[0].split()[1:3] == ["deploy", "beta"]
    spawn = hive("request-spawn", "gamma", json_out=True)
    hive("approve", str(spawn["id"]))
    for verb in ("stop", "start", "restart", "pause", "resume", "rebuild"):
        hive(verb, "alpha")
    assert "beta started" in hive("logs", "beta", "-n", "5")
    assert hive("destroy", "gamma", "--purge", "--yes") == "purged gamma\n"
    rows = hive("status", json_out=True)
    assert [(r["name"], r["running"], r["paused"]) for r in rows] == [("alpha", True, False), ("beta", True, False)]
    assert not (root / "applied" / "gamma").exists()
