"""The words the CLI's tables and the console both show for a hive's state.

One place for them, so `hive-tui status` and the console never disagree:
the same state words, the same flags in the same order, the same ages. Each
side only dresses them (the console adds a mark before the state, the CLI
hyphenates a flag so its column stays one word). Agent text goes through
`plain`, as everywhere it is shown.
"""

from __future__ import annotations

from datetime import datetime, timezone

from .models import AgentStatus
from .plain import one_line

# The console's mark before a state word: colour is never the only sign.
MARKS = {"running": "●", "stopped": "○", "failed": "✗"}


def age(stamp: str | None, now: datetime | None = None) -> str:
    if not stamp:
        return "-"
    try:
        then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return one_line(stamp, 20)
    seconds = int(((now or datetime.now(timezone.utc)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"


def run_state(row: AgentStatus) -> str:
    """running, stopped or failed: what the agent's container is doing."""
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
    return [word for word, on in (("needs login", row.needs_login), ("needs update", row.needs_update),
                                  ("paused", row.paused)) if on]
