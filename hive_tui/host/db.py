"""The SQLite database: approvals, helper events and the deploy journal.

WAL with synchronous=FULL, and every write inside BEGIN IMMEDIATE: a deferred
transaction that reads and then writes fails at once with "database is
locked" when another process committed in between, whatever the busy
timeout, while an immediate one takes the write lock first and waits for it.

A write that recovery reads the same whether or not it survived a power cut
(a deploy step between two that decide how it is ended) may skip the wait
for the disk: `write(durable=False)`. It still reaches the WAL file before
the call returns, so a killed process loses nothing, and the next durable
commit makes it durable with everything before it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import Conflict, HiveError, NotFound
from ..models import Approval, Event, Transient, rfc3339

SCHEMA_VERSION = 3

# Statements that bring a database from version N-1 to N, applied in order.
_MIGRATIONS: dict[int, tuple[str, ...]] = {}
_MIGRATIONS[1] = (
    """CREATE TABLE approvals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent TEXT NOT NULL,
    kind TEXT NOT NULL,
    commit_ref TEXT,
    fetched_sha TEXT,
    description TEXT,
    requested_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    resolved_at TEXT,
    note TEXT,
    terminal_tag TEXT,
    error TEXT
)""",
    "CREATE INDEX approvals_status ON approvals (status)",
    """CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    agent TEXT NOT NULL,
    body TEXT NOT NULL
)""",
    """CREATE TABLE deploys (
    id INTEGER PRIMARY KEY REFERENCES approvals (id),
    agent TEXT NOT NULL,
    prev_sha TEXT NOT NULL,
    target_sha TEXT NOT NULL,
    step TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT
)""",
)
_MIGRATIONS[2] = (
    """CREATE TABLE transients (
    agent TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    since TEXT NOT NULL
)""",
)
# An agent a failed action left in a state the engine could not repair, and why.
_MIGRATIONS[3] = (
    """CREATE TABLE broken (
    agent TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    since TEXT NOT NULL
)""",
)

_APPROVAL_COLUMNS = (
    "id, agent, kind, commit_ref, fetched_sha, requested_at, status, "
    "resolved_at, note, description, terminal_tag, error"
)


class Database:
    """One connection for writes shared by the engine's threads, behind a lock,
    and one for reads behind a lock of its own.

    A durable commit holds the write lock while it waits for the disk; a read
    on its own connection sees every commit made so far (WAL) without waiting
    for that one, so status rows and pushed events are not held up behind
    other agents' deploys. A thread inside a write reads on the write
    connection, seeing its own uncommitted changes as before.
    """

    def __init__(self, path: Path, busy_timeout: float = 30.0):
        self._conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._writing = threading.local()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        with self.write() as c:
            version = c.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise HiveError(f"{path}: schema version {version} is newer than this engine's {SCHEMA_VERSION}")
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[step]:
                    c.execute(statement)
            c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._reader = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._reader.row_factory = sqlite3.Row
        self._read_lock = threading.Lock()

    def close(self) -> None:
        with self._lock, self._read_lock:
            self._conn.close()
            self._reader.close()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        if getattr(self._writing, "depth", 0):
            with self._lock:
                yield self._conn
        else:
            with self._read_lock:
                yield self._reader

    @contextmanager
    def write(self, durable: bool = True) -> Iterator["_Txn"]:
        with self._lock:
            self._writing.depth = getattr(self._writing, "depth", 0) + 1
            try:
                if not durable:
                    self._conn.execute("PRAGMA synchronous=NORMAL")
                try:
                    self._conn.execute("BEGIN IMMEDIATE")
                    try:
                        yield _Txn(self._conn)
                    except BaseException:
                        self._conn.execute("ROLLBACK")
                        raise
                    self._conn.execute("COMMIT")
                finally:
                    if not durable:
                        self._conn.execute("PRAGMA synchronous=FULL")
            finally:
                self._writing.depth -= 1

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._reading() as conn:
            return conn.execute(sql, args).fetchall()

    # approvals

    def approval(self, id: int) -> Approval:
        with self._reading() as conn:
            return _approval(conn, id)

    def approvals(self, status: str | None = None, agent: str | None = None) -> list[Approval]:
        sql = f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE 1"
        args: list = []
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        if agent is not None:
            sql += " AND agent = ?"
            args.append(agent)
        return [Approval(**dict(r)) for r in self._query(sql + " ORDER BY id", tuple(args))]

    def events(self, since: int = 0, limit: int | None = None) -> list[Event]:
        sql = "SELECT seq, at, kind, agent, body FROM events WHERE seq > ? ORDER BY seq"
        args: tuple = (since,)
        if limit is not None:
            sql += " LIMIT ?"
            args += (limit,)
        return [_event(r) for r in self._query(sql, args)]

    def last_event_seq(self) -> int:
        return self._query("SELECT COALESCE(MAX(seq), 0) FROM events")[0][0]

    def transients(self) -> list[Transient]:
        return [Transient(**dict(r)) for r in self._query("SELECT agent, kind, since FROM transients ORDER BY agent")]

    def broken(self) -> dict[str, str]:
        """Agent -> why the engine could not repair it after a failed action."""
        return {r["agent"]: r["reason"] for r in self._query("SELECT agent, reason FROM broken")}

    def deploy_journal(self, id: int) -> sqlite3.Row | None:
        rows = self._query("SELECT * FROM deploys WHERE id = ?", (id,))
        return rows[0] if rows else None


class _Txn:
    """The statements allowed inside one BEGIN IMMEDIATE transaction."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def execute(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, args)

    def insert_approval(self, a: Approval) -> Approval:
        cur = self._conn.execute(
            "INSERT INTO approvals (agent, kind, commit_ref, fetched_sha, description, requested_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (a.agent, a.kind, a.commit_ref, a.fetched_sha, a.description, a.requested_at or rfc3339()),
        )
        assert cur.lastrowid is not None, "an INSERT always sets lastrowid"
        return self.approval(cur.lastrowid)

    def approval(self, id: int) -> Approval:
        return _approval(self._conn, id)

    def claim(self, id: int, status: str, note: str | None = None) -> Approval:
        """Move a pending approval to `status`; refuse one that is not pending."""
        current = self.approval(id)
        if current.status != "pending":
            raise Conflict(
                f"approval {id} is already {current.status}"
                + (f" ({current.terminal_tag})" if current.terminal_tag else "")
                + "; it can be resolved only once"
            )
        self._conn.execute(
            "UPDATE approvals SET status = ?, resolved_at = ?, note = ? WHERE id = ? AND status = 'pending'",
            (status, rfc3339(), note, id),
        )
        return self.approval(id)

    def finish(self, id: int, status: str, terminal_tag: str | None, error: str | None = None) -> Approval:
        self._conn.execute(
            "UPDATE approvals SET status = ?, terminal_tag = ?, error = ? WHERE id = ?",
            (status, terminal_tag, error, id),
        )
        return self.approval(id)

    # The three ways an approval ends outside a deploy, each with the events it
    # owes the manager; a deploy's own end is Deployer.resolve.

    def resolve_spawned(self, a: Approval, sha: str) -> tuple[Approval, list[Event]]:
        done = self.finish(a.id, "approved", None)
        self.clear_broken(a.agent)
        return done, [self.add_event("Spawned", a.agent, id=a.id, sha=sha),
                      self.add_event("ApprovalResolved", a.agent, id=a.id, status="approved", sha=sha)]

    def resolve_failed(self, a: Approval, tag: str | None, error: str) -> tuple[Approval, list[Event]]:
        done = self.finish(a.id, "failed", tag, error)
        return done, [self.add_event("ApprovalResolved", a.agent, id=a.id, status="failed",
                                     sha=a.fetched_sha, tag=tag, error=error)]

    def resolve_denied(self, a: Approval, tag: str | None, note: str | None) -> tuple[Approval, list[Event]]:
        """Record a denial of `a`, already claimed as denied."""
        done = self.finish(a.id, "denied", tag)
        return done, [self.add_event("ApprovalResolved", a.agent, id=a.id, status="denied",
                                     sha=a.fetched_sha, tag=tag, note=note)]

    def add_event(self, kind: str, agent: str, **body) -> Event:
        at = rfc3339()
        text = json.dumps({k: v for k, v in body.items() if v is not None}, sort_keys=True)
        cur = self._conn.execute(
            "INSERT INTO events (at, kind, agent, body) VALUES (?, ?, ?, ?)", (at, kind, agent, text)
        )
        return _event({"seq": cur.lastrowid, "at": at, "kind": kind, "agent": agent, "body": text})

    def mark_broken(self, agent: str, reason: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO broken (agent, reason, since) VALUES (?, ?, ?)",
                           (agent, reason, rfc3339()))

    def clear_broken(self, agent: str) -> None:
        self._conn.execute("DELETE FROM broken WHERE agent = ?", (agent,))

    def set_transient(self, t: Transient) -> None:
        # REPLACE: a row whose clearing failed (a full disk) must not block the agent's next action.
        self._conn.execute("INSERT OR REPLACE INTO transients (agent, kind, since) VALUES (?, ?, ?)", (t.agent, t.kind, t.since))

    def clear_transient(self, agent: str) -> None:
        self._conn.execute("DELETE FROM transients WHERE agent = ?", (agent,))

    def journal_start(self, id: int, agent: str, prev_sha: str, target_sha: str, step: str = "captured") -> None:
        self._conn.execute(
            "INSERT INTO deploys (id, agent, prev_sha, target_sha, step, started_at) VALUES (?, ?, ?, ?, ?, ?)",
            (id, agent, prev_sha, target_sha, step, rfc3339()),
        )

    def journal_step(self, id: int, step: str) -> None:
        self._conn.execute("UPDATE deploys SET step = ? WHERE id = ?", (step, id))

    def journal_finish(self, id: int, step: str) -> None:
        self._conn.execute(
            "UPDATE deploys SET step = ?, finished_at = ? WHERE id = ?", (step, rfc3339(), id)
        )


def _approval(conn: sqlite3.Connection, id: int) -> Approval:
    row = conn.execute(f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE id = ?", (id,)).fetchone()
    if row is None:
        raise NotFound(f"no approval with id {id}")
    return Approval(**dict(row))


def _event(row) -> Event:
    body = json.loads(row["body"])
    return Event.from_wire({**body, "seq": row["seq"], "at": row["at"], "kind": row["kind"], "agent": row["agent"]})
