"""What the console's command palettes share: entries as (text, help, callback),
offered whole when nothing is typed and matched by name as the operator types,
each help line ending with the key in force, so the palette teaches it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .actions import Action
from .keymap import key_of

Entry = tuple[str, str, Callable[[], Any]]


class EntryProvider(Provider):
    def _entries(self) -> list[Entry]:
        """Every entry this palette offers now."""
        raise NotImplementedError

    def keyed(self, a: Action) -> str:
        return f"{a.help} · key {key_of(self.app, a.id)}"

    async def discover(self) -> Hits:
        for text, help, callback in self._entries():
            yield DiscoveryHit(text, callback, help=help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, help, callback in self._entries():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=help)
