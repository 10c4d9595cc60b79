"""The SQLite store under contention, and the lock that gives a state root one owner."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

from hive_tui.host.db import Database
from hive_tui.host.engine import Engine
from hive_tui.errors import StateLocked
from hive_tui.models import Approval

from .helpers import engine_holder

WRITER = textwrap.dedent("""
    import sys
    from hive_tui.host.db import Database
    from hive_tui.errors import Conflict
    db = Database(sys.argv[1])
    worker, count, contested = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    sys.stdin.readline()  # start together
    won = 0
    for i in range(count):
        with db.write() as t:
            t.add_event("Tick", worker, id=i)
        try:
            with db.write() as t:
                t.claim(contested, "approved")
            won += 1
        except Conflict:
            pass
    print(won)
""")


def test_pragmas(tmp_path):
    db = Database(tmp_path / "hive.db")
    assert db._query("PRAGMA journal_mode")[0][0] == "wal"
    assert db._query("PRAGMA synchronous")[0][0] == 2  # FULL


def test_writers_in_several_processes_lose_nothing(tmp_path):
    path = tmp_path / "hive.db"
    db = Database(path)
    with db.write() as t:
        contested = t.insert_approval(Approval(agent="a", kind="spawn")).id
    workers, count = 6, 40
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"w{n}", str(count), str(contested)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for n in range(workers)
    ]
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    outcomes = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outcomes]
    assert all("database is locked" not in err for _, err in outcomes)
    # Every write landed, each worker's in its own order, and the contested claim was won once.
    events = db.events()
    assert len(events) == workers * count
    for n in range(workers):
        assert [e.id for e in events if e.agent == f"w{n}"] == list(range(count))
    assert sum(int(out) for out, _ in outcomes) == 1
    assert db.approval(contested).status == "approved"


def test_a_second_engine_waits_briefly_then_refuses(hive_root):
    with Engine(hive_root, locker="builtin"):
        started = time.monotonic()
        with pytest.raises(StateLocked, match=r"owned by another engine \(pid \d+ on .*since"):
            Engine(hive_root, locker="builtin", lock_wait=0.3)
        assert time.monotonic() - started >= 0.3
    with Engine(hive_root, locker="builtin"):
        pass


def test_a_killed_owner_leaves_no_stale_lock(hive_root):
    holder = engine_holder(hive_root)
    with pytest.raises(StateLocked):
        Engine(hive_root, locker="builtin", lock_wait=0.1)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    with Engine(hive_root, locker="builtin", lock_wait=0.1) as engine:
        assert engine.agents() == []


def test_agent_paths_resolve_the_state_root_once(tmp_path, monkeypatch):
    from pathlib import Path

    from hive_tui.host.stateroot import StateRoot

    state = StateRoot.at(tmp_path / "root")
    state.create()
    state.applied("alpha")
    resolved = []
    real = Path.resolve
    monkeypatch.setattr(Path, "resolve", lambda self, *a, **k: resolved.append(self) or real(self, *a, **k))
    paths = [state.applied("alpha"), state.proposed("alpha"), state.agent_state("alpha"), state.container("alpha")]
    assert resolved == []
    assert paths[0] == (tmp_path / "root").resolve() / "applied" / "alpha"


def test_a_read_does_not_wait_for_another_thread_s_write(tmp_path):
    """A write holds its lock while its commit waits for the disk; reads from
    other threads see every earlier commit without waiting for it, and the
    writing thread still reads its own uncommitted rows."""
    import threading

    from hive_tui.models import Approval

    db = Database(tmp_path / "hive.db")
    try:
        with db.write() as t:
            first = t.insert_approval(Approval(agent="alpha", kind="spawn"))
        inside, release = threading.Event(), threading.Event()
        seen_inside = []

        def writer():
            with db.write() as t:
                t.insert_approval(Approval(agent="beta", kind="spawn"))
                seen_inside.append([a.agent for a in db.approvals()])
                inside.set()
                assert release.wait(30)

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            assert inside.wait(30)
            read = threading.Thread(target=lambda: seen_inside.append([a.agent for a in db.approvals()]))
            read.start()
            read.join(30)
            assert not read.is_alive(), "a read waited for another thread's write"
            assert db.approval(first.id).agent == "alpha"
        finally:
            release.set()
            thread.join(30)
        assert seen_inside == [["alpha", "beta"], ["alpha"]]
        assert [a.agent for a in db.approvals()] == ["alpha", "beta"]
    finally:
        db.close()
