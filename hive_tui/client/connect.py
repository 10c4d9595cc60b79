"""Which client reaches a hive, and the engine behind an embedded one.

The CLI and the console open every hive here. A host named by `--host` or
the hosts file is reached over its Unix socket or SSH; no host (or an
`embedded` one) runs the engine in this process on a state root. Only that
last path imports the host side, and only when it is taken: a console on a
laptop reaching a server never loads it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs

from ..config import Host
from ..errors import HiveError
from .base import HiveClient

if TYPE_CHECKING:
    from ..host.engine import Engine


@dataclass(frozen=True)
class EngineOptions:
    """How an engine in this process runs its agents and locks its meta flake."""

    runtime: str = "local"
    locker: str = "auto"
    runtime_options: dict[str, Any] = field(default_factory=dict)


def default_state() -> Path:
    """The embedded demo hive's state root."""
    return platformdirs.user_data_path("hive-tui") / "demo"


def has_hive(root: Path) -> bool:
    from ..host.stateroot import StateRoot

    return StateRoot.at(root).db.exists()


def require_hive(root: Path, hint: str) -> None:
    """Refuse a state root with no hive: a mistyped path must not quietly become one."""
    if not has_hive(root):
        raise HiveError(f"no hive at {root}; `{hint}` seeds one")


def demo_hint(root: Path, state: Path | None) -> str:
    return "hive-tui demo" if state is None else f"hive-tui --state {root} demo"


def open_engine(root: Path, options: EngineOptions) -> Engine:
    """An engine on `root`, made there if there is none yet."""
    from ..host.engine import Engine

    return Engine(root, runtime=options.runtime, locker=options.locker,
                  runtime_options=dict(options.runtime_options))


async def open_client(host: Host | None, state: Path | None = None, options: EngineOptions = EngineOptions(),
                      seed_demo: bool = False, redial_for: float = 30.0) -> HiveClient:
    """A client for `host`; None means the engine in this process, on `state` or the demo hive.

    With `seed_demo`, a demo hive that is not there yet is seeded first;
    any other state root must hold a hive already. A host that is
    `read_only` gives a client that refuses every action. A server that
    cannot be reached is dialled again for up to `redial_for` seconds.
    """
    client = await _open_client(host, state, options, seed_demo, redial_for)
    client.read_only = host is not None and host.read_only
    return client


async def _open_client(host: Host | None, state: Path | None, options: EngineOptions,
                       seed_demo: bool, redial_for: float) -> HiveClient:
    if host is None or host.transport == "embedded":
        from .embedded import EmbeddedClient

        root = (host.state if host else None) or state or default_state()
        if seed_demo and root == default_state() and not has_hive(root):
            from ..host.demo_hive import seed_demo as seed

            engine = await asyncio.to_thread(open_engine, root, options)
            await asyncio.to_thread(seed, engine)
        else:
            await asyncio.to_thread(require_hive, root, demo_hint(root, state))
            engine = await asyncio.to_thread(open_engine, root, options)
        return EmbeddedClient(engine)
    if host.transport == "unix":
        from .stream import UnixClient

        if host.socket is None:
            raise HiveError(f"host {host.name} names no socket")
        return UnixClient(host.socket, redial_for)
    from .ssh import SshClient

    return SshClient(host, redial_for)
