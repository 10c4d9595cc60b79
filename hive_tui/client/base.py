"""The client interface: typed calls over the wire's requests and responses."""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import inspect
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from ..errors import HiveError
from ..models import AgentStatus, Approval, Event, Lagged, LogLine, LogPage, TagRecord, Transient
from ..verbs import HYPERHIVE_OFFER, OURS, READ_ONLY, VERBS, Offer, check_fields
from ..wire import VersionMismatch

# How a daemon says it does not know a verb: ours ("unknown verb 'x'"),
# hyperhive's ("unknown command"), or serde's words for an enum's variant.
_UNKNOWN = re.compile(r"^unknown (verb|command|variant)\b", re.IGNORECASE)


class Unavailable(HiveError):
    """The host's daemon does not offer this: a feature to show as unavailable, not a failure."""


class HostKeyRefused(HiveError):
    """An SSH host's key is unknown, changed or revoked; the message carries the fingerprint it offers."""


class ReadOnly(HiveError):
    """The host is read-only for this client: an action refused before it is sent."""


@dataclass(frozen=True)
class LinkState:
    """Pushed by a feed when its connection drops (connected=False) and when it is back.

    Whatever was pushed in between is lost: a watcher reconciles on reconnect.
    """

    connected: bool
    detail: str = ""


