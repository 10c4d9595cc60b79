"""The SSH transport through a real OpenSSH sshd on 127.0.0.1: the verbs, host
keys unknown, changed and trusted, ~/.ssh/config, and a server restart."""

from __future__ import annotations

import dataclasses
import fcntl
import os
import select
import struct
import subprocess
import termios
import time

import asyncssh
import pytest

from hive_tui.client.base import LinkState
from hive_tui.client.ssh import HostKeyRefused, SshClient, trust_host_key
from hive_tui.config import load_config, parse_host
from hive_tui.errors import HiveError
from hive_tui.models import AgentStatus

from .helpers import GATED_BUILD, agent_files, require_program
from .serving import EXE, ServerProcess, ride_through_restart, run_async, seeded_hive, stop_agents
from .sshd import start_sshd


@pytest.fixture
def hive(tmp_path, monkeypatch):
    """A served hive and an sshd in front of it, its host key already trusted."""
    root = tmp_path / "hive"
    seeded_hive(root, {"alpha": agent_files(), "beta": agent_files()})
    server = ServerProcess(root, tmp_path / "host.sock").start()
    sshd = start_sshd(tmp_path, monkeypatch)
    sshd.trust()
    yield server, sshd
    sshd.stop()
    server.kill()
    stop_agents(root)


def client_for(sshd, server, **kw) -> SshClient:
    return SshClient(parse_host(sshd.url(server.sock), load_config(None)), **kw)


def test_the_verbs_over_ssh(hive):
    server, sshd = hive
    from hive_tui.host import gitrepo

    gitrepo.commit_files(gitrepo.open_repo(server.root / "proposed" / "beta"), {"n.txt": b"1\n"}, "change")

    async def scenario():
        c = client_for(sshd, server)
        seen = {"agents": await c.agents(), "whoami": await c.whoami()}
        proposal = await c.propose("beta", "main", "notes")
        seen["diff"] = await c.diff(proposal.id)
        seen["approved"] = await c.approve(proposal.id)
        await c.stop("alpha")
        seen["running"] = {r.name: r.running for r in await c.status()}
        await c.start("alpha")
        seen["history"] = [t.tag for t in await c.history("beta")]
        async for line in c.follow_logs("beta", 5):
            seen["followed"] = line
            break
        await c.close()
        return seen

    seen = run_async(scenario())
    assert seen["agents"] == ["alpha", "beta"]
    # The server's peer is sshd's forwarding process, not this one.
    assert seen["whoami"]["pid"] != os.getpid() and seen["whoami"]["uid"] == os.getuid()
    assert [f["path"] for f in seen["diff"]["files"]] == ["n.txt"]
    assert seen["approved"].terminal_tag == "deployed/1"
    assert seen["running"] == {"alpha": False, "beta": True}
    assert seen["history"][-1] == "deployed/1"
    assert "beta" in seen["followed"]
    assert f"Accepted publickey for {sshd.user} from 127.0.0.1" in sshd.log.read_text()


def test_an_unknown_host_key_is_refused_with_its_fingerprint(hive):
    server, sshd = hive
    sshd.known_hosts.write_text("")
    with pytest.raises(HostKeyRefused) as refused:
        run_async(client_for(sshd, server).agents())
    message = str(refused.value)
    assert f"[127.0.0.1]:{sshd.port} is not known" in message
    assert sshd.fingerprint() in message and "Refusing to connect" in message
    assert sshd.known_hosts.read_text() == ""


def test_a_changed_host_key_is_refused(hive):
    server, sshd = hive
    sshd.trust(asyncssh.generate_private_key("ssh-ed25519"))
    before = sshd.known_hosts.read_text()
    with pytest.raises(HostKeyRefused) as refused:
        run_async(client_for(sshd, server).agents())
    assert "has CHANGED" in str(refused.value) and sshd.fingerprint() in str(refused.value)
    assert sshd.known_hosts.read_text() == before


def test_an_unknown_key_is_added_only_after_a_yes(hive):
    server, sshd = hive
    sshd.known_hosts.write_text("")
    shown = []
    with pytest.raises(HiveError, match="not trusted"):
        run_async(trust_host_key("127.0.0.1", sshd.port, lambda text: shown.append(text) or False))
    assert sshd.fingerprint() in shown[0] and sshd.known_hosts.read_text() == ""

    done = run_async(trust_host_key("127.0.0.1", sshd.port, lambda text: True))
    assert sshd.fingerprint() in done
    assert run_async(client_for(sshd, server).agents()) == ["alpha", "beta"]
    # A changed key is never added beside the old one.
    sshd.trust(asyncssh.generate_private_key("ssh-ed25519"))
    with pytest.raises(HostKeyRefused, match="already has a different key"):
        run_async(trust_host_key("127.0.0.1", sshd.port, lambda text: True))


