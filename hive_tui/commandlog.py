"""The command log: every action taken in the console, and what came of it.

Each entry says when, on which host and agent, what was done and how it
ended: a tag (`deployed/12`, `failed/13: why`, `denied/14: note`), `done`,
`error: …` when the hive answered with an error or the call broke, or
`refused: …` when it was never sent (a read-only host, a link that is down,
marks that forbid it, a verb the host's daemon lacks).

Entries are kept in memory (a bounded list) and appended to a file in the
platform's data folder, one JSON object a line, so the log outlives the
session. The file is rotated by the standard library's RotatingFileHandler:
at `max_bytes` it becomes `.1` (and `.1` becomes `.2` ...), and no more than
`backups` old files are kept, so the log on disk stays within
(backups + 1) × max_bytes and one line.

Names, notes and errors come from agents, the manager and the hosts: the
file holds them JSON-escaped and ASCII-only, so a newline, an escape
sequence or a line separator in them never splits an entry or reaches a
terminal that prints the file. `shown` gives the text a view may draw.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import platformdirs

from .client.base import ReadOnly, Unavailable
from .client.fleet import NotLive
from .errors import error_text
from .models import Approval
from .plain import plain

# The file rotates at this size, keeping this many old files: 4 MiB at most on disk.
MAX_BYTES = 1024 * 1024
BACKUPS = 3
# Entries held in memory, and the most read back from the files for the view.
KEEP = 1000
# A longer field is cut: one build error must not fill the file.
FIELD_LIMITS = {"host": 200, "agent": 200, "action": 200, "outcome": 2000}
FILE_NAME = "commands.log"


def default_path() -> Path:
    """Where the log is written: the platform's data folder for hive-tui."""
    return platformdirs.user_data_path("hive-tui") / FILE_NAME


