"""A stand-in for hyperhive's own daemon: exactly HOST_SOCK.md's table of verbs, from memory.

It answers `list`, `agent_status`, `subscribe_agent_status`, `set_paused`,
`start`, `stop`, `restart`, `urls`, `pending`, `approve` and `deny`, in
hyperhive's shapes (bare acks, optional row fields omitted when unset, an
unknown top-level key now and then), and refuses every other verb with
`{"ok": false, "error": "unknown command"}`. With `version0`, no response
carries a `version` key, as a daemon from before the key.

It serves a real Unix socket from threads of its own, so a test can run the
real `hive-tui` executable against it, and it records every verb it was
sent, so a test can see what a client asked.
"""

from __future__ import annotations

import json
import socketserver
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACTIONS = ("set_paused", "start", "stop", "restart")
VERBS = ("list", "agent_status", "subscribe_agent_status", "set_paused", "start", "stop", "restart", "urls",
         "pending", "approve", "deny")


@dataclass
class Agent:
    name: str
    running: bool = True
    paused: bool = False
    deployed_sha: str | None = None
    parent: str | None = None

    def row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"name": self.name, "running": self.running, "failed": False, "needs_update": False,
                               "needs_login": False, "paused": self.paused, "url": None, "pending_reminders": 0}
        # hyperhive omits an optional field that is unset, rather than sending null.
        if self.deployed_sha is not None:
            row["deployed_sha"] = self.deployed_sha
        if self.parent is not None:
            row["parent"] = self.parent
        if self.running:
            row["status_text"], row["status_set_at"] = f"{self.name} at work", "2026-01-01T00:00:00Z"
        return row


@dataclass
class HyperhiveDaemon:
    sock: Path
    agents: dict[str, Agent]
    approvals: list[dict[str, Any]] = field(default_factory=list)
    version0: bool = False
    # Every verb received, in order (unknown ones too).
    received: list[str] = field(default_factory=list)
    # When set, every action waits for it: a test sees how many are in flight at once.
    gate: threading.Event | None = None
    in_flight: int = 0
    most_in_flight: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._changed: list[dict[str, Any]] = []
        daemon = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                daemon._serve(self.rfile, self.wfile)

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True
            block_on_close = False

        self._server = Server(str(self.sock), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "HyperhiveDaemon":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    # -- the wire ------------------------------------------------------------

    def _answer(self, ok: bool = True, **payload: Any) -> bytes:
        message = {} if self.version0 else {"version": 1}
        message.update(ok=ok, **payload)
        return json.dumps(message).encode() + b"\n"

    def _serve(self, rfile, wfile) -> None:
        for line in rfile:
            try:
                request = json.loads(line)
                cmd = request["cmd"]
            except (ValueError, KeyError, TypeError):
                wfile.write(self._answer(False, error="invalid request"))
                continue
            with self._lock:
                self.received.append(str(cmd))
            if cmd == "subscribe_agent_status":
                self._stream(wfile)
                return
            if self.gate is not None and cmd in ACTIONS:
                with self._lock:
                    self.in_flight += 1
                    self.most_in_flight = max(self.most_in_flight, self.in_flight)
                self.gate.wait(60)
                with self._lock:
                    self.in_flight -= 1
            wfile.write(self._carry_out(cmd, request))
            wfile.flush()

    def _stream(self, wfile) -> None:
        # Counted before the answer: a change made as soon as the client reads
        # it is one this subscriber must get.
        with self._lock:
            seen = len(self._changed)
        wfile.write(self._answer())
        wfile.flush()
        while True:
            with self._lock:
                self._lock.wait_for(lambda: len(self._changed) > seen or getattr(self, "_closed", False))
                if getattr(self, "_closed", False):
                    return
                rows, seen = self._changed[seen:], len(self._changed)
            try:
                for row in rows:
                    wfile.write(self._answer(agent_statuses=[row]))
                wfile.flush()
            except OSError:
                return

    def _pushed(self, agent: Agent) -> None:
        self._changed.append(agent.row())
        self._lock.notify_all()

    def _carry_out(self, cmd: str, request: dict[str, Any]) -> bytes:
        with self._lock:
            if cmd not in VERBS:
                return self._answer(False, error="unknown command")
            if cmd == "list":
                return self._answer(agents=list(self.agents))
            if cmd == "agent_status":
                # A key this client has never heard of, as hyperhive's responses may carry.
                return self._answer(agent_statuses=[a.row() for a in self.agents.values()], nodes=[])
            if cmd == "urls":
                return self._answer(urls={"domain": "hive.example", "home": "https://hive.example/"})
            if cmd == "pending":
                return self._answer(approvals=[a for a in self.approvals if a["status"] == "pending"])
            if cmd in ("approve", "deny"):
                return self._resolve(request.get("id"), "approved" if cmd == "approve" else "denied")
            if cmd in ("start", "stop"):
                return self._start_stop(cmd, request.get("scope") or {})
            agent = self.agents.get(request.get("name"))  # type: ignore[arg-type]
            if agent is None:
                return self._answer(False, error=f"no such agent: {request.get('name')}")
            if cmd == "restart":
                agent.running = True
            else:
                agent.paused = bool(request.get("paused"))
            self._pushed(agent)
            return self._answer()

    def _resolve(self, id: object, status: str) -> bytes:
        for a in self.approvals:
            if a["id"] == id and a["status"] == "pending":
                a["status"], a["resolved_at"] = status, "2026-01-01T00:01:00Z"
                if status == "approved" and a["agent"] in self.agents:
                    self.agents[a["agent"]].deployed_sha = a["fetched_sha"][:12]
                    self._pushed(self.agents[a["agent"]])
                return self._answer()
        return self._answer(False, error=f"no pending approval {id}")

    def _start_stop(self, cmd: str, scope: dict[str, Any]) -> bytes:
        names = scope.get("agent_names") or []
        # hyperhive's reading of an empty scope: the whole hive.
        targets = [self.agents[n] for n in names if n in self.agents] if names else list(self.agents.values())
        if len(targets) != len(names) and names:
            return self._answer(False, error="no such agent")
        for agent in targets:
            agent.running = cmd == "start"
            self._pushed(agent)
        return self._answer()


def sample_daemon(sock: Path, version0: bool = False) -> HyperhiveDaemon:
    """Three agents and three requests, one of a kind this project never files."""
    agents = {n: Agent(n, deployed_sha="ab" * 6) for n in ("north", "south", "west")}
    agents["west"].running = False
    approvals = [
        {"id": 1, "agent": "north", "kind": "apply_commit", "commit_ref": "main", "fetched_sha": "c0ffee" * 6 + "c0ff",
         "requested_at": "2026-01-01T00:00:00Z", "status": "pending", "description": "more notes"},
        {"id": 2, "agent": "south", "kind": "merge_config_pr", "commit_ref": "17",
         "requested_at": "2026-01-01T00:00:10Z", "status": "pending"},
        {"id": 3, "agent": "east", "kind": "spawn", "commit_ref": "", "requested_at": "2026-01-01T00:00:20Z",
         "status": "pending"},
    ]
    return HyperhiveDaemon(sock, agents, approvals, version0=version0)