class HiveClient(abc.ABC):
    # Set by whoever opens the client (the host's `read_only`, or --read-only):
    # every verb that changes something is refused here, whatever the server would allow.
    read_only: bool = False
    # What the daemon offers, learned once per connection (see `offered`).
    _offer: Offer | None = None

    @property
    def where(self) -> str:
        """The host as messages name it."""
        return str(getattr(self, "label", "this process"))

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
        return await self.ask({"cmd": verb, **fields})

    # what the daemon offers

    async def offered(self) -> Offer:
        """The verbs the daemon offers, each with the fields it takes; asked once per connection.

        Our engine answers `capabilities`. A daemon that does not know that
        verb is hyperhive's, which offers the verb table's hyperhive column.
        Refused for another reason (the manager's socket offers only some
        verbs), the whole table is assumed and each verb answers for itself.
        """
        if self._offer is None:
            try:
                answer = await self.request({"cmd": "capabilities"})
                self._offer = _read_offer(answer.get("verbs"))
            except VersionMismatch:
                raise
            except HiveError as e:
                self._offer = dict(HYPERHIVE_OFFER if _UNKNOWN.match(str(e)) else OURS)
        return self._offer

    def forget_offer(self) -> None:
        """Learn the offer again on the next request: the daemon behind the link may have changed."""
        self._offer = None

    async def offers(self, verb: str, field: str | None = None) -> bool:
        offer = await self.offered()
        return verb in offer and (field is None or field in offer[verb])

    async def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        """`request`, but only for what this client may send and the daemon offers.

        A read-only client refuses every verb that changes something. A verb
        the daemon lacks, or a field it lacks given a value, is refused as
        Unavailable before anything is sent; a field it lacks left unset is
        not sent. A verb the daemon answers as unknown is remembered as lacking.
        """
        cmd = str(message.get("cmd"))
        if self.read_only and cmd not in READ_ONLY:
            raise ReadOnly(f"{self.where} is read-only here: {cmd} refused")
        offer = await self.offered()
        if cmd not in offer:
            raise Unavailable(_unavailable(cmd, self.where))
        lacking = [k for k, v in message.items() if k != "cmd" and k not in offer[cmd] and v is not None]
        if lacking:
            raise Unavailable(f"{cmd} with {', '.join(lacking)} is not available on this host ({self.where})")
        sent = {k: v for k, v in message.items() if k == "cmd" or k in offer[cmd]}
        try:
            return await self.request(sent)
        except HiveError as e:
            if type(e) is HiveError and _UNKNOWN.match(str(e)):
                offer.pop(cmd, None)
                raise Unavailable(_unavailable(cmd, self.where)) from None
            raise

    # the verbs

    async def agents(self) -> list[str]:
        return list((await self.ask({"cmd": "list"})).get("agents", []))

    async def status(self) -> list[AgentStatus]:
        r = await self.ask({"cmd": "agent_status"})
        return [AgentStatus.from_wire(row) for row in r.get("agent_statuses", [])]

    async def pending(self) -> list[Approval]:
        r = await self.ask({"cmd": "pending"})
        return [Approval.from_wire(a) for a in r.get("approvals", [])]

    async def approvals(self, status: str | None = None, agent: str | None = None) -> list[Approval]:
        r = await self.ask({"cmd": "approvals", "status": status, "agent": agent})
        return [Approval.from_wire(a) for a in r.get("approvals", [])]

    async def propose(self, agent: str, commit_ref: str, description: str | None = None) -> Approval:
        r = await self.ask(
            {"cmd": "request_apply_commit", "agent": agent, "commit_ref": commit_ref, "description": description}
        )
        return Approval.from_wire(r["approval"])

    async def request_spawn(self, name: str, description: str | None = None) -> Approval:
        r = await self.ask({"cmd": "request_spawn", "name": name, "description": description})
        return Approval.from_wire(r["approval"])

    async def approval(self, id: int) -> Approval:
        return Approval.from_wire((await self.ask({"cmd": "approval", "id": id}))["approval"])

    async def approve(self, id: int, on_progress: Callable[[object], None] | None = None,
                      wait: bool = True) -> Approval:
        """Approve; with `wait`, also wait until the deploy or spawn has run.

        Returns the approval as claimed, or, after waiting, as resolved. The
        engine emits one ApprovalResolved event per approval, once it is
        carried out. The subscription opens before the approval is sent, so
        that event cannot slip past unseen.
        """
        if not wait or not (await self.offers("subscribe") and await self.offers("approval")):
            # hyperhive's daemon has no deploy progress to wait on: its ack is all there is.
            return await self._resolve({"cmd": "approve", "id": id}, "approved")
        async with self.feed() as feed:
            await self.ask({"cmd": "approve", "id": id})
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
        return await self._resolve({"cmd": "deny", "id": id, "note": note}, "denied")

    async def _resolve(self, message: dict[str, Any], status: str) -> Approval:
        """Approve or deny; the approval the answer carries, or, from a daemon
        that answers with a bare ack (hyperhive's), the one `pending` showed, resolved."""
        if self.read_only:
            raise ReadOnly(f"{self.where} is read-only here: {message['cmd']} refused")
        known = None
        if not await self.offers("approval"):
            known = next((a for a in await self.pending() if a.id == message["id"]), None)
        r = await self.ask(message)
        if isinstance(r.get("approval"), dict):
            return Approval.from_wire(r["approval"])
        return dataclasses.replace(known or Approval(id=message["id"]), status=status)

    async def history(self, name: str) -> list[TagRecord]:
        r = await self.ask({"cmd": "history", "name": name})
        return [TagRecord.from_wire(t) for t in r.get("tags", [])]

    async def events(self, since: int = 0) -> list[Event]:
        r = await self.ask({"cmd": "events", "since": since})
        return [Event.from_wire(e) for e in r.get("events", [])]

    async def meta_log(self) -> list[dict[str, Any]]:
        return list((await self.ask({"cmd": "meta_log"})).get("commits", []))

    async def transients(self) -> list[Transient]:
        r = await self.ask({"cmd": "transients"})
        return [Transient.from_wire(t) for t in r.get("transients", [])]

    async def start(self, name: str) -> bool | None:
        """Returns whether it was running already; None when the daemon does not say (hyperhive's)."""
        return _already(name, await self.ask({"cmd": "start", "scope": {"agent_names": [name]}}))

    async def stop(self, name: str, graceful: bool = True) -> bool | None:
        """Returns whether it was stopped already; None when the daemon does not say (hyperhive's)."""
        return _already(name, await self.ask({"cmd": "stop", "scope": {"agent_names": [name]},
                                                  "graceful": graceful}))

    async def restart(self, name: str) -> None:
        await self.ask({"cmd": "restart", "name": name})

    async def rebuild(self, name: str) -> str | None:
        """Returns the meta commit the rebuild made, None when the lock did not move."""
        return (await self.ask({"cmd": "rebuild", "name": name})).get("meta_commit")

    async def destroy(self, name: str, purge: bool = False) -> str | None:
        """Returns a warning when the destroy stands but the meta flake could not follow."""
        return (await self.ask({"cmd": "destroy", "name": name, "purge": purge})).get("warning")

    async def set_paused(self, name: str, paused: bool) -> AgentStatus:
        r = await self.ask({"cmd": "set_paused", "name": name, "paused": paused})
        rows = r.get("agent_statuses") or [{"name": name, "paused": paused}]
        return AgentStatus.from_wire(rows[0])

    async def logs(self, name: str, lines: int = 200) -> list[str]:
        return list((await self.ask({"cmd": "logs", "name": name, "lines": lines})).get("lines", []))

    async def log_page(self, name: str, start: int | None, count: int) -> LogPage:
        """`count` lines of the agent's log from line `start`, or its last `count` lines when
        `start` is None; lines rotated away are not there (the page's `first` says where it begins).
        The host bounds a page's bytes: a page of long lines may hold fewer lines than asked
        (ask again from the last one's number + 1). An unfinished last line is there as it stands."""
        r = await self._ask_log({"cmd": "log_page", "name": name, "start": start, "count": count})
        lines = [LogLine.from_wire(x) for x in r.get("lines") or [] if isinstance(x, dict)]
        return LogPage(lines=lines, first=int(r.get("first") or 0), total=int(r.get("total") or 0))

    async def log_find(self, name: str, text: str, start: int, backward: bool = False) -> int | None:
        """The number of the next line at or after `start` (before it, `backward`) that
        holds `text`, whatever its case; None when no line does.

        The host reads a bounded share of the log per request: when that runs
        out first it answers `scanned_to`, where the search goes on, and this
        asks again from there until a line is found or the log ends."""
        while True:
            r = await self._ask_log({"cmd": "log_find", "name": name, "text": text, "start": start,
                                     "backward": backward})
            found, on = r.get("line"), r.get("scanned_to")
            if isinstance(found, int) and not isinstance(found, bool):
                return found
            # Going on must make progress, whatever a daemon answers.
            if not isinstance(on, int) or isinstance(on, bool) or (on >= start if backward else on <= start):
                return None
            start = on

    async def log_since(self, name: str, at: str) -> int:
        """The number of the first line written at or after `at` (RFC 3339 with its offset);
        the log's `total` when none was."""
        return int((await self._ask_log({"cmd": "log_since", "name": name, "at": at})).get("line") or 0)

    async def _ask_log(self, message: dict[str, Any]) -> dict[str, Any]:
        """`ask`, with a host whose runtime keeps no log file to page (the
        journal of the nixos runtime) answered as Unavailable, as a daemon
        without the verb is."""
        try:
            return await self.ask(message)
        except HiveError as e:
            if type(e) is HiveError and "not available on this host" in str(e):
                raise Unavailable(str(e)) from None
            raise

    async def diff(self, id: int) -> dict[str, Any]:
        """An apply_commit proposal against the applied main: `files` (path, status,
        additions, deletions), `patch` and `truncated`."""
        return await self.ask({"cmd": "diff", "id": id})

    async def urls(self) -> dict[str, Any]:
        return dict((await self.ask({"cmd": "urls"})).get("urls") or {})

    async def whoami(self) -> dict[str, Any]:
        return await self.ask({"cmd": "whoami"})

    async def capabilities(self) -> dict[str, Any]:
        """The daemon's own answer; `offered` is what a client goes by."""
        return await self.request({"cmd": "capabilities"})

    @abc.abstractmethod
    def follow_logs(self, name: str, lines: int = 200) -> AsyncGenerator[str, None]:
        """The agent's last `lines` log lines, then each new one as it is written."""


def _read_offer(verbs: object) -> Offer:
    """A `capabilities` answer as an offer; what is not a name with a list of field names is left out."""
    if not isinstance(verbs, dict):
        return dict(OURS)
    return {name: frozenset(f for f in fields if isinstance(f, str))
            for name, fields in verbs.items() if isinstance(name, str) and isinstance(fields, list)}


# A verb as the operator knows the feature it carries, ready for "is" or "are".
_FEATURES = {"diff": "the diff is", "history": "history is", "events": "the helper events are",
             "meta_log": "the deploy log is", "transients": "actions in flight are", "subscribe": "deploy progress is",
             "rebuild": "rebuild is", "destroy": "destroy is", "logs": "logs are",
             "log_page": "reading the log by page is", "log_find": "searching the log is",
             "log_since": "reading the log by time is",
             "approvals": "resolved approvals are", "approval": "an approval's outcome is",
             "request_apply_commit": "filing a proposal is", "request_spawn": "filing a spawn request is"}


def _unavailable(verb: str, where: str) -> str:
    return f"{_FEATURES.get(verb, verb + ' is')} not available on this host ({where})"


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
