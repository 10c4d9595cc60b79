"""The SSH transport: asyncssh to a host, then a direct-streamlocal channel to
its hive-tui socket (what `ssh -L local:/remote.sock` does).

OpenSSH's own files decide who and how: ~/.ssh/config (aliases, users,
ports, identity files), the user's keys and agent, and ~/.ssh/known_hosts,
whose entries are matched as `ssh` matches them.
A host key that is unknown or has changed is refused, never accepted on the
fly; `trust_host_key` adds an unknown one after the operator has seen its
fingerprint. Agent forwarding stays off whatever ~/.ssh/config says, unless
our own host entry asks for it. Keepalives notice a dead link in under a
minute.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import asyncssh

from ..config import Host
from ..errors import HiveError
from .base import HostKeyRefused
from .stream import StreamClient, Unreachable

__all__ = ["HostKeyRefused", "SshClient", "trust_host_key"]

KEEPALIVE_INTERVAL = 15
KEEPALIVE_COUNT_MAX = 3
CONNECT_TIMEOUT = 20


def known_hosts_path() -> Path:
    return Path("~/.ssh/known_hosts").expanduser()


def known_host_name(hostname: str, port: int | None) -> str:
    """The name OpenSSH files a host under in known_hosts: bare on port 22, `[host]:port` on any other."""
    return hostname if port in (None, 22) else f"[{hostname}]:{port}"


async def _resolve(hostname: str, port: int | None) -> asyncssh.SSHClientConnectionOptions:
    """~/.ssh/config applied to a host as given: its HostName, Port and HostKeyAlias."""
    try:
        # config=() is asyncssh's "the default file": left out, no config is read at all.
        return await asyncssh.SSHClientConnectionOptions.construct(config=(), host=hostname, port=port or ())
    except (OSError, ValueError, asyncssh.Error) as e:
        raise HiveError(f"cannot read ~/.ssh/config for {hostname}: {e}") from None


def _lookup_name(options: asyncssh.SSHClientConnectionOptions) -> str:
    # As OpenSSH: a HostKeyAlias stands for the host whatever its port; else the
    # host's real name (its HostName, lower-cased) with the port off 22. Never
    # the alias typed, nor the address it resolves to (CheckHostIP is off by
    # default since OpenSSH 8.5).
    return options.host_key_alias or known_host_name(options.host.lower(), options.port)


KnownEntries = tuple[list[asyncssh.SSHKey], list[asyncssh.SSHKey], list[asyncssh.SSHKey]]


def _known_entries(name: str) -> KnownEntries:
    """The host keys, CA keys and revoked keys known_hosts holds for `name`, hashed entries too."""
    path = known_hosts_path()
    if not path.exists():
        return [], [], []
    try:
        known = asyncssh.read_known_hosts(str(path))
    except (OSError, ValueError, asyncssh.KeyImportError) as e:
        raise HiveError(f"cannot read {path}: {e}") from None
    # `name` already carries the port. Given no address and no port, asyncssh
    # matches that one name; given a port, it would fall back to the bare name,
    # which OpenSSH keeps for port 22.
    host_keys, ca_keys, revoked = known.match(name, "", None)[:3]
    return list(host_keys), list(ca_keys), list(revoked)


async def offered_host_key(hostname: str, port: int | None) -> asyncssh.SSHKey:
    key = await asyncssh.get_server_host_key(hostname, port or ())
    if key is None:
        raise HiveError(f"{known_host_name(hostname, port)} offered no host key")
    return key


def _describe(key: asyncssh.SSHKey) -> str:
    return f"{key.get_algorithm()} {key.get_fingerprint('sha256')}"


async def explain_refused_key(hostname: str, port: int | None) -> HostKeyRefused:
    """Why the host's key was refused, with the fingerprint it offers."""
    where = _lookup_name(await _resolve(hostname, port))
    try:
        key = await offered_host_key(hostname, port)
        offered = _describe(key)
    except (OSError, asyncio.TimeoutError, asyncssh.Error, HiveError) as e:
        key, offered = None, f"(could not fetch it: {e})"
    known, _, revoked = _known_entries(where)
    if key is not None and any(k.public_data == key.public_data for k in revoked):
        return HostKeyRefused(f"the host key of {where}, {offered}, is marked @revoked in "
                              f"{known_hosts_path()}. Refusing to connect.")
    if known:
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

    The host is named as OpenSSH would look it up (~/.ssh/config applied).
    Refuses a host that already has a different known key: that is a change
    to investigate, not a key to add beside the old one.
    """
    where = _lookup_name(await _resolve(hostname, port))
    try:
        key = await offered_host_key(hostname, port)
    except (OSError, asyncio.TimeoutError, asyncssh.Error) as e:
        raise HiveError(f"cannot fetch the host key of {where}: {type(e).__name__}: {e}") from None
    fingerprint = _describe(key)
    known, _, revoked = _known_entries(where)
    if any(k.public_data == key.public_data for k in revoked):
        raise HostKeyRefused(f"{where} offers {fingerprint}, which {known_hosts_path()} marks @revoked. "
                             f"Not adding it.")
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
        super().__init__(host.address(), redial_for)
        if not host.hostname or not host.socket:
            raise HiveError(f"ssh host {host.name} needs an address and a socket path")
        self.host = host
        self._ssh: asyncssh.SSHClientConnection | None = None

    async def options(self) -> asyncssh.SSHClientConnectionOptions:
        """The connection's options: ~/.ssh/config applied, then what we insist on."""
        h = self.host
        options = await asyncssh.SSHClientConnectionOptions.construct(
            config=(), host=h.hostname, port=h.port or (), username=h.user or (),
            # Explicit, so `ForwardAgent yes` in ~/.ssh/config cannot turn it on.
            agent_forwarding=h.forward_agent,
            keepalive_interval=KEEPALIVE_INTERVAL, keepalive_count_max=KEEPALIVE_COUNT_MAX,
            connect_timeout=CONNECT_TIMEOUT,
        )
        # The keys known for the host as OpenSSH names it, handed over already
        # matched: asyncssh's own lookup would also take a bare entry for any port.
        # Read at each connect, so a key trusted meanwhile counts.
        return await asyncssh.SSHClientConnectionOptions.construct(
            options, known_hosts=_known_entries(_lookup_name(options)))

    async def _connection(self) -> asyncssh.SSHClientConnection:
        if self._ssh is not None and not self._ssh.is_closed():
            return self._ssh
        h = self.host
        try:
            self._ssh = await asyncssh.connect(h.hostname, port=h.port or (), options=await self.options())
        except asyncssh.HostKeyNotVerifiable:
            raise await explain_refused_key(cast(str, h.hostname), h.port) from None
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
