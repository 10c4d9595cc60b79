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
        loop = asyncio.get_running_loop()

        def start(feed: Feed):
            def listener(item: object) -> None:
                message = wire.push(item)
                if message is not None:
                    # The engine calls back from its worker threads.
                    loop.call_soon_threadsafe(feed.put, wire.decode_push(message))

            return self.engine.subscribe(listener)

        return Feed(start)

    async def follow_logs(self, name: str, lines: int = 200) -> AsyncGenerator[str, None]:
        # aclosing: the follower ends as soon as our caller stops, not at garbage collection.
        async with aclosing(self.dispatcher.follow_logs(name, lines)) as messages:
            async for message in messages:
                if "line" in wire.check_response(message):
                    yield message["line"]

    async def close(self) -> None:
        await self.dispatcher.drain()
        self.engine.close()
