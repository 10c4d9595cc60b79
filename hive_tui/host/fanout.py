"""The engine's pushes, fanned out to every subscriber of a dispatcher (over
the socket or in process), with a bound on what waits for slow readers.

Each push is encoded once, in the engine's thread, and the same bytes are
queued for every subscriber: one call crosses into the event loop per push,
however many subscribers there are, so the engine is not slowed by them.

What waits is bounded twice: per subscriber (SUBSCRIBER_BYTES) and across
all of them (TOTAL_BYTES), counting each queued line against every queue it
is in. Past either bound the subscriber with the most waiting (the slowest)
is dropped: its queue is freed, and its stream ends by telling it how many
pushes it lost (`lagged`). It reads afresh, as after any dropped link. A
subscriber is never dropped for the one line it holds.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from .. import wire
from ..models import AgentStatus

SUBSCRIBER_BYTES = 256 << 10
TOTAL_BYTES = 16 << 20


class Subscriber:
    def __init__(self, rows_only: bool):
        self.rows_only = rows_only
        self.lines: deque[bytes] = deque()
        self.queued = 0
        # Set when dropped: how many pushes were thrown away.
        self.lost: int | None = None
        self._ready = asyncio.Event()

    async def next(self) -> bytes | None:
        """The next line to send, or None once dropped (`lost` then says how many went)."""
        while not self.lines and self.lost is None:
            self._ready.clear()
            await self._ready.wait()
        if self.lost is not None:
            return None
        line = self.lines.popleft()
        self.queued -= len(line)
        return line


class Fanout:
    def __init__(self, subscribe: Callable[[Callable[[object], None]], Callable[[], None]],
                 subscriber_bytes: int = SUBSCRIBER_BYTES, total_bytes: int = TOTAL_BYTES):
        self._subscribe = subscribe
        self.subscriber_bytes, self.total_bytes = subscriber_bytes, total_bytes
        self.subscribers: set[Subscriber] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = self._subscribe(self._listener)

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def add(self, rows_only: bool) -> Subscriber:
        sub = Subscriber(rows_only)
        self.subscribers.add(sub)
        return sub

    def remove(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        sub.lines.clear()
        sub.queued = 0

    def _listener(self, item: object) -> None:
        """Called in the engine's threads."""
        if not self.subscribers or self._loop is None:
            return
        message = wire.push(item)
        if message is not None:
            self._loop.call_soon_threadsafe(self._deliver, wire.encode(message), isinstance(item, AgentStatus))

    def _deliver(self, line: bytes, is_row: bool) -> None:
        over = []
        total = 0
        for sub in self.subscribers:
            if sub.rows_only and not is_row:
                total += sub.queued
                continue
            sub.lines.append(line)
            sub.queued += len(line)
            total += sub.queued
            sub._ready.set()
            if sub.queued > self.subscriber_bytes and len(sub.lines) > 1:
                over.append(sub)
        for sub in over:
            total -= sub.queued
            self._drop(sub)
        while total > self.total_bytes:
            slowest = max(self.subscribers, key=lambda s: s.queued)
            if len(slowest.lines) <= 1:
                break
            total -= slowest.queued
            self._drop(slowest)

    def _drop(self, sub: Subscriber) -> None:
        sub.lost = len(sub.lines)
        self.remove(sub)
        sub._ready.set()
