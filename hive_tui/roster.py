"""What the container list makes of an agent's row, apart from drawing it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .models import AgentStatus


def needs_operator(row: AgentStatus | None, transient: str | None = None) -> bool:
    """Whether the agent wants the operator's eye: it failed, needs a login or an
    update, or an action is in flight on it."""
    if transient or (row is not None and row.transient):
        return True
    return row is not None and (row.failed or row.needs_login or row.needs_update)


# -- grouping by parent -------------------------------------------------------------

@dataclass(frozen=True)
class Group:
    """The agents under one parent (None: the top group, of agents with none), by
    name; how many of them run, and whether any needs the operator."""

    parent: str | None
    names: tuple[str, ...]
    running: int
    faulty: bool

    @property
    def total(self) -> int:
        return len(self.names)


def parent_of(row: AgentStatus | None) -> str | None:
    """The group an agent sits in: its immediate parent (an empty one is none).
    A row yet to come (a spawn in flight) sits in the top group, and so does
    one whose daemon sent a parent that is no string."""
    parent = row.parent if row is not None else None
    return parent if isinstance(parent, str) and parent else None


def group_by_parent(rows: Mapping[str, AgentStatus | None], transients: Mapping[str, str]) -> list[Group]:
    """The agents in flat groups, one per immediate parent: the top group first,
    then the others by their parent's name; the agents in each by name."""
    members: dict[str | None, list[str]] = {}
    for name in sorted(rows):
        members.setdefault(parent_of(rows[name]), []).append(name)
    order = sorted(members, key=lambda p: (p is not None, p or ""))
    return [group_of(p, members[p], rows, transients) for p in order]


def group_of(parent: str | None, names: Iterable[str], rows: Mapping[str, AgentStatus | None],
             transients: Mapping[str, str]) -> Group:
    names = tuple(names)
    running = sum(1 for n in names if (row := rows.get(n)) is not None and row.running)
    faulty = any(needs_operator(rows.get(n), transients.get(n)) for n in names)
    return Group(parent, names, running, faulty)
