"""inotify through libc: the standard library has no binding, and the few
calls needed do not justify a dependency. Shared by the log followers and
the status watcher."""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Iterator

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF = 0x400, 0x800
IN_Q_OVERFLOW, IN_IGNORED, IN_ISDIR = 0x4000, 0x8000, 0x40000000
IN_ONLYDIR, IN_DONT_FOLLOW = 0x1000000, 0x2000000
# What a watched folder reports about itself when it goes.
DIR_GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED

_EVENT = struct.Struct("iIII")
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def init() -> int:
    """A new non-blocking inotify descriptor; OSError when the kernel allows no more."""
    return _check(_libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC), "inotify_init1")


def add_watch(fd: int, path: str | os.PathLike, mask: int) -> int:
    return _check(_libc.inotify_add_watch(fd, os.fsencode(path), mask), "inotify_add_watch")


def rm_watch(fd: int, wd: int) -> None:
    _libc.inotify_rm_watch(fd, wd)


def events(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(watch, mask, name) of each event in what one read returned."""
    offset = 0
    while offset + _EVENT.size <= len(data):
        wd, mask, _, size = _EVENT.unpack_from(data, offset)
        name = data[offset + _EVENT.size:offset + _EVENT.size + size].rstrip(b"\0")
        offset += _EVENT.size + size
        yield wd, mask, name
