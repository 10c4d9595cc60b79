"""Small file helpers shared by the engine and the local runtime.

Agents write their own folders, so anything the engine reads there may be a
FIFO that blocks an `open`, a link to a host secret, a device that never
ends or a file of gigabytes. Such a file is read here without following a
link, without blocking, and only when it is a regular file under a size
bound; anything else reads as unset, with one warning per file.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import stat
import threading
from pathlib import Path

from ..errors import HiveError

log = logging.getLogger(__name__)

JSON_LIMIT = 64 * 1024

_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC


class NotRegular(Exception):
    """A file that is there but is no regular file the engine may read."""


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` so a reader sees the old or the new file, never half.

    The temporary file is created anew (O_EXCL, O_NOFOLLOW): a link planted
    under its name is replaced, never written through.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    with open(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def read_regular(path: Path | str, limit: int) -> bytes | None:
    """The bytes of the regular file at `path`, at most `limit` of them.

    None when there is no file. NotRegular when there is something else: a
    link (never followed), a FIFO, socket, device or folder, or a file over
    `limit` bytes. The open never blocks.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise NotRegular(_kind_of(path, e)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegular(_describe_mode(st.st_mode))
        if st.st_size > limit:
            raise NotRegular(f"a file over the limit of {limit} bytes")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise NotRegular(f"a file over the limit of {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_json(path: Path | str, limit: int = JSON_LIMIT) -> dict | None:
    """A JSON object from `path`; None when the file is missing, no regular
    file (warned about once), larger than `limit` bytes, or not an object."""
    try:
        raw = read_regular(path, limit)
    except NotRegular as e:
        _warn_once(path, str(e))
        return None
    _forget(path)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def is_marker(path: Path | str) -> bool:
    """Whether the marker file at `path` is set: only a regular file counts,
    and anything else in its place is warned about once."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        _forget(path)
        return False
    if stat.S_ISREG(st.st_mode):
        _forget(path)
        return True
    _warn_once(path, _describe_mode(st.st_mode))
    return False


def set_marker(path: Path, present: bool) -> None:
    """Create or remove the marker file at `path`, replacing whatever else
    stands in its place (a link is removed, never followed)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise HiveError(f"{path} is a folder where a marker file belongs; remove it first")
    # Calls for one marker may run at once (two clients pausing an agent): one
    # that finds the work done by the other between its look and its change is done.
    if st is not None and (not present or not stat.S_ISREG(st.st_mode)):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        st = None
    if present and st is None:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        except FileExistsError:
            pass
    _forget(path)


def remove_entry(dir_fd: int, name: str) -> None:
    """Remove the entry `name` in the folder open as `dir_fd`, following no
    link: a link or file is unlinked, a folder removed with all it holds."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        # rmtree's fd-based walk checks that each folder it opens is the one
        # it saw with lstat, so a link swapped in meanwhile is refused, not
        # followed, and links inside are unlinked.
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def open_folder(name: str | Path, dir_fd: int | None = None) -> int:
    """A descriptor of the folder `name`, refusing a link in its last component."""
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise HiveError(f"{name} is a symbolic link or no folder") from None
        raise


# What was last warned about for each path, so a bad file is reported once
# and not on every read of a status row. Keyed by path alone, the table
# stays as small as the set of files the engine reads.
_warned: dict[str, str] = {}
_warned_lock = threading.Lock()


def _warn_once(path: Path | str, what: str) -> None:
    key = str(path)
    with _warned_lock:
        if _warned.get(key) == what:
            return
        _warned[key] = what
    log.warning("%s reads as unset: it is %s, and only a regular file is read", path, what)


def _forget(path: Path | str) -> None:
    if _warned:
        with _warned_lock:
            _warned.pop(str(path), None)


def _kind_of(path: Path | str, error: OSError) -> str:
    try:
        return _describe_mode(os.lstat(path).st_mode)
    except OSError:
        return f"unreadable ({error.strerror})"


def _describe_mode(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISREG, "a regular file")):
        if test(mode):
            return name
    return "of an unknown kind"
