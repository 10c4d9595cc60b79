"""The action in flight per agent: its row is written without holding up
what other threads read of the actions in flight."""

from __future__ import annotations

import threading
from contextlib import contextmanager

from hive_tui.host.db import Database
from hive_tui.host.transients import Transients


class SlowFor:
    """The database, with the write of one agent's transient row held until released."""

    def __init__(self, db: Database, agent: str):
        self.db, self.agent = db, agent
        self.writing, self.release = threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self.db, name)

    @contextmanager
    def write(self, durable: bool = True):
        with self.db.write(durable) as t:
            real = t.set_transient

            def set_transient(item):
                if item.agent == self.agent:
                    self.writing.set()
                    assert self.release.wait(30), "never released"
                real(item)

            t.set_transient = set_transient
            yield t


def test_one_agent_s_transient_write_holds_up_no_other_agent(tmp_path):
    db = Database(tmp_path / "hive.db")
    slow = SlowFor(db, "alpha")
    transients = Transients(slow, lambda item: None)
    held, done = threading.Event(), threading.Event()

    def act():
        with transients.hold("alpha", "Starting"):
            held.set()
            assert done.wait(30)

    alpha = threading.Thread(target=act)
    alpha.start()
    try:
        assert slow.writing.wait(30)
        seen = []

        def other_agent():
            # What every status row reads, and the check an operator's action makes.
            seen.append(transients.kind("alpha"))
            seen.append([t.agent for t in transients.all()])
            transients.busy("beta")
            seen.append(transients.kind("beta"))

        other = threading.Thread(target=other_agent)
        other.start()
        other.join(30)
        assert not other.is_alive(), "reading the actions in flight waited for alpha's write"
        assert seen == ["Starting", ["alpha"], None]
    finally:
        slow.release.set()
    try:
        assert held.wait(30)
        assert [t.agent for t in db.transients()] == ["alpha"]
    finally:
        done.set()
        alpha.join(30)
    assert db.transients() == [] and transients.all() == []
    db.close()
