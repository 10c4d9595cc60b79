"""The words the CLI's tables and the console both show for a hive's state.

One place for them, so `hive-tui status` and the console never disagree:
the same state words, the same flags in the same order, the same ages. Each
side only dresses them (the console adds a mark before the state, the CLI
hyphenates a flag so its column stays one word). Agent text goes through
`plain`, as everywhere it is shown.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from .models import AgentStatus, Approval
from .plain import one_line

# The console's mark before a state word: colour is never the only sign.
# A status's stamp as the engine writes it: read without strptime, ten times slower,
# which a big hive's first frame pays once a row.
STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
MARKS = {"running": "●", "stopped": "○", "failed": "✗", "destroyed": "·"}


def age(stamp: str | None, now: datetime | None = None) -> str:
    if not stamp:
        return "-"
    try:
        if STAMP.fullmatch(stamp):
            then = datetime.fromisoformat(stamp)
        else:
            then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return one_line(stamp, 20)
    seconds = int(((now or datetime.now(timezone.utc)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"


def run_state(row: AgentStatus) -> str:
    """running, stopped or failed: what the agent's container is doing;
    destroyed when it has none, its repos kept."""
    if row.kept:
        return "destroyed"
    if row.failed:
        return "failed"
    return "running" if row.running else "stopped"


def transient_word(kind: str) -> str:
    """An action in flight, as the state it puts the agent in ("rebuilding…")."""
    return f"{one_line(kind).lower()}…"


def state_word(row: AgentStatus) -> str:
    """The agent's state, an action in flight first."""
    return transient_word(row.transient) if row.transient else run_state(row)


def flags(row: AgentStatus) -> list[str]:
    """What needs the operator's eye besides the state, in the order shown."""
    return [word for word, on in (("repos kept", row.kept), ("needs login", row.needs_login),
                                  ("needs update", row.needs_update), ("paused", row.paused)) if on]


def request_title(a: Approval) -> str:
    """`#3 atlas: what it changes`; a description that starts with the agent's
    name (as managers write them) does not repeat it."""
    text = one_line(a.description)
    name = one_line(a.agent)
    if text.startswith(f"{name}:"):
        text = text[len(name) + 1:].lstrip()
    return f"#{a.id} {name}: {text or one_line(a.fetched_sha) or one_line(a.kind)}"


def link_word(detail: str) -> str:
    """Why a link is down, without the "reconnecting" a client adds: the
    console says that itself."""
    return detail.removesuffix("; reconnecting")
