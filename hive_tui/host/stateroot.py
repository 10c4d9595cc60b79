"""Where a hive keeps its state, and the lock that makes one engine its owner.

The layout follows hyperhive's /var/lib/hyperhive:

    applied/<name>/    the git repo the hive owns for each agent
    proposed/<name>/   the repo the manager commits proposed config to
    agents/<name>/     the agent's own state (credentials, notes, status)
    containers/<name>/ what the local runtime keeps for a running agent
    meta/              the meta flake (a git repo)
    hive.db            approvals, events and the deploy journal
    hive.lock          held by the engine that owns this root
    hive.supervisor.*  the local runtime's supervisor: socket, lock and log
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from functools import cached_property
from datetime import datetime, timezone
from pathlib import Path

from ..errors import HiveError, StateLocked
from ..names import check_name, path_under
from .fsutil import NotRegular, is_marker, open_folder, read_json, read_regular, remove_entry, write_atomic

# The folders that hold something of each agent, all removed by a purge.
AGENT_AREAS = ("applied", "proposed", "agents", "containers")


@dataclass(frozen=True)
class StateRoot:
    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike) -> "StateRoot":
        return cls(Path(root).absolute())

    def create(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for sub in AGENT_AREAS:
            (self.root / sub).mkdir(mode=0o700, exist_ok=True)

    @cached_property
    def resolved(self) -> Path:
        """The root with its links resolved, once: it is the operator's, and
        resolving it for each of a thousand agents' paths was most of a status."""
        return self.root.resolve()

    def _agent_path(self, area: str, name: str) -> Path:
        return path_under(self.resolved, area, check_name(name), resolved=True)

    def applied(self, name: str) -> Path:
        return self._agent_path("applied", name)

    def proposed(self, name: str) -> Path:
        return self._agent_path("proposed", name)

    def agent_state(self, name: str) -> Path:
        return self._agent_path("agents", name)

    def container(self, name: str) -> Path:
        return self._agent_path("containers", name)

    def has_applied_repo(self, name: str) -> bool:
        """Whether `name` has an applied repo; an entry that is a link has none."""
        try:
            return os.path.isdir(os.path.join(self.applied(name), ".git"))
        except HiveError:
            return False

    def with_applied_repo(self, names: list[str]) -> list[str]:
        """Those of `names` that have an applied repo (see has_applied_repo), in
        their order: one listing of the area, not a path check per name."""
        try:
            area = path_under(self.resolved, "applied", resolved=True)
            with os.scandir(area) as entries:
                folders = {e.name for e in entries if e.is_dir(follow_symlinks=False)}
        except (HiveError, OSError):
            return []
        return [n for n in names if n in folders and os.path.isdir(f"{area}/{n}/.git")]

    def read_agent_json(self, name: str, file: str) -> dict | None:
        """A JSON object the agent wrote in its state folder, or None (see fsutil.read_json)."""
        try:
            return read_json(self.agent_state(name) / file)
        except HiveError:
            return None

    def agent_marker(self, name: str, file: str) -> bool:
        try:
            return is_marker(self.agent_state(name) / file)
        except HiveError:
            return False

    def agent_entries(self, name: str) -> list[str]:
        """The areas that hold an entry for `name`, of whatever kind, links included.

        Raises HiveError when an area is itself a link or no folder: nothing
        under it can be removed without following that link.
        """
        check_name(name)
        found = []
        for area in AGENT_AREAS:
            fd = self._open_area(area)
            try:
                os.lstat(name, dir_fd=fd)
                found.append(area)
            except FileNotFoundError:
                pass
            finally:
                os.close(fd)
        return found

    def remove_agent_entries(self, name: str) -> None:
        """Remove every entry of `name` in the agent areas, following no link
        at any level: a link is removed itself, never what it points to."""
        check_name(name)
        for area in AGENT_AREAS:
            fd = self._open_area(area)
            try:
                remove_entry(fd, name)
            finally:
                os.close(fd)

    def _open_area(self, area: str) -> int:
        root_fd = os.open(self.root.resolve(), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return open_folder(area, dir_fd=root_fd)
        except HiveError:
            raise HiveError(f"{self.root.resolve() / area} is a symbolic link or no folder") from None
        finally:
            os.close(root_fd)

    @property
    def meta(self) -> Path:
        return self.root / "meta"

    @property
    def db(self) -> Path:
        return self.root / "hive.db"

    @property
    def lock(self) -> Path:
        return self.root / "hive.lock"


class OwnerLock:
    """An exclusive `flock` on the state root folder, with the holder named in hive.lock.

    The lock is on the folder itself, which cannot be unlinked from under a
    running engine the way a lock file can: deleting hive.lock does not let
    a second engine in. The kernel drops the lock when the holding process
    dies, so a crashed engine never leaves a stale lock behind; the text in
    hive.lock only serves to name the holder in the refusal.
    """

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self, wait: float = 3.0) -> None:
        root = self.path.parent
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise StateLocked(
                        f"state root {root} is owned by another engine "
                        f"({self._read_holder()}); stop it or talk to it with --host"
                    ) from None
                time.sleep(0.05)
        try:
            self._write_holder()
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            try:
                self._write_holder("")
            except OSError:
                pass  # the lock itself goes with the descriptor
            os.close(self._fd)
            self._fd = None

    def _write_holder(self, text: str | None = None) -> None:
        write_atomic(self.path, json.dumps(_holder_record()) if text is None else text)

    def _read_holder(self) -> str:
        try:
            info = json.loads(read_regular(self.path, 4096) or b"{}")
            return f"pid {info['pid']} on {info['host']}, `{info['command']}`, since {info['since']}"
        except (OSError, NotRegular, ValueError, KeyError, TypeError):
            return "holder unknown"


def _holder_record() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join(sys.argv),
        "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
