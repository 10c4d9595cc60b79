"""Following an agent's log line by line, without blocking the event loop.

Where the runtime keeps the log in a file (the local runtime), it is followed
in this process: no child process to outlive its reader, and one inotify
instance shared by every follower (the kernel allows a user few of them).
Where the log is a command's output (journalctl on NixOS), the command runs
in its own process group and is killed as soon as its reader stops.

Either way a follower lives exactly as long as whoever iterates it: stop
iterating (or close the iterator) and it is gone.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import stat
import subprocess
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from pathlib import Path

from ..errors import HiveError
from . import inotify
from .logindex import line_text
from .runtime.procs import signal_group

log = logging.getLogger(__name__)

LINE_LIMIT = 1 << 20
# How far back from the end a follower looks for its first lines: a log of
# huge lines must not make one request read gigabytes.
BACKLOG_LIMIT = 8 << 20
READ_CHUNK = 1 << 16

LogSource = Path | list[str]


def log_source(engine, name: str, lines: int) -> LogSource:
    """What to follow for `name`'s log: its file, or the command that prints it.

    Raises HiveError for an unknown agent or a bad `lines`, before anything runs.
    """
    argv = engine.log_argv(name, lines, True)
    path = engine.runtime.log_file(name)
    return argv if path is None else path


async def follow(source: LogSource, lines: int) -> AsyncGenerator[str, None]:
    """The last `lines` lines of `source`, then each new one until the caller stops."""
    followed = follow_file(source, lines) if isinstance(source, Path) else follow_command(source)
    async with aclosing(followed):
        async for line in followed:
            yield line


async def follow_command(argv: list[str]) -> AsyncGenerator[str, None]:
    """Each line `argv` prints, until it exits or the caller stops iterating.

    The command runs in its own process group and is killed when the caller
    stops; a line over LINE_LIMIT bytes is replaced by a notice.
    """
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True, limit=LINE_LIMIT,
    )
    assert proc.stdout is not None
    try:
        while True:
            try:
                raw = await proc.stdout.readline()
            except ValueError:
                yield _too_long()
                continue
            if not raw:
                break
            yield raw.decode("utf-8", "replace").rstrip("\r\n")
    finally:
        if proc.returncode is None:
            signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()


async def follow_file(path: Path, lines: int) -> AsyncGenerator[str, None]:
    """The last `lines` lines of the file at `path`, then each line added to it.

    Follows the name, as `tail --follow=name --retry` does: a file that does
    not exist yet is waited for, and one replaced (an agent restarted into a
    new log) is read to its end and then left for the new one. Only a regular
    file is read, never through a symlink. Ends when the folder holding the
    file is removed.
    """
    watch = _Inotify.of_loop().watch(path.parent, path.name)
    reader = _LogFile(path)
    try:
        for line in reader.last(lines):
            yield line
        while True:
            for line in reader.new_lines():
                yield line
            if watch.gone:
                return
            await watch.changed()
    finally:
        watch.close()
        reader.close()


def _too_long() -> str:
    return f"[a line over {LINE_LIMIT} bytes was left out]"


class _LogFile:
    """One log file read as it grows, by name: reopened when the name points at a new file."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None
        self.identity: tuple[int, int] | None = None
        self.pos = 0
        self.partial = bytearray()
        self.skipping = False
        self.refused: str | None = None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _open(self) -> bool:
        """Open what the name holds now; False (and one warning) when it is not a regular file."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        except OSError as e:
            self._refuse(f"cannot open it: {e.strerror}" if e.errno != errno.ELOOP else "it is a symlink")
            return False
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            self._refuse("it is not a regular file")
            return False
        self.close()
        self.fd, self.identity, self.pos = fd, (st.st_dev, st.st_ino), 0
        self.partial.clear()
        self.skipping = False
        self.refused = None
        return True

    def _refuse(self, why: str) -> None:
        if self.refused != why:
            log.warning("not following %s: %s", self.path, why)
        self.refused = why

    def last(self, count: int, kept: bool = True) -> list[str]:
        """The last `count` complete lines, with the kept file's (name.1) when
        the log holds fewer; reading then goes on from the end."""
        if not self._open():
            return []
        assert self.fd is not None
        size = os.fstat(self.fd).st_size
        start = max(0, size - BACKLOG_LIMIT)
        data = os.pread(self.fd, size - start, start)
        self.pos = start + len(data)
        end = data.rfind(b"\n") + 1
        pieces = data[:end].split(b"\n")[:-1]
        if start > 0 and pieces:
            pieces = pieces[1:]  # the first may be the end of a line cut off by the limit
        found = [_too_long() if len(p) > LINE_LIMIT else self._text(p) for p in pieces[-count:]] if count > 0 else []
        if start == 0 and len(found) < count and kept:
            # Just rotated: the lines before are in the kept file.
            older = _LogFile(self.path.with_name(self.path.name + ".1"))
            try:
                found = older.last(count - len(found), kept=False) + found
            finally:
                older.close()
        # The unfinished last line waits for its end, as any other.
        return found + list(self._split(data[end:]))

    def new_lines(self) -> Iterator[str]:
        """Every complete line added since the last call, across a truncation or a new file."""
        yield from self._read_on()
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return
        if (st.st_dev, st.st_ino) == self.identity:
            return
        # A new file under the name: the old one is read to its end (done above), then the new from its start.
        old = self.identity
        if self._open():
            if old is not None:
                yield from self._missed(old)
            yield from self._read_on()

    def _missed(self, old: tuple[int, int]) -> Iterator[str]:
        """The kept file (name.1) when the log rotated twice since it was last
        read: it holds the lines between the old file and the new."""
        kept = _LogFile(self.path.with_name(self.path.name + ".1"))
        try:
            if kept._open() and kept.identity not in (old, self.identity):
                yield from kept._read_on()
        finally:
            kept.close()

    def _read_on(self) -> Iterator[str]:
        if self.fd is None:
            return
        if os.fstat(self.fd).st_size < self.pos:
            # Truncated in place: start again from the top.
            self.pos = 0
            self.partial.clear()
            self.skipping = False
        while chunk := os.pread(self.fd, READ_CHUNK, self.pos):
            self.pos += len(chunk)
            yield from self._split(chunk)

    def _split(self, chunk: bytes) -> Iterator[str]:
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            piece = chunk[start:end]
            start = end + 1
            if self.skipping:
                self.skipping = False
            elif len(self.partial) + len(piece) > LINE_LIMIT:
                yield _too_long()
            else:
                self.partial += piece
                yield self._text(bytes(self.partial))
            self.partial.clear()
        rest = chunk[start:]
        if self.skipping:
            return
        if len(self.partial) + len(rest) > LINE_LIMIT:
            yield _too_long()
            self.partial.clear()
            self.skipping = True
        else:
            self.partial += rest

    @staticmethod
    def _text(raw: bytes) -> str:
        # The agent's text: the host's stamp on the line is left to log_page.
        return line_text(raw)


# -- inotify (see inotify.py)

_DIR_MASK = (inotify.IN_MODIFY | inotify.IN_ATTRIB | inotify.IN_MOVED_FROM | inotify.IN_MOVED_TO
             | inotify.IN_CREATE | inotify.IN_DELETE | inotify.IN_DELETE_SELF | inotify.IN_MOVE_SELF
             | inotify.IN_ONLYDIR | inotify.IN_DONT_FOLLOW)


class _Watch:
    """One follower's interest in one name in a folder."""

    def __init__(self, owner: "_Inotify", wd: int, name: bytes):
        self.owner, self.wd, self.name = owner, wd, name
        self.gone = False
        self._event = asyncio.Event()

    def notify(self, gone: bool) -> None:
        self.gone = self.gone or gone
        self._event.set()

    async def changed(self) -> None:
        """Returns once the name (or its folder) changed since the last return."""
        await self._event.wait()
        self._event.clear()

    def close(self) -> None:
        self.owner.unwatch(self)


