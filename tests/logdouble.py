"""An agent's log held in a list, answering the client's log verbs as the host
does: for the viewer's unit-level tests and its snapshot."""

from __future__ import annotations

import asyncio
from typing import Any

from hive_tui.client.base import Feed, HiveClient
from hive_tui.models import LogLine, LogPage


class LogDouble(HiveClient):
    def __init__(self, lines: list[tuple[str | None, str]], first: int = 0):
        self.lines = [LogLine(n, at, text) for n, (at, text) in enumerate(lines)]
        self.first = first
        self.written = asyncio.Event()
        self.asked: list[tuple[int | None, int]] = []

    def write(self, at: str | None, text: str) -> None:
        self.lines.append(LogLine(len(self.lines), at, text))
        self.written.set()

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        answers = {"history": {"tags": []}, "meta_log": {"commits": []}}
        return {"version": 1, "ok": True, **answers.get(message["cmd"], {})}

    def feed(self) -> Feed:
        return Feed(lambda feed: (lambda: None))

    async def log_page(self, name: str, start: int | None, count: int) -> LogPage:
        self.asked.append((start, count))
        total = len(self.lines)
        begin = max(total - count, self.first) if start is None else max(start, self.first)
        return LogPage(self.lines[begin:min(total, begin + count)], self.first, total)

    async def log_find(self, name: str, text: str, start: int, backward: bool = False) -> int | None:
        needle = text.lower()
        order = range(min(start, len(self.lines) - 1), self.first - 1, -1) if backward else \
            range(max(start, self.first), len(self.lines))
        return next((n for n in order if needle in self.lines[n].text.lower()), None)

    async def log_since(self, name: str, at: str) -> int:
        return next((x.n for x in self.lines[self.first:] if x.at is not None and x.at >= at), len(self.lines))

    async def follow_logs(self, name: str, lines: int = 200):
        seen = len(self.lines)
        for x in self.lines[max(self.first, seen - lines):]:
            yield x.text
        while True:
            await self.written.wait()
            self.written.clear()
            for x in self.lines[seen:]:
                yield x.text
            seen = len(self.lines)
