"""A real OpenSSH sshd on 127.0.0.1 for one test: throwaway host and user keys,
and a HOME of the test's own, so ~/.ssh is the test's and not the machine's."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from .helpers import require_program, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_key(key: asyncssh.SSHKey, path: Path) -> None:
    key.write_private_key(str(path))
    path.chmod(0o600)
    key.write_public_key(str(path) + ".pub")


@dataclass
class Sshd:
    proc: subprocess.Popen
    port: int
    user: str
    host_key: asyncssh.SSHKey
    home: Path
    log: Path

    @property
    def known_hosts(self) -> Path:
        return self.home / ".ssh" / "known_hosts"

    def trust(self, key: asyncssh.SSHKey | None = None, pattern: str | None = None) -> None:
        """Write the host's key (or another) as the only known one for `pattern`
        (default: [127.0.0.1]:port, which is how OpenSSH names this host)."""
        public = (key or self.host_key).export_public_key("openssh").decode().strip()
        self.known_hosts.write_text(f"{pattern or f'[127.0.0.1]:{self.port}'} {public}\n")

    def url(self, socket_path: Path, hostname: str = "127.0.0.1") -> str:
        return f"ssh://{self.user}@{hostname}:{self.port}{socket_path}"

    def fingerprint(self) -> str:
        return self.host_key.get_fingerprint("sha256")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_sshd(base: Path, monkeypatch) -> Sshd:
    program = require_program("sshd") if shutil.which("sshd") else _sbin_sshd()
    folder = base / "sshd"
    folder.mkdir()
    home = base / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    monkeypatch.setenv("HOME", str(home))
    # No agent of the machine's: only the test's own key may get in.
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    write_key(host_key, folder / "host_ed25519")
    user_key = asyncssh.generate_private_key("ssh-ed25519")
    write_key(user_key, home / ".ssh" / "id_ed25519")
    (folder / "authorized_keys").write_text(user_key.export_public_key("openssh").decode())
    if os.geteuid() == 0:
        # Debian's sshd wants its privilege separation folder to exist.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = free_port()
    config = folder / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {folder / 'host_ed25519'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}",
        f"PidFile {folder / 'sshd.pid'}",
        "StrictModes no",
        "UsePAM no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password",
        "AllowStreamLocalForwarding yes",
        "X11Forwarding no",
        "LogLevel VERBOSE",
        "",
    ]))
    log = folder / "sshd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([program, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=out)

    def listening() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"sshd exited: {log.read_text()}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, what="sshd to listen")
    return Sshd(proc, port, getpass.getuser(), host_key, home, log)


def _sbin_sshd() -> str:
    # sshd lives in /usr/sbin, which a non-root PATH often lacks.
    if Path("/usr/sbin/sshd").exists():
        return "/usr/sbin/sshd"
    return require_program("sshd")
