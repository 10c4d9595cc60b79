"""Watching the agents' folders, so that an agent's row is pushed whenever
one of its inputs changes on disk: the status file its agent writes, its
pause marker, its container's run state.

One inotify instance and one thread. Only the two areas that hold the
agents' folders (agents/ and containers/) are watched, and each agent's
folder in them: never the hive as a whole, and never by polling.

Agents write their own folders and are hostile. Nothing they do there is
read here: a change only asks for the agent's row, which the engine reads
the safe way (fsutil). Changes are handed over in batches, at most one per
WINDOW, each naming every agent that changed since the last: so a flood of
writes asks for at most one row per agent per WINDOW, what the rows share
(who has one, the meta lock) is read once per batch however many agents
change, and a change after a batch always makes another, so the last change
is never lost. A watched folder that goes takes its watch with it; a link in
an agent's place is never watched through.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..names import is_valid_name
from . import inotify

log = logging.getLogger(__name__)

# At most one batch per WINDOW seconds.
WINDOW = 0.2
# A change after a quiet spell waits this long, so that a file written in a
# few steps is read once, whole.
SETTLE = 0.02
READ_SIZE = 1 << 16

# The files of an agent's own folder that its row is read from; the agent
# writes many others (notes, credentials) that are none of the row's business.
AGENT_FILES = frozenset({b"status.json", b"paused"})

_SELF = inotify.IN_DELETE_SELF | inotify.IN_MOVE_SELF | inotify.IN_ONLYDIR | inotify.IN_DONT_FOLLOW
_ENTRIES = inotify.IN_CREATE | inotify.IN_DELETE | inotify.IN_MOVED_FROM | inotify.IN_MOVED_TO
_AREA_MASK = _ENTRIES | _SELF
# The agent writes its status file in place or renames it into place.
_AGENT_MASK = _ENTRIES | inotify.IN_MODIFY | inotify.IN_CLOSE_WRITE | inotify.IN_ATTRIB | _SELF
# Not IN_MODIFY: the agent's log grows there all the time, and the runtime's
# own records are written whole (closed or renamed into place).
_CONTAINER_MASK = _ENTRIES | inotify.IN_CLOSE_WRITE | inotify.IN_ATTRIB | _SELF

AREAS = {"agents": _AGENT_MASK, "containers": _CONTAINER_MASK}


class FolderWatch:
    """Calls `changed(names)` (in its own thread) with the agents of which
    something changed on disk, in batches at most one WINDOW apart."""

    def __init__(self, root: Path, changed: Callable[[list[str]], None], window: float = WINDOW):
        self.root = root
        self.changed = changed
        self.window = window
        self._fd = -1
        self._wake_r, self._wake_w = -1, -1
        self._lock = threading.Lock()
        # wd -> (area, agent name or None for the area itself)
        self._watches: dict[int, tuple[str, str | None]] = {}
        self._dirty: set[str] = set()
        self._next: float | None = None
        self._last = float("-inf")
        self._warned: set[str] = set()
        self._stop = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Watch every agent's folders from now on; the watches are in place when this returns."""
        try:
            self._fd = inotify.init()
        except OSError as e:
            log.warning("agents' rows will follow on-disk changes only at their next action: %s", e.strerror)
            return
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._sync()
        self._thread = threading.Thread(target=self._run, name="hive-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._stop = True
            os.write(self._wake_w, b"x")
            self._thread.join()
            self._thread = None
        for fd in (self._fd, self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._fd = self._wake_r = self._wake_w = -1

    # -- the watches

    def _sync(self) -> None:
        """Watch both areas, and every agent folder now in them."""
        for area in AREAS:
            if self._add(area, None) is None:
                continue
            try:
                names = os.listdir(self.root / area)
            except OSError:
                continue
            for name in names:
                if is_valid_name(name):
                    self._add(area, name)

    def _add(self, area: str, name: str | None) -> int | None:
        path = self.root / area if name is None else self.root / area / name
        try:
            # A link in an agent's place is refused (IN_DONT_FOLLOW, IN_ONLYDIR), never watched through.
            wd = inotify.add_watch(self._fd, path, _AREA_MASK if name is None else AREAS[area])
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP) and str(path) not in self._warned:
                self._warned.add(str(path))
                log.warning("not watching %s (%s): its row follows on-disk changes only at its next action",
                            path, e.strerror)
            return None
        with self._lock:
            self._watches[wd] = (area, name)
        return wd

    # -- the thread

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while not self._stop:
            timeout = None
            if self._next is not None:
                timeout = max(0, int((self._next - time.monotonic()) * 1000) + 1)
            for fd, _ in poller.poll(timeout):
                if fd == self._fd:
                    self._read()
                else:
                    _drain(self._wake_r)
            if not self._stop:
                self._fire()

    def _read(self) -> None:
        try:
            data = os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return
        for wd, mask, entry in inotify.events(data):
            if mask & inotify.IN_Q_OVERFLOW:
                # Events were lost: every agent is looked at again.
                self._sync()
                for area, name in list(self._watches.values()):
                    if name is not None:
                        self._mark(name)
                continue
            with self._lock:
                where = self._watches.get(wd)
                if mask & inotify.IN_IGNORED:
                    # The kernel dropped the watch (its folder went): so do we.
                    self._watches.pop(wd, None)
            if where is None:
                continue
            area, name = where
            if name is None:
                self._area_event(area, mask, entry)
            elif area != "agents" or not entry or entry in AGENT_FILES:
                self._mark(name)

    def _area_event(self, area: str, mask: int, entry: bytes) -> None:
        try:
            name = os.fsdecode(entry)
        except UnicodeDecodeError:
            return
        if not is_valid_name(name):
            return
        if mask & (inotify.IN_CREATE | inotify.IN_MOVED_TO) and _is_folder(self.root / area / name):
            self._add(area, name)
        self._mark(name)

    def _mark(self, name: str) -> None:
        self._dirty.add(name)
        if self._next is None:
            self._next = max(time.monotonic() + SETTLE, self._last + self.window)

    def _fire(self) -> None:
        if self._next is None or time.monotonic() < self._next:
            return
        due = sorted(self._dirty)
        self._dirty.clear()
        self._next = None
        try:
            self.changed(due)
        except Exception:
            log.exception("pushing the rows of %s after a change on disk", ", ".join(due))
        # Counted from the batch's end: a slow batch leaves the engine a window before the next.
        self._last = time.monotonic()


def _is_folder(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass
