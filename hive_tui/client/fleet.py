"""Many hosts at once: the CLI's `--all-hosts` reads, the fleet a console
watches, and bulk actions on agents marked across hosts.

Each host has a connection of its own. A slow, refused or dead host never
holds up another: every wait on one host is bounded, and every host is
asked in a task of its own. Nothing here knows how a host is reached: an
`Opener` gives a client for a host (the CLI's and the console's open it
through connect.py).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..config import Host
from ..errors import HiveError
from ..models import AgentStatus, Approval, Event, Lagged
from .base import HiveClient, HostKeyRefused, LinkState, Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
Opener = Callable[[Host], Awaitable[HiveClient]]

# How long one host may take to answer before it counts as failed.
DEFAULT_TIMEOUT = 10.0
# Closing a client waits no longer than this: a dead link must not hold the rest.
CLOSE_TIMEOUT = 2.0


@dataclass(frozen=True)
class HostAnswer(Generic[T]):
    """One host's answer to a question asked of every host: a value, or why there is none."""

    host: Host
    value: T | None = None
    # The host failed: unreachable, too slow, a refused key, an error.
    error: str | None = None
    # The host's daemon lacks what was asked (hyperhive's): not a failure.
    unavailable: str | None = None


async def _close(client: HiveClient) -> None:
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await client.close()
    except (asyncio.TimeoutError, OSError, HiveError) as e:
        log.info("closing a client: %s", e)


def _reason(e: BaseException, timeout: float) -> str:
    if isinstance(e, (asyncio.TimeoutError, TimeoutError)):
        return f"no answer within {timeout:g}s"
    if isinstance(e, HiveError):
        return str(e)
    return f"{type(e).__name__}: {e}"


async def ask_every_host(hosts: Iterable[Host], ask: Callable[[HiveClient], Awaitable[T]], opener: Opener,
                         timeout: float = DEFAULT_TIMEOUT) -> list[HostAnswer[T]]:
    """`ask` of every host at once, each on a connection of its own and within `timeout`; answers in host order."""

    async def one(host: Host) -> HostAnswer[T]:
        client: HiveClient | None = None
        try:
            async with asyncio.timeout(timeout):
                client = await opener(host)
                return HostAnswer(host, value=await ask(client))
        except Unavailable as e:
            return HostAnswer(host, unavailable=str(e))
        except (HiveError, OSError, asyncio.TimeoutError, TimeoutError) as e:
            return HostAnswer(host, error=_reason(e, timeout))
        finally:
            if client is not None:
                await _close(client)

    return list(await asyncio.gather(*(one(h) for h in hosts)))


# -- a host's link, kept up for as long as the fleet runs -----------------------

LIVE, CONNECTING, RECONNECTING = "live", "connecting", "reconnecting"
KEY_REFUSED, UNREACHABLE = "key refused", "unreachable"
_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/=]+")


@dataclass(frozen=True)
class Link:
    """Where a host's connection stands, as a header line shows it."""

    state: str = CONNECTING
    # The reason (unreachable), what the host offered (key refused), or what was lost.
    detail: str = ""
    # When the next try is due (time.time()), while not live.
    retry_at: float | None = None

    @property
    def fingerprint(self) -> str | None:
        """The fingerprint a refused host offered."""
        found = _FINGERPRINT.search(self.detail) if self.state == KEY_REFUSED else None
        return found.group(0) if found else None

    def describe(self, now: float | None = None) -> str:
        """One line: live; reconnecting… (next try in 3s); host key refused: SHA256:…; unreachable: why."""
        if self.state in (LIVE, CONNECTING):
            return self.state if self.state == LIVE else "connecting…"
        wait = ""
        if self.retry_at is not None:
            wait = f" (next try in {max(0, round(self.retry_at - (time.time() if now is None else now)))}s)"
        if self.state == RECONNECTING:
            return f"reconnecting…{wait}"
        if self.state == KEY_REFUSED:
            return f"host key refused: {self.fingerprint or self.detail}{wait}"
        return f"unreachable: {self.detail}{wait}"


class HostLink:
    """One host's connection: its own backoff, its rows and pending requests, kept current by its feed.

    A link that drops, or never comes up, is tried again after a delay that
    doubles up to `backoff_max`; a live link resets it. Each try reads the
    host afresh, since whatever was pushed while it was down is lost. A host
    whose daemon pushes only status rows (hyperhive's) has its pending
    requests read again every `poll` seconds.
    """

    def __init__(self, host: Host, opener: Opener, on_change: Callable[[str], None] = lambda name: None, *,
                 on_push: Callable[[str, object], None] = lambda name, item: None,
                 timeout: float = DEFAULT_TIMEOUT, backoff_first: float = 0.5, backoff_max: float = 30.0,
                 poll: float = 5.0):
        self.host = host
        self.opener = opener
        self.on_change = on_change
        # Every item the host pushes (deploy steps, events, rows...), labelled with the host: a deploy log's feed.
        self.on_push = on_push
        self.timeout, self.backoff_first, self.backoff_max, self.poll = timeout, backoff_first, backoff_max, poll
        self.link = Link()
        self.rows: dict[str, AgentStatus] = {}
        self.approvals: dict[int, Approval] = {}
        self.client: HiveClient | None = None
        # What the host's daemon offers (verb -> fields), once live: a view hides what it lacks.
        self.offer: dict[str, frozenset[str]] = {}
        # Tries so far, including the one under way: a test or a view can wait for the next.
        self.tries = 0

    @property
    def name(self) -> str:
        return self.host.name

    def _set(self, link: Link) -> None:
        self.link = link
        self.on_change(self.name)

    async def run(self) -> None:
        delay = self.backoff_first
        was_live = False
        while True:
            self.tries += 1
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for returns a result that
                # lands in the same turn as a cancellation and drops the cancellation, and a
                # link that outlives its fleet's close hangs that close.
                async with asyncio.timeout(self.timeout):
                    client = await self.opener(self.host)
            except (HiveError, OSError, asyncio.TimeoutError, TimeoutError) as e:
                failure: BaseException = e
            else:
                self.client = client
                try:
                    failure = await self._follow(client)
                    was_live = True
                    delay = self.backoff_first
                except (HiveError, OSError, asyncio.TimeoutError, TimeoutError) as e:
                    failure = e
                except Exception as e:
                    # A daemon that answers what this client cannot make sense of must not
                    # end the link for good: logged, shown as unreachable, tried again.
                    log.exception("%s: the link failed", self.name)
                    failure = e
                finally:
                    self.client = None
                    await _close(client)
            retry_at = time.time() + delay
            if isinstance(failure, HostKeyRefused):
                self._set(Link(KEY_REFUSED, str(failure), retry_at))
            elif was_live:
                # Once live, a host that is gone is being reconnected to, however long it takes.
                self._set(Link(RECONNECTING, _reason(failure, self.timeout), retry_at))
            else:
                self._set(Link(UNREACHABLE, _reason(failure, self.timeout), retry_at))
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max)

    async def _follow(self, client: HiveClient) -> BaseException:
        """Read the host, go live, and keep its rows current until the link drops; returns why it ended."""
        async with asyncio.timeout(self.timeout):
            offer = self.offer = await client.offered()
        # Subscribed before the first read, so nothing changes unseen between the two.
        async with client.feed() as feed:
            async with asyncio.timeout(self.timeout):
                await self._read(client)
            self._set(Link(LIVE))
            poller = None if "subscribe" in offer else asyncio.create_task(self._poll_pending(client))
            try:
                async for item in feed:
                    if isinstance(item, LinkState) and not item.connected:
                        return _Lost(item.detail or "connection lost")
                    if not isinstance(item, LinkState):
                        self.on_push(self.name, item)
                    if isinstance(item, Lagged) or isinstance(item, LinkState):
                        async with asyncio.timeout(self.timeout):
                            await self._read(client)
                    elif isinstance(item, AgentStatus):
                        self.rows[item.name] = item
                    elif isinstance(item, Approval):
                        self._approval(item)
                    elif isinstance(item, Event) and item.kind == "Destroyed":
                        self.rows.pop(item.agent, None)
                    else:
                        continue
                    self.on_change(self.name)
            finally:
                if poller is not None:
                    poller.cancel()
                    await asyncio.gather(poller, return_exceptions=True)
        return _Lost("the feed ended")

    async def _read(self, client: HiveClient) -> None:
        rows = await client.status()
        approvals = await client.pending() if await client.offers("pending") else []
        self.rows = {r.name: r for r in rows}
        self.approvals = {a.id: a for a in approvals}
        self.on_change(self.name)

    def _approval(self, a: Approval) -> None:
        if a.status == "pending":
            self.approvals[a.id] = a
        else:
            self.approvals.pop(a.id, None)

    async def _poll_pending(self, client: HiveClient) -> None:
        while True:
            await asyncio.sleep(self.poll)
            try:
                async with asyncio.timeout(self.timeout):
                    approvals = await client.pending()
            except (HiveError, OSError, asyncio.TimeoutError, TimeoutError) as e:
                log.info("%s: reading pending requests: %s", self.name, e)
                continue
            fresh = {a.id: a for a in approvals}
            if fresh != self.approvals:
                self.approvals = fresh
                self.on_change(self.name)

    def connected(self) -> HiveClient:
        """The live link's client; an action on a host that is not live is refused, not queued."""
        if self.client is None or self.link.state != LIVE:
            raise NotLive(f"{self.name} is {self.link.describe()}: not sent")
        return self.client


