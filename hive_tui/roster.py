"""What the container list makes of an agent's row, apart from drawing it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .models import AgentStatus
from .presentation import flags, run_state


def needs_operator(row: AgentStatus | None, transient: str | None = None) -> bool:
    """Whether the agent wants the operator's eye: it failed, needs a login or an
    update, or an action is in flight on it."""
    if transient or (row is not None and row.transient):
        return True
    return row is not None and (row.failed or row.needs_login or row.needs_update)


# -- change markers ---------------------------------------------------------------

# The fields of a row a change marker watches, in the order the row shows them.
WATCHED = ("state", "sha", "model", "badges")


def badges(row: AgentStatus | None) -> list[str]:
    """The flags worth a badge, as words, and a failure again beside them."""
    if row is None:
        return []
    return [*flags(row), *(["failed"] if row.failed else [])]


def watched(row: AgentStatus) -> tuple[object, ...]:
    """The watched fields of `row` as the container list shows them, in WATCHED's order."""
    return run_state(row), row.deployed_sha, row.active_model, tuple(badges(row))


def changed_fields(before: AgentStatus, after: AgentStatus) -> frozenset[str]:
    """The watched fields that differ between two rows of one agent."""
    if before == after:
        return frozenset()
    return frozenset(f for f, old, new in zip(WATCHED, watched(before), watched(after)) if old != new)


class ChangeMarks:
    """When each watched field of each agent last changed, and so which are marked now.

    A field stays marked for `hold` seconds after its last change (0: never
    marked). An agent seen for the first time is not marked: there is nothing
    it changed from, so neither a first fill nor a spawn lights every row.
    After a gap, the rows read afresh are seen against the ones shown before
    it, so what changed unseen is marked. Time comes from `clock` (seconds,
    monotonic), so a test can move it on.
    """

    def __init__(self, hold: float, clock: Callable[[], float] | None = None):
        self.hold = hold
        self.clock = clock or time.monotonic
        # Each agent's row when last seen; its fields are worked out only when a row differs,
        # so a big hive's first fill costs a dict's worth of stores.
        self.last: dict[str, AgentStatus] = {}
        # Agent -> field -> when it changed: only the agents with a marker, so a tick looks at few.
        self.since: dict[str, dict[str, float]] = {}

    def see(self, row: AgentStatus | None) -> frozenset[str]:
        """Take `row` as shown now; the fields it changed, which are marked from now."""
        if row is None:
            return frozenset()
        old = self.last.get(row.name)
        self.last[row.name] = row
        if old is None or self.hold <= 0:
            return frozenset()
        changed = changed_fields(old, row)
        if changed:
            now = self.clock()
            self.since.setdefault(row.name, {}).update(dict.fromkeys(changed, now))
        return changed

    def keep_only(self, names: Iterable[str]) -> None:
        """Forget the agents not among `names` (gone from the hive)."""
        keep = set(names)
        for table in (self.last, self.since):
            for name in table.keys() - keep:
                del table[name]

    def reset(self) -> None:
        """Forget everything: another hive, whose first fill marks nothing."""
        self.last.clear()
        self.since.clear()

    def marked(self, name: str) -> frozenset[str]:
        """The fields of `name` marked now."""
        fields = self.since.get(name)
        if not fields:
            return frozenset()
        now = self.clock()
        return frozenset(f for f, at in fields.items() if now - at < self.hold)

    def expire(self) -> list[str]:
        """The agents a marker of which has run out since the last call, its
        markers dropped: the rows to draw again, and only those."""
        now = self.clock()
        gone = []
        for name, fields in list(self.since.items()):
            old = [f for f, at in fields.items() if now - at >= self.hold]
            for f in old:
                del fields[f]
            if old:
                gone.append(name)
            if not fields:
                del self.since[name]
        return gone


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


def view_title(name: str, faults_only: bool, filtered: bool, hidden: Callable[[], int]) -> str:
    """A list's title: whether its view is narrowed, and how many agents that hides
    (`hidden` is asked only then)."""
    words = [name, *(["faults only"] if faults_only else []), *(["filtered"] if filtered else [])]
    if len(words) > 1:
        words.append(f"{hidden()} hidden")
    return " · ".join(words)
