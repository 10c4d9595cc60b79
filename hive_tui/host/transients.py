"""Which agent has a lifecycle action in flight, one action per agent at a time.

Operator actions (start, stop, restart, rebuild, destroy) are refused while
another is in flight on the same agent, so a double key press never queues
a second destroy. Approved work (a deploy, a spawn) has already been decided,
so it waits its turn instead.

Each transient is mirrored in the database while it is held; one found there
when the engine starts was left by a crash, and is cleared and reported.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..errors import Conflict
from ..models import TRANSIENT_KINDS, Transient, rfc3339
from .db import Database, _Txn
from .faults import crash_point

log = logging.getLogger(__name__)


def kind_word(kind: str) -> str:
    """`Restarting` -> `restarting`, as it reads in a sentence."""
    return kind.lower()


class Transients:
    def __init__(self, db: Database, on_change: Callable[[Transient], None]):
        self._db = db
        self._on_change = on_change
        self._cond = threading.Condition()
        self._held: dict[str, Transient] = {}

    def take_leftovers(self) -> list[Transient]:
        """Transients a previous engine left behind, removed from the database."""
        leftovers = self._db.transients()
        with self._db.write() as t:
            for item in leftovers:
                t.clear_transient(item.agent)
        return leftovers

    def kind(self, agent: str) -> str | None:
        with self._cond:
            held = self._held.get(agent)
            return held.kind if held else None

    def all(self) -> list[Transient]:
        with self._cond:
            return sorted(self._held.values(), key=lambda t: t.agent)

    def busy(self, agent: str) -> None:
        """Raise Conflict if `agent` has an action in flight."""
        with self._cond:
            held = self._held.get(agent)
            if held is not None:
                raise Conflict(f"{agent} is {kind_word(held.kind)} already; wait for that to finish")

    @contextmanager
    def hold(self, agent: str, kind: str, wait: bool = False, durable: bool = True) -> Iterator[Transient]:
        """Mark `agent` as `kind` for the duration; refuse (or with `wait`, queue)
        when it already has an action in flight. Cleared whatever the outcome.

        `durable=False` when the action's first write is a durable commit of
        its own (a deploy's journal): that commit makes this row durable too,
        and nothing is changed before it (see Database.write)."""
        assert kind in TRANSIENT_KINDS, kind
        with self._cond:
            while agent in self._held:
                if not wait:
                    self.busy(agent)
                self._cond.wait()
            item = Transient(agent=agent, kind=kind, since=rfc3339())
            self._held[agent] = item
        # The row is written once the agent is ours, outside the lock every
        # agent shares: its commit waits for the disk, and other agents'
        # actions and status reads need not wait with it.
        try:
            with self._db.write(durable=durable) as t:
                t.set_transient(item)
        except BaseException:
            with self._cond:
                del self._held[agent]
                self._cond.notify_all()
            raise
        self._on_change(item)
        try:
            yield item
        finally:
            with self._cond:
                # Not ours any more when it ended with the outcome it recorded
                # (`outcome`): the agent may be another action's by now.
                ours = self._held.get(agent) is item
            if ours:
                # Cleared while the agent is still ours, so that the next
                # action's row is never written before this one is removed.
                try:
                    crash_point("transient:clear")
                    with self._db.write() as t:
                        t.clear_transient(agent)
                except Exception:
                    # The action itself is over, and its outcome is what to report: a
                    # row left behind is replaced by the agent's next action.
                    log.exception("clearing the %s transient of %s", kind, agent)
                with self._cond:
                    del self._held[agent]
                    self._cond.notify_all()
                self._on_change(Transient(agent=agent, kind=kind, since=item.since, ended=True))

    @contextmanager
    def outcome(self, agent: str) -> Iterator[_Txn]:
        """A transaction that records the outcome of `agent`'s action in flight
        and ends the action in the same commit.

        Whoever reads the outcome (a resolved approval) then finds the agent
        free: a client that acts on it at once is not refused as busy, and no
        row shows an action that is already over. With nothing in flight, a
        plain transaction.
        """
        with self._cond:
            held = self._held.get(agent)
            with self._db.write() as t:
                yield t
                if held is not None:
                    t.clear_transient(agent)
            if held is not None:
                del self._held[agent]
                self._cond.notify_all()
        if held is not None:
            self._on_change(Transient(agent=agent, kind=held.kind, since=held.since, ended=True))
