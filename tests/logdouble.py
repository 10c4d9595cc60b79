"""An agent's log answering the client's log verbs as the host does, from
memory: for the viewer's unit-level tests and its snapshot. Its lines are
made on demand from a function, so a long log costs nothing to hold."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from hive_tui.client.base import Feed, HiveClient
from hive_tui.models import LogLine, LogPage


class LogDouble(HiveClient):
    def __init__(self, count: int, make: Callable[[int], tuple[str | None, str]], first: int = 0):
        self.count, self.make, self.first = count, make, first
        self.extra: list[tuple[str | None, str]] = []
        self.written = asyncio.Event()
        self.asked: list[tuple[int | None, int]] = []

    @property
    def total(self) -> int:
        return self.count + len(self.extra)

    def line(self, n: int) -> LogLine:
        at, text = self.make(n) if n < self.count else self.extra[n - self.count]
        return LogLine(n, at, text)

    def write(self, at: str | None, text: str) -> None:
        self.extra.append((at, text))
        self.written.set()

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        answers = {"history": {"tags": []}, "meta_log": {"commits": []}}
        return {"version": 1, "ok": True, **answers.get(message["cmd"], {})}

    def feed(self) -> Feed:
        return Feed(lambda feed: (lambda: None))

    async def log_page(self, name: str, start: int | None, count: int) -> LogPage:
        self.asked.append((start, count))
        total = self.total
        begin = max(total - count, self.first) if start is None else max(start, self.first)
        return LogPage([self.line(n) for n in range(begin, min(total, begin + count))], self.first, total)

    async def log_find(self, name: str, text: str, start: int, backward: bool = False) -> int | None:
        needle = text.lower()
        order = range(min(start, self.total - 1), self.first - 1, -1) if backward else \
            range(max(start, self.first), self.total)
        return next((n for n in order if needle in self.line(n).text.lower()), None)

    async def log_since(self, name: str, at: str) -> int:
        return next((n for n in range(self.first, self.total) if (self.line(n).at or "") >= at), self.total)

    async def follow_logs(self, name: str, lines: int = 200):
        seen = self.total
        for n in range(max(self.first, seen - lines), seen):
            yield self.line(n).text
        while True:
            await self.written.wait()
            self.written.clear()
            for n in range(seen, self.total):
                yield self.line(n).text
            seen = self.total
