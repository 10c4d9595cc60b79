"""What the container list makes of an agent's row, apart from drawing it."""

from __future__ import annotations

from .models import AgentStatus


def needs_operator(row: AgentStatus | None, transient: str | None = None) -> bool:
    """Whether the agent wants the operator's eye: it failed, needs a login or an
    update, or an action is in flight on it."""
    if transient or (row is not None and row.transient):
        return True
    return row is not None and (row.failed or row.needs_login or row.needs_update)