@dataclass(frozen=True)
class Entry:
    at: str  # RFC 3339 UTC, to the second
    host: str
    agent: str
    action: str
    outcome: str

    def to_json(self) -> str:
        # ASCII only: every control character, line separator and non-ASCII
        # letter becomes a \u escape, so the entry is one line of plain bytes.
        return json.dumps(asdict(self), ensure_ascii=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> Entry | None:
        """An entry read back, or None for a line that is not one (cut, hand-edited, another version)."""
        try:
            data = json.loads(line)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        fields = {name: data.get(name) for name in ("at", "host", "agent", "action", "outcome")}
        if not all(isinstance(v, str) for v in fields.values()):
            return None
        return cls(**fields)  # type: ignore[arg-type]

    def line(self) -> str:
        """The entry as one line of text to show or copy: every field made plain."""
        return "  ".join(shown(v) for v in (self.when(), self.host, self.agent, self.action, self.outcome))

    def when(self) -> str:
        """The time as shown: the date and time of day in UTC, as hosts' clocks are kept."""
        return self.at.replace("T", " ")


# Line breaks plain() keeps, and the Unicode ones it lets through: each would split a shown line.
_BREAKS = str.maketrans({"\n": "\\n", "\t": "\\t", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def shown(text: str) -> str:
    """`text` as one line of plain text: control characters escaped, line breaks and tabs as \\n, \\t, \\u2028."""
    return plain(text).translate(_BREAKS)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class _Writer(logging.handlers.RotatingFileHandler):
    """The rotating file, keeping the last failure to write instead of printing it on the console's screen."""

    error: str | None = None

    def handleError(self, record: logging.LogRecord) -> None:
        failure = sys.exc_info()[1]
        self.error = f"{type(failure).__name__}: {failure}" if failure is not None else "unknown error"


@dataclass
class _Awaited:
    agent: str
    action: str
    claimed: bool = False
    # The outcome, when it came before the claim's answer.
    outcome: str | None = None


class CommandLog:
    """Entries of this session and earlier ones, newest last; each new one appended to the file."""

    def __init__(self, path: Path | None = None, max_bytes: int = MAX_BYTES, backups: int = BACKUPS,
                 keep: int = KEEP, clock: Callable[[], datetime] = _utc_now):
        # The standard handler never rotates with either bound at zero: the file would grow for ever.
        if max_bytes <= 0 or backups <= 0 or keep <= 0:
            raise ValueError("the command log needs a size, a count of old files and a count of entries, each > 0")
        self.path = path or default_path()
        self.max_bytes, self.backups, self.keep, self.clock = max_bytes, backups, keep, clock
        # Read from the files when first asked for: the console's first frame needs none of it.
        self._entries: deque[Entry] | None = None
        # Recorded, but the file could not take them (so reading the file back would miss them).
        self._unwritten: list[Entry] = []
        self._writer: _Writer | None = None
        # Why the last entry could not be written to the file, if it could not.
        self.error: str | None = None
        # Told of each new entry (an open view).
        self.listeners: list[Callable[[Entry], None]] = []
        # approve's outcome comes later, in the host's ApprovalResolved event: (host, id) -> (agent, action).
        self._awaited: dict[tuple[str, int], _Awaited] = {}

    # -- writing ----------------------------------------------------------------------

    def record(self, host: str, agent: str, action: str, outcome: str) -> Entry:
        entry = Entry(self.clock().astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                      *(_cut(value, FIELD_LIMITS[name]) for name, value in
                        (("host", host), ("agent", agent), ("action", action), ("outcome", outcome))))
        if not self._write(entry):
            self._unwritten.append(entry)
        if self._entries is not None:
            self._entries.append(entry)
        for listener in list(self.listeners):
            listener(entry)
        return entry

    def _write(self, entry: Entry) -> bool:
        try:
            if self._writer is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                writer = _Writer(self.path, maxBytes=self.max_bytes, backupCount=self.backups, encoding="ascii",
                                 delay=True)
                writer.setFormatter(logging.Formatter("%(message)s"))
                self._writer = writer
            self._writer.error = None
            self._writer.handle(logging.makeLogRecord({"msg": entry.to_json(), "levelno": logging.INFO}))
            self.error = self._writer.error
        except OSError as e:
            self.error = f"{type(e).__name__}: {e}"
        return self.error is None

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # -- an approval's later outcome -----------------------------------------------------

    def await_outcome(self, host: str, id: int, agent: str, action: str) -> None:
        """An approval is about to be sent: its deploy or spawn ends later, in an ApprovalResolved event.

        Registered before it is sent, since that event may come before the answer does."""
        self._awaited[(host, id)] = _Awaited(agent, action)

    def claimed(self, host: str, id: int, outcome: str) -> Entry | None:
        """The approval was claimed (`outcome`), or failed to be (then nothing more is awaited)."""
        awaited = self._awaited.get((host, id))
        if awaited is None:
            return None
        entry = self.record(host, awaited.agent, awaited.action, outcome)
        if awaited.outcome is not None or not outcome.startswith(CLAIMED):
            del self._awaited[(host, id)]
            if awaited.outcome is not None:
                self.record(host, awaited.agent, awaited.action, awaited.outcome)
        else:
            awaited.claimed = True
        return entry

    def resolved(self, host: str, id: int | None, status: str | None, tag: str | None,
                 error: str | None) -> Entry | None:
        """An approval on `host` was carried out: its outcome as a second entry, if this console approved it."""
        awaited = self._awaited.get((host, id)) if id is not None else None
        if awaited is None:
            return None
        outcome = outcome_of_resolution(status, tag, error)
        if not awaited.claimed:
            # Its claim is still on its way back: the outcome follows it.
            awaited.outcome = outcome
            return None
        del self._awaited[(host, id)]  # type: ignore[arg-type]
        return self.record(host, awaited.agent, awaited.action, outcome)

    def awaiting(self, host: str) -> list[int]:
        """The approvals on `host` claimed here whose end has not been heard of."""
        return [id for (h, id), awaited in self._awaited.items() if h == host and awaited.claimed]

    def forget(self, host: str, id: int) -> None:
        """Stop waiting for an approval's end (the hive no longer knows it)."""
        self._awaited.pop((host, id), None)

    # -- reading -----------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """Every entry held, newest first: earlier sessions' from the file, then this one's."""
        if self._entries is None:
            self._entries = deque(read_entries(self.path, self.backups, self.keep, self.max_bytes),
                                  maxlen=self.keep)
            self._entries.extend(self._unwritten)
        return list(reversed(self._entries))


def read_entries(path: Path, backups: int = BACKUPS, keep: int = KEEP, max_bytes: int = MAX_BYTES) -> list[Entry]:
    """The newest `keep` entries of the log and its rotated files, oldest first.

    Reads no more than `max_bytes` (and a line) from the end of each file, so a
    file grown by other means is never read whole."""
    found: list[Entry] = []
    for candidate in [path, *(path.with_name(f"{path.name}.{n}") for n in range(1, backups + 1))]:
        if len(found) >= keep:
            break
        try:
            with candidate.open("rb") as f:
                size = f.seek(0, 2)
                start = max(0, size - max_bytes - 64 * 1024)
                f.seek(start)
                data = f.read()
        except OSError:
            continue
        lines = data.split(b"\n")
        if start > 0:
            lines = lines[1:]  # the first was cut by the seek
        batch = [e for e in (Entry.from_json(raw.decode("ascii", "replace")) for raw in lines if raw.strip())
                 if e is not None]
        found = batch + found
    return found[-keep:]


# -- outcomes, as the console words them -------------------------------------------------


# What an approval's first entry says: claimed, its deploy or spawn under way.
CLAIMED = "approved: carrying it out"


def refused(why: str) -> str:
    return f"refused: {why}"


def outcome_of_resolution(status: str | None, tag: str | None, error: str | None) -> str:
    """An approval's end: its tag, and why it failed when it did."""
    outcome = tag or status or "resolved"
    return f"{outcome}: {error}" if error else outcome


def outcome_of_denial(tag: str | None, note: str | None) -> str:
    return f"{tag or 'denied'}: {note}" if note else (tag or "denied")


def denial(result: object, note: str) -> str:
    """Deny's outcome: the tag, with the note the hive kept (or the one sent)."""
    if isinstance(result, Approval):
        return outcome_of_denial(result.terminal_tag, result.note or note or None)
    return outcome_of_denial(None, note or None)


def already(state: str) -> Callable[[object], str]:
    """Start's and stop's outcome: done, or that the agent was so already."""
    return lambda result: f"done (it was {state} already)" if result else "done"


def warned(result: object) -> str:
    """Destroy's outcome: done, with the warning when the meta flake could not follow."""
    return f"done; warning: {result}" if result else "done"


# Failures that mean the action was never sent: the client or the fleet refused it.
NOT_SENT = (ReadOnly, Unavailable, NotLive)


def outcome_of_failure(e: BaseException) -> str:
    """A failed call: refused when it was never sent, else the error the hive answered or the link broke with."""
    if isinstance(e, NOT_SENT):
        return refused(str(e))
    if isinstance(e, TimeoutError):
        return "error: no answer in time"
    return f"error: {error_text(e) if isinstance(e, Exception) else repr(e)}"
