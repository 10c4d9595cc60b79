"""The embedded transport: the engine runs inside this process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from .. import wire
from ..host.dispatch import Dispatcher
from ..host.engine import Engine
from .base import Feed, HiveClient


class EmbeddedClient(HiveClient):
    """Speaks the same requests and responses as the socket, without a socket.

    Requests go through the dispatcher the server uses, so what the CLI
    prints with --json is what the socket would carry. The client owns the
    engine it is given: closing the client waits for the deploys it started,
    then closes the engine.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self.dispatcher = Dispatcher(engine)

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        return wire.check_response(await self.dispatcher.handle(message))

    def feed(self) -> Feed:
        """The dispatcher's subscription, the one the socket serves; dropped
        for lagging, it reads afresh, as a socket client does after a dropped link."""

        async def start(feed: Feed):
            lines = self.dispatcher.subscribe()
            await anext(lines)  # subscribed from here on
            task = asyncio.create_task(self._pump(feed, lines))

            async def stop() -> None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

            return stop

        return Feed(start)

    async def _pump(self, feed: Feed, lines: AsyncGenerator[bytes, None]) -> None:
        while True:
            async with aclosing(lines):
                async for line in lines:
                    item = wire.decode_push(wire.check_response(wire.decode(line)))
                    if item is not None:
                        feed.put(item)
            # The stream ended with `lagged`, which the feed now holds: subscribed
            # again before whoever reads the feed gets to it, so nothing falls
            # between what they read afresh and what is pushed next.
            lines = self.dispatcher.subscribe()
            await anext(lines)

    async def follow_logs(self, name: str, lines: int = 200) -> AsyncGenerator[str, None]:
        # aclosing: the follower ends as soon as our caller stops, not at garbage collection.
        async with aclosing(self.dispatcher.follow_logs(name, lines)) as messages:
            async for message in messages:
                if "line" in wire.check_response(message):
                    yield message["line"]

    async def close(self) -> None:
        await self.dispatcher.close()
        self.engine.close()
