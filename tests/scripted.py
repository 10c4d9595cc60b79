"""A client that answers from fixed data, for snapshots: a screenshot can only
be pinned if nothing on it changes from run to run (shas, ages, pids)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from hive_tui.client.base import Feed, HiveClient
from hive_tui.config import Host
from hive_tui.models import AgentStatus, Approval, Transient

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)
SHA = "3f9a1c2b7d4e"


def row(name: str, **kw) -> dict:
    base = {"name": name, "running": True, "deployed_sha": SHA, "active_model": "sonnet",
            "status_text": "watching the queue", "status_set_at": "2026-11-26T11:55:00Z"}
    return AgentStatus(**{**base, **kw}).to_wire()


ROWS = [
    row("atlas", active_model="opus", status_text="triaging issues"),
    row("bramble", running=False, failed=True, status_text=None),
    row("cinder", needs_login=True, needs_update=True, paused=True),
    row("echo", running=False, transient="Starting", status_text=None),
    row("fjord", transient="Stopping"),
    row("gale", transient="Restarting"),
    row("heron", transient="Rebuilding"),
    row("ibis", transient="Destroying"),
    row("jade", status_text="reads \x1b]0;title\x07 and [b]markup[/b] [/] as text"),
]
TRANSIENTS = [Transient("dune", "Spawning", "2026-11-26T11:59:00Z").to_wire()]
APPROVALS = [
    Approval(1, "atlas", "apply_commit", "main", "a" * 40, "2026-11-26T11:50:00Z",
             description="atlas: move to the larger model").to_wire(),
    Approval(2, "dune", "spawn", requested_at="2026-11-26T11:58:00Z", description="a fourth agent").to_wire(),
]
DIFF = {"base": "b" * 40, "head": "a" * 40, "truncated": False,
        "files": [{"path": "model.txt", "old_path": "model.txt", "status": "M", "additions": 1, "deletions": 1,
                   "binary": False}],
        "patch": "diff --git a/model.txt b/model.txt\n--- a/model.txt\n+++ b/model.txt\n@@ -1 +1 @@\n-sonnet\n+opus\n"}
HOSTS = [Host("rack1", "ssh", socket="/run/hive-tui/host.sock", user="ops", hostname="rack1.example.net", port=2222),
         Host("here", "unix", socket="/run/hive-tui/host.sock")]


class ScriptedClient(HiveClient):
    def __init__(self):
        self.sent: list[dict[str, Any]] = []

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(message)
        answers = {
            "agent_status": {"agent_statuses": ROWS},
            "transients": {"transients": TRANSIENTS},
            "pending": {"approvals": APPROVALS},
            "approvals": {"approvals": APPROVALS},
            "diff": DIFF,
        }
        return {"version": 1, "ok": True, **answers.get(message["cmd"], {})}

    def feed(self) -> Feed:
        return Feed(lambda feed: (lambda: None))

    async def follow_logs(self, name: str, lines: int = 200):
        yield f"{name} started"
