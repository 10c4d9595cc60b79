"""The objects the engine hands out, in the shape the wire carries them.

Field names follow ../HOST_SOCK.md. Decoding tolerates unknown keys and
fills every missing field with its default, so a newer or older daemon still
decodes; our own additions are optional keys with defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

T = TypeVar("T", bound="Wire")


def rfc3339(epoch: float | None = None) -> str:
    """RFC 3339 in UTC, to the second; now when no time is given."""
    moment = datetime.now(timezone.utc) if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Wire:
    """Mixin: `to_wire()` and a tolerant `from_wire()` for a dataclass."""

    def to_wire(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_wire(cls: type[T], data: dict[str, Any]) -> T:
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Approval(Wire):
    id: int = 0
    agent: str = ""
    kind: str = ""  # "apply_commit" or "spawn"; show any other kind as is
    commit_ref: str | None = None
    fetched_sha: str | None = None
    requested_at: str | None = None
    status: str = "pending"  # pending, approved, denied, failed
    resolved_at: str | None = None
    note: str | None = None
    description: str | None = None
    # ours: the tag that ended the approval's walk, and a failed deploy's error
    terminal_tag: str | None = None
    error: str | None = None


@dataclass
class AgentStatus(Wire):
    name: str = ""
    running: bool = False
    failed: bool = False
    needs_update: bool = False
    needs_login: bool = False
    paused: bool = False
    parent: str | None = None
    deployed_sha: str | None = None
    active_model: str | None = None
    status_text: str | None = None
    status_set_at: str | None = None
    url: str | None = None
    pending_reminders: int = 0
    # ours: the lifecycle action in flight on this agent, if any (a Transient kind)
    transient: str | None = None
    # ours: why a failed action left the agent in a state the engine could not
    # repair (then `failed` is set too); cleared by its next successful deploy,
    # rebuild or spawn
    error: str | None = None
    kept: bool = False


TRANSIENT_KINDS = ("Spawning", "Starting", "Stopping", "Restarting", "Rebuilding", "Destroying")


@dataclass
class Transient(Wire):
    """A lifecycle action in flight on one agent; `ended` once it is over."""

    agent: str = ""
    kind: str = ""  # one of TRANSIENT_KINDS; show any other as is
    since: str = ""
    ended: bool = False


@dataclass
class Event(Wire):
    """A helper event for the manager: durable, numbered, read in order."""

    seq: int = 0
    at: str = ""
    kind: str = ""  # ApprovalResolved, Rebuilt, Spawned, Destroyed, Interrupted
    agent: str = ""
    id: int | None = None  # the approval it concerns
    status: str | None = None
    sha: str | None = None
    tag: str | None = None
    note: str | None = None
    error: str | None = None


@dataclass
class Lagged(Wire):
    """Pushed to a subscriber too slow to keep up: `count` pushes were dropped
    before this one, so it reconciles with fresh reads."""

    lagged: int = 0


@dataclass
class TagRecord(Wire):
    """One state tag in an agent's applied repo, for its history."""

    tag: str = ""
    id: int = 0
    state: str = ""  # proposal, approved, building, deployed, failed, denied
    sha: str = ""
    at: str | None = None
    message: str = ""


@dataclass
class DeployStep(Wire):
    """Progress of a deploy, pushed to whoever watches; not stored.

    `step` is one of the state machine's steps, or "output" for a line of
    build output in `detail`.
    """

    id: int = 0
    agent: str = ""
    step: str = ""
    detail: str = ""


@dataclass
class LogLine(Wire):
    """One line of an agent's log: its number (counted from the log's first
    line ever, so it stays the same across rotations), when the host wrote
    it (RFC 3339, None when unknown) and the text as the agent wrote it."""

    n: int = 0
    at: str | None = None
    text: str = ""


@dataclass
class LogPage(Wire):
    """A run of an agent's log lines, read lazily; `first` is the oldest line
    still kept (older ones were rotated away) and `total` the next line's number."""

    lines: list[LogLine] = field(default_factory=list)
    first: int = 0
    total: int = 0
