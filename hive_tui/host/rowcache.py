"""What an agent's row is read from, cached between reads where it has not
changed: a status of a thousand agents must not reread a thousand files and
a lock that stayed the same.

Only a cache's key is read to tell: a file's identity and times, a ref's
value. What it caches is what was read the usual way (fsutil's safe reads),
so a hostile file is exactly as harmless through the cache as without it.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable
from typing import Any

from . import gitrepo
from .fsutil import read_json

# A file changed this close to when it was read may change again within the
# same tick of the file system's clock without its times moving: its
# content is trusted from the cache only once it is older than this.
RACY_NS = 2_000_000_000


class StatusFiles:
    """Each agent's status.json, read again only when its inode, size or times moved;
    or another file of each agent's, read with `reader` (agentconf.read_parent)."""

    def __init__(self, racy_ns: int = RACY_NS, reader: Callable[[str], Any] | None = None) -> None:
        self.racy_ns = racy_ns
        self.reader = reader
        self._cache: dict[str, tuple[tuple[int, ...], Any, int]] = {}
        self._lock = threading.Lock()

    def read(self, path: str) -> Any:
        """As `reader(path)` (fsutil.read_json(path) when there is none)."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            with self._lock:
                self._cache.pop(path, None)
            return None
        except OSError:
            return self._read(path)
        if not stat.S_ISREG(st.st_mode):
            with self._lock:
                self._cache.pop(path, None)
            return self._read(path)  # unset, and warned about once
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with self._lock:
            hit = self._cache.get(path)
        if hit is not None and hit[0] == key and max(st.st_mtime_ns, st.st_ctime_ns) < hit[2] - self.racy_ns:
            return hit[1]
        read_at = time.time_ns()
        data = self._read(path)
        with self._lock:
            self._cache[path] = (key, data, read_at)
        return data

    def _read(self, path: str) -> Any:
        return self.reader(path) if self.reader is not None else read_json(path)


class CommittedLock:
    """The meta flake's committed flake.lock, parsed again only when its main moved."""

    def __init__(self, meta) -> None:
        self._meta = meta
        self._cached: tuple[str, dict] | None = None

    def get(self) -> dict:
        # The key is read before the lock: a commit in between leaves a newer
        # lock under the older key, read again next time, never an older one kept.
        head = gitrepo.main_target(self._meta.dir)
        cached = self._cached
        if cached is not None and cached[0] == head:
            return cached[1]
        lock = self._meta.committed_lock()
        self._cached = (head, lock)
        return lock