class NotLive(HiveError):
    """An action for a host whose link is not live: refused, never sent."""


class _Lost(HiveError):
    """A live link dropped."""


@dataclass(frozen=True)
class Request:
    """A pending request in the fleet's one queue, labelled with its host."""

    host: str
    approval: Approval


class Fleet:
    """Every host of the hosts file, each on a link of its own, read as one."""

    def __init__(self, hosts: Sequence[Host], opener: Opener, on_change: Callable[[str], None] = lambda name: None,
                 **link_options: Any):
        self.links = {h.name: HostLink(h, opener, on_change, **link_options) for h in hosts}
        self._tasks: list[asyncio.Task] = []

    async def __aenter__(self) -> "Fleet":
        self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(link.run(), name=f"fleet link {name}") for name, link in self.links.items()]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def agents(self) -> list[tuple[str, AgentStatus]]:
        """Every host's rows, host by host in the file's order, each host's by name."""
        return [(name, link.rows[agent]) for name, link in self.links.items() for agent in sorted(link.rows)]

    def requests(self) -> list[Request]:
        """Every host's pending requests in one queue, oldest first."""
        order = {name: i for i, name in enumerate(self.links)}
        queue = [Request(name, a) for name, link in self.links.items() for a in link.approvals.values()]
        # Hosts' clocks are RFC 3339 UTC; a request with no time goes last.
        return sorted(queue, key=lambda r: (r.approval.requested_at or "~", order[r.host], r.approval.id))

    def client(self, host: str) -> HiveClient:
        if host not in self.links:
            raise HiveError(f"no host named {host!r} in this fleet")
        return self.links[host].connected()

    async def approve(self, host: str, id: int) -> Approval:
        """Approve on that request's own host; claimed there, carried out in the background."""
        return await self.client(host).approve(id, wait=False)

    async def deny(self, host: str, id: int, note: str | None = None) -> Approval:
        return await self.client(host).deny(id, note)


# -- bulk actions --------------------------------------------------------------

BULK_ACTIONS = ("start", "stop", "restart", "rebuild", "pause", "resume")


@dataclass(frozen=True)
class Target:
    host: str
    agent: str


@dataclass
class Bulk:
    """One action on many marked agents: at most each host's `parallel` at once there, every host at once.

    `on_progress` gets the progress line after each agent is done, and
    `on_each` that agent and what it failed with (None when it did not).
    """

    action: str
    targets: list[Target]
    done: list[Target] = field(default_factory=list)
    failed: list[tuple[Target, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.action not in BULK_ACTIONS:
            raise HiveError(f"{self.action} is not a bulk action; those are {', '.join(BULK_ACTIONS)} "
                            f"(destroy and purge stay one agent at a time)")
        if len(set(self.targets)) != len(self.targets):
            raise HiveError("an agent is marked twice")

    def progress(self) -> str:
        line = f"{len(self.done)}/{len(self.targets)} done"
        return line + (f", {len(self.failed)} failed" if self.failed else "")

    def summary(self) -> str:
        """What failed, one line each; empty when nothing did."""
        if not self.failed:
            return ""
        lines = [f"{self.action}: {len(self.failed)} of {len(self.targets)} failed"]
        lines += [f"  {t.host}/{t.agent}: {why}" for t, why in self.failed]
        return "\n".join(lines)

    async def run(self, client: Callable[[str], HiveClient], parallel: Callable[[str], int],
                  on_progress: Callable[[str], None] = lambda line: None,
                  on_each: Callable[[Target, BaseException | None], None] = lambda target, failure: None) -> "Bulk":
        limits = {host: asyncio.Semaphore(max(1, parallel(host))) for host in {t.host for t in self.targets}}

        async def one(target: Target) -> None:
            failure: BaseException | None = None
            async with limits[target.host]:
                try:
                    await _act(client(target.host), self.action, target.agent)
                    self.done.append(target)
                except (HiveError, OSError, asyncio.TimeoutError, TimeoutError) as e:
                    failure = e
                    self.failed.append((target, _reason(e, DEFAULT_TIMEOUT)))
            on_each(target, failure)
            on_progress(self.progress())

        await asyncio.gather(*(one(t) for t in self.targets))
        return self


async def _act(client: HiveClient, action: str, agent: str) -> None:
    if action == "pause" or action == "resume":
        await client.set_paused(agent, action == "pause")
    elif action == "start":
        await client.start(agent)
    elif action == "stop":
        await client.stop(agent)
    elif action == "restart":
        await client.restart(agent)
    else:
        await client.rebuild(agent)
