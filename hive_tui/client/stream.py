"""A client over a byte stream to a hive-tui server: a Unix socket, or an SSH
channel forwarded to one.

A connection carries one request at a time, since responses carry no
request id; a request that finds every connection busy (a rebuild takes
minutes) opens another, and a few idle ones are kept for reuse. A server
that cannot be reached is dialled again with backoff; a request that may
have changed state is never sent twice, so one cut off after it was sent
fails with an error saying it may have been carried out. Subscriptions and
followed logs each have a connection of their own.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import Any

from .. import wire
from ..errors import HiveError
from ..verbs import READ_ONLY
from .base import Feed, HiveClient, LinkState, Unavailable

log = logging.getLogger(__name__)

# Big enough for a status of thousands of agents.
MAX_RESPONSE = 64 << 20
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0
MAX_IDLE = 4


class Unreachable(HiveError):
    pass


class StreamClient(HiveClient):
    def __init__(self, label: str, redial_for: float = 30.0):
        self.label = label
        self.redial_for = redial_for
        self._idle: list[tuple[Any, Any]] = []
        self._closed = False
        # Everything pushed, or (from hyperhive's daemon) the status rows alone.
        self._subscribe_cmd = "subscribe"

    @abc.abstractmethod
    async def _open(self) -> tuple[Any, Any]:
        """A new (reader, writer) pair to the server."""

    async def _dial(self, redial_for: float | None = None, open_=None) -> tuple[Any, Any]:
        """Open a connection (with `open_`, default `_open`), retrying with backoff for up to `redial_for` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.redial_for if redial_for is None else redial_for)
        delay = BACKOFF_FIRST
        while True:
            try:
                return await (open_ or self._open)()
            except (OSError, HiveError) as e:
                if isinstance(e, HiveError) and not isinstance(e, Unreachable):
                    raise
                if self._closed or loop.time() + delay > deadline:
                    raise Unreachable(f"cannot reach {self.label}: {e}") from None
                log.info("cannot reach %s (%s); trying again in %.1fs", self.label, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        cmd = message.get("cmd")
        for attempt in (1, 2):
            reader, writer = await self._take()
            try:
                writer.write(wire.encode(message))
                await writer.drain()
                line = await reader.readline()
                if not line.endswith(b"\n"):
                    raise ConnectionResetError("the server closed the connection")
            except asyncio.CancelledError:
                # Its answer would come to whoever used the connection next.
                writer.close()
                raise
            except (OSError, ValueError, EOFError) as e:
                await _close(writer)
                if cmd in READ_ONLY and attempt == 1:
                    continue
                raise HiveError(
                    f"lost {self.label} while waiting for the answer to {cmd}; "
                    f"it may or may not have been carried out: {e}"
                ) from None
            await self._give((reader, writer))
            return wire.check_response(wire.decode(line))
        raise AssertionError("unreachable")

    async def _take(self) -> tuple[Any, Any]:
        """An idle connection that is still open, or a new one."""
        while self._idle:
            reader, writer = self._idle.pop()
            if not reader.at_eof():
                return reader, writer
            await _close(writer)
        return await self._dial()

    async def _give(self, conn: tuple[Any, Any]) -> None:
        if self._closed or len(self._idle) >= MAX_IDLE:
            await _close(conn[1])
        else:
            self._idle.append(conn)

    def feed(self) -> Feed:
        """A subscription of its own that redials when dropped, pushing LinkState around the gap."""

        async def start(feed: Feed):
            offer = await self.offered()
            if "subscribe" not in offer and "subscribe_agent_status" not in offer:
                raise Unavailable(f"live updates are not available on this host ({self.label})")
            self._subscribe_cmd = "subscribe" if "subscribe" in offer else "subscribe_agent_status"
            reader, writer = await self._subscribe()
            task = asyncio.create_task(self._pump(feed, reader, writer))

            async def stop() -> None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

            return stop

        return Feed(start)

    async def _subscribe(self, redial_for: float | None = None) -> tuple[Any, Any]:
        return await self._dial(redial_for, self._open_subscribed)

    async def _open_subscribed(self) -> tuple[Any, Any]:
        """A new connection, subscribed. A server lost before it answers the
        subscription is one that could not be reached: dialled again, like one
        that refused the connection."""
        reader, writer = await self._open()
        try:
            writer.write(wire.encode({"cmd": self._subscribe_cmd}))
            await writer.drain()
            line = await reader.readline()
            if not line.endswith(b"\n"):
                raise ConnectionResetError("the server closed the connection before it answered")
            wire.check_response(wire.decode(line))
        except BaseException:
            await _close(writer)
            raise
        return reader, writer

    async def _pump(self, feed: Feed, reader: Any, writer: Any) -> None:
        try:
            while True:
                line = await reader.readline()
                if line.endswith(b"\n"):
                    try:
                        item = wire.decode_push(wire.check_response(wire.decode(line)))
                    except HiveError as e:
                        log.warning("%s pushed a line this client cannot read: %s", self.label, e)
                        continue
                    if item is not None:
                        feed.put(item)
                    continue
                await _close(writer)
                feed.put(LinkState(False, f"lost {self.label}; reconnecting"))
                while True:
                    try:
                        reader, writer = await self._subscribe(redial_for=float("inf"))
                        break
                    except HiveError as e:
                        # Not a dropped link (a refused host key, a newer server): say so, and
                        # try again only now and then, in case the operator fixes it.
                        feed.put(LinkState(False, str(e)))
                        await asyncio.sleep(BACKOFF_MAX)
                # Another daemon may answer now: what it offers is learned again.
                self.forget_offer()
                feed.put(LinkState(True, f"reconnected to {self.label}"))
        finally:
            await _close(writer)

    async def follow_logs(self, name: str, lines: int = 200) -> AsyncGenerator[str, None]:
        if not await self.offers("logs"):
            raise Unavailable(f"logs are not available on this host ({self.label})")
        reader, writer = await self._dial()
        try:
            writer.write(wire.encode({"cmd": "logs", "name": name, "lines": lines, "follow": True}))
            await writer.drain()
            wire.check_response(wire.decode(await reader.readline()))
            while line := await reader.readline():
                message = wire.check_response(wire.decode(line))
                if "line" in message:
                    yield str(message["line"])
        finally:
            await _close(writer)

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            await _close(self._idle.pop()[1])


async def _close(writer: Any) -> None:
    try:
        writer.close()
        await writer.wait_closed()
    except (OSError, AttributeError):
        pass


class UnixClient(StreamClient):
    def __init__(self, path: str, redial_for: float = 30.0):
        super().__init__(f"unix:{path}", redial_for)
        self.path = path

    async def _open(self) -> tuple[Any, Any]:
        return await asyncio.open_unix_connection(self.path, limit=MAX_RESPONSE)
