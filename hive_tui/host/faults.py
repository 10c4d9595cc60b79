"""Fault points for fault-injection tests.

`crash_point("deploy:tagged")` marks a step boundary, just before a write.
Two kinds of fault can be set off there, and neither is ever set outside
those tests:

- a crash: HIVE_TUI_CRASH_AT names the point, and the process kills itself
  with SIGKILL, the way a power cut or the OOM killer would, so a test can
  check what the next engine makes of it;
- an error: the write that follows fails with an OSError of a given errno
  (ENOSPC for a full disk, EMFILE, EACCES...), so a test can check what the
  running engine makes of it. HIVE_TUI_FAULT_AT="<point>=<ERRNO>" sets one
  for a whole process; `inject` arms one from inside a test, for a given
  number of hits.
"""

from __future__ import annotations

import errno as errnos
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

VARIABLE = "HIVE_TUI_CRASH_AT"
ERROR_VARIABLE = "HIVE_TUI_FAULT_AT"

_armed: dict[str, list[int]] = {}  # point -> [errno, hits left (negative: every hit)]
_armed_lock = threading.Lock()


def crash_point(name: str) -> None:
    if os.environ.get(VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
    error_point(name)


def error_point(name: str) -> None:
    """Raise the OSError a test set for this point, if any."""
    spec = os.environ.get(ERROR_VARIABLE)
    if spec:
        point, _, code = spec.rpartition("=")
        if point == name:
            raise _error(getattr(errnos, code), name)
    if not _armed:
        return
    with _armed_lock:
        armed = _armed.get(name)
        if armed is None or armed[1] == 0:
            return
        armed[1] -= 1
        number = armed[0]
    raise _error(number, name)


def _error(code: int, point: str) -> OSError:
    return OSError(code, f"{os.strerror(code)} (injected at {point})")


@contextmanager
def inject(point: str, code: int, times: int = 1) -> Iterator[None]:
    """Within the block, the next `times` hits of `point` raise OSError(`code`);
    `times=-1`: every hit does."""
    with _armed_lock:
        _armed[point] = [code, times]
    try:
        yield
    finally:
        with _armed_lock:
            _armed.pop(point, None)


def hits_left(point: str) -> int | None:
    """How many hits an armed point still fails; None if it is not armed."""
    with _armed_lock:
        armed = _armed.get(point)
        return None if armed is None else armed[1]