class _Inotify:
    """One inotify instance per event loop, opened for the first follower and closed after the last."""

    _per_loop: dict[asyncio.AbstractEventLoop, "_Inotify"] = {}

    @classmethod
    def of_loop(cls) -> "_Inotify":
        loop = asyncio.get_running_loop()
        if loop not in cls._per_loop:
            cls._per_loop[loop] = cls(loop)
        return cls._per_loop[loop]

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        try:
            self.fd = inotify.init()
        except OSError as e:
            raise HiveError(f"cannot follow logs: {e.strerror}") from None
        self.watches: dict[int, set[_Watch]] = {}
        loop.add_reader(self.fd, self._read)

    def watch(self, folder: Path, name: str) -> _Watch:
        try:
            wd = inotify.add_watch(self.fd, folder, _DIR_MASK)
        except OSError as e:
            self._close_if_unused()
            raise HiveError(f"cannot follow {folder / name}: {e.strerror}") from None
        watch = _Watch(self, wd, os.fsencode(name))
        self.watches.setdefault(wd, set()).add(watch)
        return watch

    def unwatch(self, watch: _Watch) -> None:
        same = self.watches.get(watch.wd)
        if same is None or watch not in same:
            return
        same.discard(watch)
        if not same:
            del self.watches[watch.wd]
            if not watch.gone:
                inotify.rm_watch(self.fd, watch.wd)
        self._close_if_unused()

    def _close_if_unused(self) -> None:
        if not self.watches and self._per_loop.get(self.loop) is self:
            del self._per_loop[self.loop]
            self.loop.remove_reader(self.fd)
            os.close(self.fd)

    def _read(self) -> None:
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return
        for wd, mask, name in inotify.events(data):
            if mask & inotify.IN_Q_OVERFLOW:
                # Events were lost: every follower looks again.
                for watches in self.watches.values():
                    for watch in watches:
                        watch.notify(False)
                continue
            gone = bool(mask & inotify.DIR_GONE) and not name
            for watch in list(self.watches.get(wd, ())):
                if gone or name == watch.name:
                    watch.notify(gone)
            if mask & inotify.IN_IGNORED:
                # The kernel dropped the watch (its folder went): so do we.
                self.watches.pop(wd, None)
        self._close_if_unused()
