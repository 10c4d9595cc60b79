"""The client interface: typed calls over the wire's requests and responses."""

from __future__ import annotations

import abc
import asyncio
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from ..errors import HiveError
from ..models import AgentStatus, Approval, Event, Lagged, TagRecord, Transient
from ..verbs import VERBS, check_fields


@dataclass(frozen=True)
class LinkState:
    """Pushed by a feed when its connection drops (connected=False) and when it is back.

    Whatever was pushed in between is lost: a watcher reconciles on reconnect.
    """

    connected: bool
    detail: str = ""


class HiveClient(abc.ABC):
    @abc.abstractmethod
    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request; return its response, checked (raises on `ok: false`)."""

    @abc.abstractmethod
    def feed(self) -> "Feed":
        """A subscription to what the hive pushes, as decoded models."""

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> "HiveClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def call(self, verb: str, **fields: Any) -> dict[str, Any]:
        """Any verb of the table by name; returns its response, checked.

        The verb and its fields are checked against the table here, before
        anything is sent, so a verb added to the table is reachable without a
        method of its own. The streams have theirs: `feed` and `follow_logs`.
        """
        spec = VERBS.get(verb)
        if spec is None:
            raise HiveError(f"unknown verb {verb!r}")
        if spec.streams and spec.call is None:
            raise HiveError(f"{verb} streams: use feed()")
        unknown = sorted(set(fields) - set(spec.fields))
        if unknown:
            raise HiveError(f"{verb} has no field {', '.join(f'`{name}`' for name in unknown)}")
        check_fields(fields, spec.fields)
        if fields.get("follow") is True:
            raise HiveError(f"{verb} with follow streams: use follow_logs()")
        return await self.request({"cmd": verb, **fields})

    # the verbs

    async def agents(self) -> list[str]:
        return list((await self.request({"cmd": "list"})).get("agents", []))

    async def status(self) -> list[AgentStatus]:
        r = await self.request({"cmd": "agent_status"})
        return [AgentStatus.from_wire(row) for row in r.get("agent_statuses", [])]

    async def pending(self) -> list[Approval]:
        r = await self.request({"cmd": "pending"})
        return [Approval.from_wire(a) for a in r.get("approvals", [])]

    async def approvals(self, status: str | None = None, agent: str | None = None) -> list[Approval]:
        r = await self.request({"cmd": "approvals", "status": status, "agent": agent})
        return [Approval.from_wire(a) for a in r.get("approvals", [])]

    async def propose(self, agent: str, commit_ref: str, description: str | None = None) -> Approval:
        r = await self.request(
            {"cmd": "request_apply_commit", "agent": agent, "commit_ref": commit_ref, "description": description}
        )
        return Approval.from_wire(r["approval"])

    async def request_spawn(self, name: str, description: str | None = None) -> Approval:
        r = await self.request({"cmd": "request_spawn", "name": name, "description": description})
        return Approval.from_wire(r["approval"])

    async def approval(self, id: int) -> Approval:
        return Approval.from_wire((await self.request({"cmd": "approval", "id": id}))["approval"])

    async def approve(self, id: int, on_progress: Callable[[object], None] | None = None,
                      wait: bool = True) -> Approval:
        """Approve; with `wait`, also wait until the deploy or spawn has run.

        Returns the approval as claimed, or, after waiting, as resolved. The
        engine emits one ApprovalResolved event per approval, once it is
        carried out. The subscription opens before the approval is sent, so
        that event cannot slip past unseen.
        """
        if not wait:
            return Approval.from_wire((await self.request({"cmd": "approve", "id": id}))["approval"])
        async with self.feed() as feed:
            await self.request({"cmd": "approve", "id": id})
            async for item in feed:
                if on_progress is not None:
                    on_progress(item)
                if isinstance(item, Event) and item.kind == "ApprovalResolved" and item.id == id:
                    break
                # Pushes were lost: the event may be among them.
                if isinstance(item, Lagged) or (isinstance(item, LinkState) and item.connected):
                    if any(e.kind == "ApprovalResolved" and e.id == id for e in await self.events()):
                        break
        return await self.approval(id)

    async def deny(self, id: int, note: str | None = None) -> Approval:
        r = await self.request({"cmd": "deny", "id": id, "note": note})
        return Approval.from_wire(r["approval"])

    async def history(self, name: str) -> list[TagRecord]:
        r = await self.request({"cmd": "history", "name": name})
        return [TagRecord.from_wire(t) for t in r.get("tags", [])]

    async def events(self, since: int = 0) -> list[Event]:
        r = await self.request({"cmd": "events", "since": since})
        return [Event.from_wire(e) for e in r.get("events", [])]

    async def meta_log(self) -> list[dict[str, Any]]:
        return list((await self.request({"cmd": "meta_log"})).get("commits", []))

    async def transients(self) -> list[Transient]:
        r = await self.request({"cmd": "transients"})
        return [Transient.from_wire(t) for t in r.get("transients", [])]

    async def start(self, name: str) -> bool | None:
        """Returns whether it was running already; None when the daemon does not say (hyperhive's)."""
        return _already(name, await self.request({"cmd": "start", "scope": {"agent_names": [name]}}))

    async def stop(self, name: str, graceful: bool = True) -> bool | None:
        """Returns whether it was stopped already; None when the daemon does not say (hyperhive's)."""
        return _already(name, await self.request({"cmd": "stop", "scope": {"agent_names": [name]},
                                                  "graceful": graceful}))

    async def restart(self, name: str) -> None:
        await self.request({"cmd": "restart", "name": name})

    async def rebuild(self, name: str) -> str | None:
        """Returns the meta commit the rebuild made, None when the lock did not move."""
        return (await self.request({"cmd": "rebuild", "name": name})).get("meta_commit")

    async def destroy(self, name: str, purge: bool = False) -> str | None:
        """Returns a warning when the destroy stands but the meta flake could not follow."""
        return (await self.request({"cmd": "destroy", "name": name, "purge": purge})).get("warning")

    async def set_paused(self, name: str, paused: bool) -> AgentStatus:
        r = await self.request({"cmd": "set_paused", "name": name, "paused": paused})
        rows = r.get("agent_statuses") or [{"name": name, "paused": paused}]
        return AgentStatus.from_wire(rows[0])

    async def logs(self, name: str, lines: int = 200) -> list[str]:
        return list((await self.request({"cmd": "logs", "name": name, "lines": lines})).get("lines", []))

    async def diff(self, id: int) -> dict[str, Any]:
        """An apply_commit proposal against the applied main: `files` (path, status,
        additions, deletions), `patch` and `truncated`."""
        return await self.request({"cmd": "diff", "id": id})

    async def urls(self) -> dict[str, Any]:
        return dict((await self.request({"cmd": "urls"})).get("urls") or {})

    async def whoami(self) -> dict[str, Any]:
        return await self.request({"cmd": "whoami"})

    @abc.abstractmethod
    def follow_logs(self, name: str, lines: int = 200) -> AsyncGenerator[str, None]:
        """The agent's last `lines` log lines, then each new one as it is written."""


class Feed:
    """Pushed items in arrival order; `async with` it to subscribe.

    `start(feed)` subscribes and returns the function that unsubscribes;
    either may be a coroutine function.
    """

    def __init__(self, start: Callable[["Feed"], Any]):
        self._start = start
        self._stop: Callable[[], Any] | None = None
        self._queue: asyncio.Queue[object] = asyncio.Queue()

    def put(self, item: object) -> None:
        self._queue.put_nowait(item)

    async def __aenter__(self) -> "Feed":
        stop = self._start(self)
        self._stop = await stop if inspect.isawaitable(stop) else stop
        return self

    async def __aexit__(self, *exc) -> None:
        if self._stop is not None:
            done = self._stop()
            if inspect.isawaitable(done):
                await done

    def __aiter__(self) -> AsyncIterator[object]:
        return self

    async def __anext__(self) -> object:
        return await self._queue.get()


def _already(name: str, answer: dict[str, Any]) -> bool | None:
    names = answer.get("already")
    return name in names if isinstance(names, list) else None
