"""Files an agent writes that are not what they claim: a FIFO, a link, a
folder, a socket, a device or a huge file where the engine expects a small
regular file. Each reads as unset with one warning, and never stalls the
engine or shows what a link points to."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import threading
from pathlib import Path

import pygit2
import pytest

from hive_tui.host import gitrepo
from hive_tui.host.agentconf import load_agent_config
from hive_tui.errors import BuildFailed
from hive_tui.host.fsutil import JSON_LIMIT

from .helpers import agent_files
from .serving import ServerProcess, raw_connection, seeded_hive, stop_agents

SECRET = json.dumps({"text": "the host's secret", "model": "secret-model", "needs_login": True})


def bounded(fn, timeout: float = 20.0):
    """`fn()` in a thread of its own: a call that blocks fails the test instead of hanging it."""
    result: list = []

    def call():
        try:
            result.append((fn(), None))
        except Exception as e:
            result.append((None, e))

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"still blocked after {timeout}s"
    value, error = result[0]
    if error is not None:
        raise error
    return value


def plant(path: Path, kind: str, tmp_path: Path) -> list[socket.socket]:
    """Make `path` a `kind` of thing that is no regular file to read; returns what must stay open."""
    keep: list[socket.socket] = []
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        secret = tmp_path / "secret.json"
        secret.write_text(SECRET)
        path.symlink_to(secret)
    elif kind == "directory":
        path.mkdir()
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(path))
        s.listen()
        keep.append(s)
    elif kind == "device":
        if os.geteuid() != 0:
            pytest.skip("making a device node needs root")
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # what /dev/zero is
    elif kind == "oversize":
        with open(path, "wb") as f:
            f.write(b'{"text": "' + b"x" * JSON_LIMIT + b'"}')
    return keep


def _unblock(path: Path) -> None:
    """Let a reader or writer stuck opening the FIFO at `path` go, so a failing test ends."""
    for flags in (os.O_WRONLY, os.O_RDONLY):
        try:
            os.close(os.open(path, flags | os.O_NONBLOCK))
        except OSError:
            pass


KINDS = ["fifo", "symlink", "directory", "socket", "device", "oversize"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_status_file_that_is_no_regular_file_reads_as_unset_with_one_warning(engine, tmp_path, kind, caplog):
    engine.install_agent("alpha", agent_files())
    status = engine.state.agent_state("alpha") / "status.json"
    keep = plant(status, kind, tmp_path)
    caplog.set_level(logging.WARNING, logger="hive_tui")
    try:
        rows = [bounded(lambda: engine.agent_status("alpha")) for _ in range(3)]
        rows += bounded(engine.status)
    finally:
        _unblock(status)
        for s in keep:
            s.close()
    for row in rows:
        assert row.running and row.status_text is None and row.active_model is None and not row.needs_login
        assert "secret" not in json.dumps(row.to_wire())
    warnings = [r for r in caplog.records if "status.json" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "secret" not in warnings[0].getMessage()


def test_a_status_file_mended_then_broken_again_warns_again(engine, tmp_path, caplog):
    engine.install_agent("alpha", agent_files())
    status = engine.state.agent_state("alpha") / "status.json"
    caplog.set_level(logging.WARNING, logger="hive_tui")
    status.mkdir()
    engine.agent_status("alpha")
    status.rmdir()
    status.write_text(json.dumps({"text": "fine"}))
    assert engine.agent_status("alpha").status_text == "fine"
    status.unlink()
    os.mkfifo(status)
    try:
        bounded(lambda: engine.agent_status("alpha"))
        bounded(lambda: engine.agent_status("alpha"))
    finally:
        _unblock(status)
    assert len([r for r in caplog.records if "status.json" in r.getMessage()]) == 2


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_a_pause_marker_is_never_followed(engine, tmp_path, kind):
    engine.install_agent("alpha", agent_files())
    marker = engine.state.agent_state("alpha") / "paused"
    outside = tmp_path / "outside-marker"
    if kind == "symlink":
        marker.symlink_to(outside)
    else:
        os.mkfifo(marker)

    try:
        assert not bounded(lambda: engine.agent_status("alpha")).paused
        assert bounded(lambda: engine.set_paused("alpha", True)).paused
    finally:
        _unblock(marker)
    assert not outside.exists(), "the pause wrote through the link"
    assert stat.S_ISREG(marker.lstat().st_mode)
    assert not engine.set_paused("alpha", False).paused and not os.path.lexists(marker)


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory", "device", "oversize"])
def test_an_agent_config_that_is_no_regular_file_fails_the_build(tmp_path, kind):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    path = checkout / "agent.yaml"
    plant(path, kind, tmp_path)
    if kind == "symlink":
        # A config the agent may not have: it lives outside its repo.
        (tmp_path / "secret.json").write_text("run: [sh, -c, 'echo outside']\n")
    try:
        with pytest.raises(BuildFailed, match="agent.yaml.*regular file") as caught:
            bounded(lambda: load_agent_config(checkout))
    finally:
        _unblock(path)
    assert "outside" not in str(caught.value)


def test_a_deploy_whose_agent_config_is_a_link_fails_and_the_agent_keeps_running(engine, tmp_path):
    engine.install_agent("alpha", agent_files())
    outside = tmp_path / "outside.yaml"
    outside.write_bytes(agent_files()["agent.yaml"])
    repo = gitrepo.open_repo(engine.state.proposed("alpha"))
    ref = repo.references[gitrepo.MAIN]
    builder = repo.TreeBuilder(repo[ref.target].peel(pygit2.Commit).tree)
    builder.insert("agent.yaml", repo.create_blob(str(outside).encode()), pygit2.GIT_FILEMODE_LINK)
    sig = gitrepo.signature()
    repo.create_commit(gitrepo.MAIN, sig, sig, "config from outside", builder.write(), [ref.target])

    result = engine.approve(engine.request_apply_commit("alpha", "main").id)

    assert result.terminal_tag == f"failed/{result.id}"
    assert "agent.yaml" in result.error and "regular file" in result.error
    assert engine.agent_status("alpha").running


def test_a_served_engine_keeps_answering_past_a_fifo_status_and_stops_on_sigterm(tmp_path):
    root = tmp_path / "hive"
    seeded_hive(root, {"alpha": agent_files()})
    status = root / "agents" / "alpha" / "status.json"
    os.mkfifo(status)
    server = ServerProcess(root, tmp_path / "host.sock").start()
    try:
        for i in range(120):
            cmd = ("agent_status", "list", "pending")[i % 3]
            with raw_connection(server.sock) as s:
                s.settimeout(20)
                s.sendall(json.dumps({"cmd": cmd}).encode() + b"\n")
                answer = json.loads(s.makefile("rb").readline())
            assert "error" not in answer, answer
        assert server.terminate(timeout=60) == 0
    finally:
        _unblock(status)
        server.kill()
        stop_agents(root)
    warnings = [line for line in server.log.read_text().splitlines() if "status.json" in line]
    assert len(warnings) == 1, warnings