def test_trust_host_refuses_without_a_terminal(hive):
    server, sshd = hive
    sshd.known_hosts.write_text("")
    proc = subprocess.run([str(EXE), "trust-host", sshd.url(server.sock)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert sshd.fingerprint() in proc.stderr and "stdin is not a terminal" in proc.stderr
    assert sshd.known_hosts.read_text() == ""


def test_ssh_config_is_honoured_but_never_turns_agent_forwarding_on(hive, monkeypatch):
    server, sshd = hive
    (sshd.home / ".ssh" / "config").write_text(
        f"Host rack\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n  ForwardAgent yes\n"
    )
    monkeypatch.setenv("SSH_AUTH_SOCK", str(sshd.home / "agent.sock"))
    host = parse_host(f"ssh://rack{server.sock}", load_config(None))
    client = SshClient(host)
    options = run_async(client.options())
    assert options.agent_forward_path is None
    assert (options.keepalive_interval, options.keepalive_count_max) == (15, 3)
    assert run_async(client.agents()) == ["alpha", "beta"]

    asked = SshClient(dataclasses.replace(host, forward_agent=True))
    assert run_async(asked.options()).agent_forward_path == str(sshd.home / "agent.sock")


def test_an_ssh_client_rides_through_a_server_restart(hive):
    server, sshd = hive
    seen = run_async(ride_through_restart(client_for(sshd, server), server))
    assert seen["before"] == seen["after"] == ["alpha", "beta"]
    assert isinstance(seen["lost"], LinkState) and not seen["lost"].connected
    assert isinstance(seen["back"], LinkState) and seen["back"].connected
    assert isinstance(seen["pushed"], AgentStatus) and seen["pushed"].paused


def test_a_deploy_outlives_its_ssh_client(hive):
    server, sshd = hive
    from hive_tui.host import gitrepo

    from .helpers import Gate, wait_for

    gitrepo.commit_files(gitrepo.open_repo(server.root / "proposed" / "alpha"), {"n.txt": b"1\n"}, "change")
    # alpha's build waits at the gate: the deploy is still running when the client leaves.
    gitrepo.commit_files(gitrepo.open_repo(server.root / "proposed" / "alpha"),
                         {"agent.yaml": agent_files(build=GATED_BUILD)["agent.yaml"]}, "gated build")
    gate = Gate(server.root / "agents" / "alpha")

    async def ask_and_leave():
        c = client_for(sshd, server)
        proposal = await c.propose("alpha", "main")
        await c.request({"cmd": "approve", "id": proposal.id})
        building = await c.transients()
        await c.close()
        return proposal.id, building

    id, building = run_async(ask_and_leave())
    assert [(t.agent, t.kind) for t in building] == [("alpha", "Rebuilding")]
    gate.open("ok")

    def resolved():
        a = run_async(client_for(sshd, server).approval(id))
        return a if a.terminal_tag else None

    assert wait_for(resolved, timeout=60, what="the deploy to finish").terminal_tag == f"deployed/{id}"


# -- host keys looked up as OpenSSH does: by the name given (or HostName), [name]:port off port 22 --

def hive_tui(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)


def assert_refused(proc: subprocess.CompletedProcess, *says: str) -> None:
    assert proc.returncode == 1, proc
    assert "Traceback" not in proc.stderr, proc.stderr
    for text in says:
        assert text in proc.stderr, proc.stderr


def test_a_host_reached_by_name_is_refused_until_trusted(hive):
    server, sshd = hive
    sshd.known_hosts.write_text("")
    url = sshd.url(server.sock, "localhost")
    where = f"[localhost]:{sshd.port}"
    assert_refused(hive_tui("--host", url, "status"), f"{where} is not known", sshd.fingerprint(),
                   "Refusing to connect")
    assert_refused(hive_tui("trust-host", url), f"{where} offers the host key", sshd.fingerprint(),
                   "stdin is not a terminal")
    assert sshd.known_hosts.read_text() == ""

    assert sshd.fingerprint() in run_async(trust_host_key("localhost", sshd.port, lambda text: True))
    assert sshd.known_hosts.read_text().startswith(f"{where} ssh-ed25519 ")
    proc = hive_tui("--host", url, "status")
    assert proc.returncode == 0 and "alpha" in proc.stdout, proc.stderr


def test_a_changed_key_of_a_host_reached_by_name_is_refused(hive):
    server, sshd = hive
    sshd.trust(asyncssh.generate_private_key("ssh-ed25519"), f"[localhost]:{sshd.port}")
    before = sshd.known_hosts.read_text()
    url = sshd.url(server.sock, "localhost")
    assert_refused(hive_tui("--host", url, "status"), f"[localhost]:{sshd.port} has CHANGED",
                   sshd.fingerprint())
    assert_refused(hive_tui("trust-host", url), "already has a different key", sshd.fingerprint())
    assert sshd.known_hosts.read_text() == before


def test_an_ssh_config_alias_is_looked_up_by_its_hostname_and_port(hive):
    server, sshd = hive
    (sshd.home / ".ssh" / "config").write_text(
        f"Host rack\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
    )
    sshd.known_hosts.write_text("")
    url = f"ssh://rack{server.sock}"
    # OpenSSH names the host by its HostName and Port, not by the alias.
    where = f"[127.0.0.1]:{sshd.port}"
    with pytest.raises(HostKeyRefused, match=rf"\[127\.0\.0\.1\]:{sshd.port} is not known") as refused:
        run_async(SshClient(parse_host(url, load_config(None))).agents())
    assert sshd.fingerprint() in str(refused.value)
    assert_refused(hive_tui("--host", url, "status"), f"{where} is not known", sshd.fingerprint())
    assert_refused(hive_tui("trust-host", url), f"{where} offers the host key", "stdin is not a terminal")

    assert f"added {where}" in run_async(trust_host_key("rack", None, lambda text: True))
    assert run_async(SshClient(parse_host(url, load_config(None))).agents()) == ["alpha", "beta"]
    sshd.trust(asyncssh.generate_private_key("ssh-ed25519"))
    assert_refused(hive_tui("--host", url, "status"), f"{where} has CHANGED", sshd.fingerprint())


def test_a_hashed_known_hosts_entry_is_matched(hive):
    server, sshd = hive
    hash_known_hosts = [require_program("ssh-keygen"), "-q", "-H", "-f", str(sshd.known_hosts)]
    sshd.trust(pattern=f"[localhost]:{sshd.port}")
    subprocess.run(hash_known_hosts, check=True, capture_output=True, timeout=30)
    assert sshd.known_hosts.read_text().startswith("|1|") and "localhost" not in sshd.known_hosts.read_text()
    url = sshd.url(server.sock, "localhost")
    assert run_async(SshClient(parse_host(url, load_config(None))).agents()) == ["alpha", "beta"]
    assert "already trusted" in run_async(trust_host_key("localhost", sshd.port, lambda text: True))

    sshd.trust(asyncssh.generate_private_key("ssh-ed25519"), f"[localhost]:{sshd.port}")
    subprocess.run(hash_known_hosts, check=True, capture_output=True, timeout=30)
    assert_refused(hive_tui("--host", url, "status"), f"[localhost]:{sshd.port} has CHANGED", sshd.fingerprint())


def test_an_entry_without_a_port_is_only_for_port_22(hive):
    server, sshd = hive
    # The right key, but filed under the bare name: OpenSSH takes that as port 22 only.
    sshd.trust(pattern="127.0.0.1")
    with pytest.raises(HostKeyRefused, match=rf"\[127\.0\.0\.1\]:{sshd.port} is not known"):
        run_async(client_for(sshd, server).agents())
    assert_refused(hive_tui("--host", sshd.url(server.sock), "status"), "is not known", sshd.fingerprint())
    assert "added" in run_async(trust_host_key("127.0.0.1", sshd.port, lambda text: True))
    assert run_async(client_for(sshd, server).agents()) == ["alpha", "beta"]


def test_the_console_refuses_a_default_host_with_an_unknown_key(hive, tmp_path):
    server, sshd = hive
    sshd.known_hosts.write_text("")
    hosts = tmp_path / "hosts.yaml"
    hosts.write_text(f"default: rack\nhosts:\n  rack:\n    transport: ssh\n"
                     f"    address: {sshd.user}@localhost:{sshd.port}\n    socket: {server.sock}\n")
    code, output = on_a_terminal([str(EXE), "--config", str(hosts)])
    assert code == 1, output
    assert "Traceback" not in output
    assert f"[localhost]:{sshd.port} is not known" in output and sshd.fingerprint() in output
    assert sshd.known_hosts.read_text() == ""


def on_a_terminal(argv: list[str], timeout: float = 60) -> tuple[int, str]:
    """Run argv on a pseudo-terminal of 120x40 until it exits: its exit code and all it wrote."""
    controller, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    try:
        proc = subprocess.Popen(argv, stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True)
        os.close(terminal)
        terminal = -1
        output = bytearray()
        deadline = time.monotonic() + timeout
        while True:
            ready, _, _ = select.select([controller], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                proc.kill()
                proc.wait(10)
                raise AssertionError(f"still running after {timeout}s: {output.decode(errors='replace')}")
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: every holder of the terminal has closed it
                break
            if not chunk:
                break
            output += chunk
        return proc.wait(timeout), output.decode(errors="replace")
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
