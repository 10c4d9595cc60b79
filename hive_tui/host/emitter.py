"""The one way an engine's changes reach its listeners.

Pushes go out one at a time. Events go out in seq order with no gaps: each
is numbered inside the transaction that records it, but the thread that
committed it pushes it only afterwards, so a later event could overtake it.
Pushing an event therefore first pushes every event committed before it
that has not gone out yet; its own thread's push is then skipped. A client
that resumes with `events since=<highest seen>` misses nothing.

An agent's status rows are read and pushed in one turn per agent, so the
last row pushed was read after the last change that asked for a push.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..models import Event
from .db import Database

log = logging.getLogger(__name__)
Listener = Callable[[object], None]


class Emitter:
    def __init__(self, db: Database):
        self._db = db
        self._listeners: list[Listener] = []
        # Reentrant: a listener may push in turn, or stop listening.
        self._lock = threading.RLock()
        self._pushed_seq = db.last_event_seq()
        self._row_turns: dict[str, threading.Lock] = {}
        self._row_turns_lock = threading.Lock()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every change; returns the function that stops it."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                self._listeners.remove(listener)

        return unsubscribe

    def emit(self, item: object) -> None:
        with self._lock:
            if not isinstance(item, Event):
                self._deliver(item)
                return
            if item.seq <= self._pushed_seq:
                return  # pushed already, in its turn, by a thread behind it
            for event in self._db.events(self._pushed_seq, limit=item.seq - self._pushed_seq):
                self._deliver(event)
                self._pushed_seq = event.seq

    def _deliver(self, item: object) -> None:
        for listener in list(self._listeners):
            try:
                listener(item)
            except Exception:
                # A broken watcher must not break the deploy it watches.
                log.exception("listener %r failed", listener)

    @contextmanager
    def row_turn(self, agent: str) -> Iterator[None]:
        """Held while one of `agent`'s rows is read and pushed."""
        with self._row_turns_lock:
            turn = self._row_turns.setdefault(agent, threading.Lock())
        with turn:
            yield
