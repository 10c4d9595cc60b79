"""The SSH transport: asyncssh to a host, then a direct-streamlocal channel to
its hive-tui socket (what `ssh -L local:/remote.sock` does).

OpenSSH's own files decide who and how: ~/.ssh/config (aliases, users,
ports, identity files), the user's keys and agent, and ~/.ssh/known_hosts.
A host key that is unknown or has changed is refused, never accepted on the
fly; `trust_host_key` adds an unknown one after the operator has seen its
fingerprint. Agent forwarding stays off whatever ~/.ssh/config says, unless
our own host entry asks for it. Keepalives notice a dead link in under a
minute.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncssh

from ..config import Host
from ..errors import HiveError
from .stream import StreamClient, Unreachable

KEEPALIVE_INTERVAL = 15
KEEPALIVE_COUNT_MAX = 3
CONNECT_TIMEOUT = 20


class HostKeyRefused(HiveError):
    pass


def known_hosts_path() -> Path:
    return Path("~/.ssh/known_hosts").expanduser()


def _known_host_pattern(hostname: str, port: int | None) -> str:
    return hostname if port in (None, 22) else f"[{hostname}]:{port}"


async def offered_host_key(hostname: str, port: int | None) -> asyncssh.SSHKey:
    key = await asyncssh.get_server_host_key(hostname, port or ())
    if key is None:
        raise HiveError(f"{_known_host_pattern(hostname, port)} offered no host key")
    return key


def _known_keys(hostname: str, port: int | None) -> list[asyncssh.SSHKey]:
    path = known_hosts_path()
    if not path.exists():
        return []
    try:
        known = asyncssh.read_known_hosts(str(path))
    except (OSError, ValueError, asyncssh.KeyImportError) as e:
        raise HiveError(f"cannot read {path}: {e}") from None
    return list(known.match(hostname, hostname, port)[0])


async def explain_refused_key(hostname: str, port: int | None) -> HostKeyRefused:
    """Why the host's key was refused, with the fingerprint it offers."""
    where = _known_host_pattern(hostname, port)
    try:
        key = await offered_host_key(hostname, port)
        offered = f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"
    except (OSError, asyncssh.Error, HiveError) as e:
        offered = f"(could not fetch it: {e})"
    if _known_keys(hostname, port):
        return HostKeyRefused(
            f"the host key of {where} has CHANGED: it now offers {offered}, which is not the key "
            f"{known_hosts_path()} holds for it. Refusing to connect. If the host was reinstalled, "
            f"remove its old line from {known_hosts_path()} after checking the new fingerprint."
        )
    return HostKeyRefused(
        f"the host key of {where} is not known: it offers {offered}. Refusing to connect. "
        f"If that fingerprint is the host's, `hive-tui trust-host` adds it to {known_hosts_path()}."
    )


async def trust_host_key(hostname: str, port: int | None, confirm) -> str:
    """Show the key `hostname` offers, and add it to known_hosts if `confirm(text)` says yes.

    Refuses a host that already has a different known key: that is a change
    to investigate, not a key to add beside the old one.
    """
    key = await offered_host_key(hostname, port)
    fingerprint = f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"
    where = _known_host_pattern(hostname, port)
    known = _known_keys(hostname, port)
    if any(k.public_data == key.public_data for k in known):
        return f"{where} is already trusted ({fingerprint})"
    if known:
        raise HostKeyRefused(f"{where} already has a different key in {known_hosts_path()}; "
                             f"it now offers {fingerprint}. Not adding it.")
    if not confirm(f"{where} offers the host key {fingerprint}"):
        raise HiveError(f"not trusted: {where}")
    path = known_hosts_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    line = f"{where} {key.export_public_key('openssh').decode().strip()}\n"
    with open(path, "a") as f:
        f.write(line)
    return f"added {where} ({fingerprint}) to {path}"


class SshClient(StreamClient):
    def __init__(self, host: Host, redial_for: float = 30.0):
        super().__init__(host.describe(), redial_for)
        if not host.hostname or not host.socket:
            raise HiveError(f"ssh host {host.name} needs an address and a socket path")
        self.host = host
        self._ssh: asyncssh.SSHClientConnection | None = None

    async def options(self) -> asyncssh.SSHClientConnectionOptions:
        """The connection's options: ~/.ssh/config applied, then what we insist on."""
        h = self.host
        return await asyncssh.SSHClientConnectionOptions.construct(
            host=h.hostname, port=h.port or (), username=h.user or (),
            # Explicit, so `ForwardAgent yes` in ~/.ssh/config cannot turn it on.
            agent_forwarding=h.forward_agent,
            keepalive_interval=KEEPALIVE_INTERVAL, keepalive_count_max=KEEPALIVE_COUNT_MAX,
            connect_timeout=CONNECT_TIMEOUT,
        )

    async def _connection(self) -> asyncssh.SSHClientConnection:
        if self._ssh is not None and not self._ssh.is_closed():
            return self._ssh
        h = self.host
        try:
            self._ssh = await asyncssh.connect(h.hostname, port=h.port or (), options=await self.options())
        except asyncssh.HostKeyNotVerifiable:
            raise await explain_refused_key(h.hostname, h.port) from None
        except asyncssh.PermissionDenied as e:
            raise HiveError(f"{self.label}: permission denied ({e.reason})") from None
        except (OSError, asyncssh.Error, asyncio.TimeoutError) as e:
            raise Unreachable(f"{type(e).__name__}: {e}") from None
        return self._ssh

    async def _open(self) -> tuple[Any, Any]:
        ssh = await self._connection()
        try:
            return await ssh.open_unix_connection(self.host.socket)
        except asyncssh.ChannelOpenError as e:
            # The host is up but its server is not (yet): worth dialling again.
            raise Unreachable(f"{self.host.socket} on {self.label}: {e.reason}") from None

    async def close(self) -> None:
        await super().close()
        if self._ssh is not None:
            self._ssh.close()
            await self._ssh.wait_closed()
            self._ssh = None
