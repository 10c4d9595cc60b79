"""Where a hive keeps its state, and the lock that makes one engine its owner.

The layout follows hyperhive's /var/lib/hyperhive:

    applied/<name>/    the git repo the hive owns for each agent
    proposed/<name>/   the repo the manager commits proposed config to
    agents/<name>/     the agent's own state (credentials, notes, status)
    containers/<name>/ what the local runtime keeps for a running agent
    meta/              the meta flake (a git repo)
    hive.db            approvals, events and the deploy journal
    hive.lock          held by the engine that owns this root
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .errors import StateLocked
from .names import check_name, path_under


@dataclass(frozen=True)
class StateRoot:
    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike) -> "StateRoot":
        return cls(Path(root).absolute())

    def create(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for sub in ("applied", "proposed", "agents", "containers"):
            (self.root / sub).mkdir(mode=0o700, exist_ok=True)

    def _agent_path(self, area: str, name: str) -> Path:
        return path_under(self.root, area, check_name(name))

    def applied(self, name: str) -> Path:
        return self._agent_path("applied", name)

    def proposed(self, name: str) -> Path:
        return self._agent_path("proposed", name)

    def agent_state(self, name: str) -> Path:
        return self._agent_path("agents", name)

    def container(self, name: str) -> Path:
        return self._agent_path("containers", name)

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
    """An exclusive `flock` on hive.lock, with the holder written inside.

    The kernel drops the lock when the holding process dies, so a crashed
    engine never leaves a stale lock behind; the text in the file only serves
    to name the holder in the refusal.
    """

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self, wait: float = 3.0) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise StateLocked(
                        f"state root {self.path.parent} is owned by another engine "
                        f"({holder}); stop it or talk to it with --host"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_holder_record()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


def _holder_record() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join(sys.argv),
        "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']} on {info['host']}, `{info['command']}`, since {info['since']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"
