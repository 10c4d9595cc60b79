"""`--all-hosts`: the read verbs asked of every host in the hosts file at once,
against two real `hive-tui serve` processes (one through a real sshd), the
fake hyperhive daemon, a socket nobody serves and a server that never answers."""

from __future__ import annotations

import json
import socket
import subprocess
import textwrap

import pytest

from hive_tui.client.stream import UnixClient
from hive_tui.host import gitrepo

from .helpers import agent_files
from .hyperhive_daemon import sample_daemon
from .serving import EXE, ServerProcess, run_async, seeded_hive, stop_agents
from .sshd import start_sshd


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    roots = {"a": tmp_path / "hive-a", "b": tmp_path / "hive-b"}
    seeded_hive(roots["a"], {"alpha": agent_files(), "beta": agent_files()})
    seeded_hive(roots["b"], {"gamma": agent_files()})
    servers = [ServerProcess(roots["a"], tmp_path / "a.sock").start(),
               ServerProcess(roots["b"], tmp_path / "b.sock").start()]
    sshd = start_sshd(tmp_path, monkeypatch)
    sshd.trust()
    # Listens, and never accepts nor answers: a host that hangs.
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow.bind(str(tmp_path / "slow.sock"))
    slow.listen(8)
    daemon = sample_daemon(tmp_path / "hh.sock").__enter__()
    answering = f"""\
        hosts:
          a:
            transport: unix
            socket: {servers[0].sock}
          b-ssh:
            transport: ssh
            address: {sshd.user}@127.0.0.1:{sshd.port}
            socket: {servers[1].sock}
          hh:
            transport: unix
            socket: {daemon.sock}
        """
    failing = """\
          dead:
            transport: unix
            socket: {dead}
          slow:
            transport: unix
            socket: {slow}
        """.format(dead=tmp_path / "dead.sock", slow=tmp_path / "slow.sock")
    files = {"good": tmp_path / "good.yaml", "all": tmp_path / "all.yaml"}
    files["good"].write_text(textwrap.dedent(answering))
    files["all"].write_text(textwrap.dedent(answering) + textwrap.indent(textwrap.dedent(failing), "  "))
    try:
        yield files, servers
    finally:
        daemon.close()
        slow.close()
        sshd.stop()
        for server in servers:
            server.kill()
        for root in roots.values():
            stop_agents(root)


def hive_tui(config, *args: str, code: int) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(EXE), "--config", str(config), *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    return proc


def test_every_host_at_once(fleet):
    files, servers = fleet
    proc = hive_tui(files["all"], "--all-hosts", "--timeout", "8", "--json", "status", code=3)
    rows = json.loads(proc.stdout)
    assert [(r["host"], r["name"]) for r in rows] == [
        ("a", "alpha"), ("a", "beta"), ("b-ssh", "gamma"), ("hh", "north"), ("hh", "south"), ("hh", "west")]
    # The failed hosts are named on stderr, each with its reason, while the others printed.
    errors = dict(line.removeprefix("hive-tui: ").split(": ", 1) for line in proc.stderr.splitlines())
    assert set(errors) == {"dead", "slow"}, proc.stderr
    assert "cannot reach" in errors["dead"] and errors["slow"] == "no answer within 8s"

    text = hive_tui(files["good"], "--all-hosts", "status", code=0).stdout.splitlines()
    assert text[0].split() == ["HOST", "NAME", "STATE", "DEPLOYED", "FLAGS", "MODEL", "STATUS"]
    assert [line.split()[:2] for line in text[1:]] == [
        ["a", "alpha"], ["a", "beta"], ["b-ssh", "gamma"], ["hh", "north"], ["hh", "south"], ["hh", "west"]]


def test_pending_history_and_events_labelled_with_their_host(fleet):
    files, servers = fleet
    gitrepo.commit_files(gitrepo.open_repo(servers[0].root / "proposed" / "beta"), {"n.txt": b"1\n"}, "change")
    proposal = run_async(UnixClient(str(servers[0].sock)).propose("beta", "main", "notes"))

    pending = json.loads(hive_tui(files["good"], "--all-hosts", "--json", "pending", code=0).stdout)
    assert [(a["host"], a["id"]) for a in pending] == [("a", proposal.id), ("hh", 1), ("hh", 2), ("hh", 3)]
    assert hive_tui(files["good"], "--all-hosts", "pending", code=0).stdout.split()[:2] == ["HOST", "ID"]

    history = json.loads(hive_tui(files["good"], "--all-hosts", "--json", "history", "beta", code=0).stdout)
    # Only host a has an agent named beta; the others have no history of it, which is no failure.
    assert {t["host"] for t in history} == {"a"} and history[-1]["state"] == "proposal"

    # hyperhive's daemon has no helper events: a note on stderr, and no failure.
    proc = hive_tui(files["good"], "--all-hosts", "--json", "events", code=0)
    assert "hh: the helper events are not available on this host" in proc.stderr
    assert {e["host"] for e in json.loads(proc.stdout)} <= {"a", "b-ssh"}


def test_default_all_makes_the_read_verbs_ask_every_host(fleet, tmp_path):
    files, servers = fleet
    everything = tmp_path / "default-all.yaml"
    everything.write_text("default: all\n" + files["good"].read_text())
    rows = json.loads(hive_tui(everything, "--json", "status", code=0).stdout)
    assert {r["host"] for r in rows} == {"a", "b-ssh", "hh"}
    proc = hive_tui(everything, "stop", "alpha", code=1)
    assert "default is every host" in proc.stderr
    proc = hive_tui(everything, "--all-hosts", "stop", "alpha", code=1)
    assert "--all-hosts works with status, pending, events, history" in proc.stderr
