"""An agent's log read by line number, lazily: the pages a viewer asks for,
a search, and the first line written after a time.

The local runtime's supervisor writes each line as `<stamp> <text>` (see
runtime/supervisor.py, "The log") and keeps two files, log.1 and log, with
log.base saying where their numbering starts. Here each file gets an index:
the offset just past each of its lines, kept in an `array` (8 bytes a
line), keyed by the file's inode and grown from where it stopped as the
file grows. A file that rotates from log to log.1 keeps its inode, so its
index is kept too. Building runs on whatever thread calls (the dispatcher's
read pool): never on the event loop. A page reads only its lines' bytes; a
search reads a bounded number of bytes per call; a time is found by
bisection on the stamps.

Every byte of these files is the agent's: a line's stamp is taken from its
first 25 bytes only where the supervisor put it, the text after it is
never read as anything but text, and each line and each answer is bounded.
"""

from __future__ import annotations

import os
import re
import threading
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import accumulate, islice
from pathlib import Path

from ..errors import HiveError
from ..models import LogLine, LogPage
from .runtime.supervisor import KEPT, LINE_MAX, open_kept, read_base, stamp

COUNT_MAX = 10_000
# Of one line, the text a page carries. The supervisor cuts lines there too,
# with the same note as a page's, so a line it cut reads the same either way.
TEXT_LIMIT = LINE_MAX
# Of one page, the bytes of text: a page of long lines holds fewer lines than asked.
PAGE_BYTES = 8 << 20
# What a search reads in one call; it answers where it stopped, to be asked again from there.
FIND_BUDGET = 64 << 20
FIND_TEXT_MAX = 1000
# How much is read at once, while indexing and when reading lines that follow each other.
SPAN = 1 << 20
# How many agents' indexes are kept between calls, the least recently used dropped first.
KEPT_LOGS = 16

STAMP_LEN = 25  # "2026-01-02T03:04:05.678Z "
_STAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")
_HEAD = 64
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def split_stamp(raw: bytes) -> tuple[str | None, bytes]:
    """A stored line as (its stamp, or None when it has none, and the agent's text)."""
    if len(raw) >= STAMP_LEN and _STAMP.match(raw):
        return raw[:STAMP_LEN - 1].decode(), raw[STAMP_LEN:]
    return None, raw


def line_text(raw: bytes) -> str:
    """The agent's text of a stored line, without our stamp."""
    return _decode(split_stamp(raw)[1])


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").rstrip("\r")


class _FileIndex:
    """Where each line of one file ends, from its start to where it was last read."""

    def __init__(self, head: bytes):
        self.head = head  # the file's first bytes: an inode used again is another file
        self.ends = array("Q")
        self.scanned = 0

    def grow(self, fd: int, size: int) -> None:
        pos = self.scanned
        while pos < size:
            chunk = os.pread(fd, min(SPAN, size - pos), pos)
            if not chunk:
                break
            parts = chunk.split(b"\n")
            if len(parts) > 1:
                self.ends.extend(islice(accumulate((len(p) + 1 for p in parts[:-1]), initial=pos), 1, None))
            pos += len(chunk)
        self.scanned = pos

    def lines(self) -> int:
        """Its lines: the complete ones and an unfinished last one."""
        return len(self.ends) + (self.scanned > self.start(len(self.ends)))

    def start(self, i: int) -> int:
        return self.ends[i - 1] if i else 0

    def end(self, i: int) -> int:
        """Where line `i`'s text ends (before its newline)."""
        return self.ends[i] - 1 if i < len(self.ends) else self.scanned


@dataclass
class _Segment:
    fd: int
    index: _FileIndex
    first: int  # the number of its first line
    count: int


class _View:
    """The log's files as they are now, each with its numbering, open for one call."""

    def __init__(self, segments: list[_Segment], first: int, total: int):
        self.segments, self.first, self.total = segments, first, total

    def close(self) -> None:
        for s in self.segments:
            os.close(s.fd)

    def locate(self, n: int) -> tuple[_Segment, int]:
        for s in self.segments:
            if s.first <= n < s.first + s.count:
                return s, n - s.first
        raise IndexError(n)

    def runs(self, a: int, b: int, backward: bool = False):
        """Lines a..b-1 as runs of (number, stored bytes, cut at TEXT_LIMIT), each run read at once
        where it is short; with `backward`, from b-1 down to a."""
        segments = reversed(self.segments) if backward else self.segments
        for s in segments:
            lo, hi = max(a, s.first) - s.first, min(b, s.first + s.count) - s.first
            if lo >= hi:
                continue
            yield from _runs(s, lo, hi, backward)


class _Run:
    """Lines that follow each other in one file, read with one read (or the
    first bytes of one line too long for that)."""

    __slots__ = ("segment", "lo", "hi", "data", "backward")

    def __init__(self, segment: _Segment, lo: int, hi: int, data: bytes, backward: bool):
        self.segment, self.lo, self.hi, self.data, self.backward = segment, lo, hi, data, backward

    def lines(self) -> list[tuple[int, bytes, int]]:
        """(number, stored bytes cut at TEXT_LIMIT, stored length) of each line, in the run's direction."""
        idx, base, limit = self.segment.index, self.segment.index.start(self.lo), STAMP_LEN + TEXT_LIMIT
        first = self.segment.first
        if self.hi - self.lo == 1 and idx.end(self.lo) - base > len(self.data):
            found = [(first + self.lo, self.data, idx.end(self.lo) - base)]
        else:
            found = []
            for k in range(self.lo, self.hi):
                at, end = idx.start(k) - base, idx.end(k) - base
                found.append((first + k, self.data[at:min(end, at + limit)], end - at))
        return found[::-1] if self.backward else found

    def next(self) -> int:
        """The number of the line after the run, in its direction."""
        return self.segment.first + (self.lo - 1 if self.backward else self.hi)


def _runs(s: _Segment, lo: int, hi: int, backward: bool):
    idx, limit = s.index, STAMP_LEN + TEXT_LIMIT
    i = hi if backward else lo
    while (i > lo) if backward else (i < hi):
        # A run: as many lines as fit in SPAN bytes, at least one.
        complete = len(idx.ends)
        if backward:
            target = idx.end(i - 1) - SPAN
            if lo == 0 and target <= 0:
                j = 0
            else:
                k = bisect_left(idx.ends, target, max(lo - 1, 0), min(i - 1, complete))
                j = min(max(k + 1, lo), i - 1)
            first, last = j, i
        else:
            j = bisect_right(idx.ends, idx.start(i) + SPAN + 1, i, min(hi, complete))
            if j == complete < hi and idx.scanned - idx.start(i) <= SPAN:
                j = hi  # the unfinished last line fits too
            first, last = i, max(j, i + 1)
        span_start, span_end = idx.start(first), idx.end(last - 1)
        size = span_end - span_start if span_end - span_start <= SPAN else limit  # too long: its first bytes
        yield _Run(s, first, last, os.pread(s.fd, size, span_start), backward)
        i = first if backward else last


class AgentLog:
    """One agent's log (the folder holding log.1, log and log.base), read by line number."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.lock = threading.Lock()
        self.files: dict[tuple[int, int], _FileIndex] = {}

    # -- the verbs

    def page(self, start: int | None, count: int) -> LogPage:
        if type(count) is not int or not 1 <= count <= COUNT_MAX:
            raise HiveError(f"count must be between 1 and {COUNT_MAX}, not {count!r}")
        if start is not None and (type(start) is not int or start < 0):
            raise HiveError(f"start must be a line number (0 or more), or null for the last lines, not {start!r}")
        with self._view() as view:
            if start is None:
                a, b = max(view.first, view.total - count), view.total
            else:
                a = min(max(start, view.first), view.total)
                b = min(a + count, view.total)
            lines: list[LogLine] = []
            budget = PAGE_BYTES
            for run in view.runs(a, b, backward=start is None):
                for n, raw, length in run.lines():
                    if lines and budget < len(raw):
                        break
                    budget -= len(raw)
                    lines.append(_line(n, raw, length))
                else:
                    continue
                break
            if start is None:
                lines.reverse()
            return LogPage(lines=lines, first=view.first, total=view.total)

    def find(self, text: str, start: int, backward: bool = False) -> tuple[int | None, int | None]:
        """The next line at or after `start` (before it, `backward`) whose text holds
        `text`, whatever its case, as (its number, None); (None, None) when none does;
        (None, where to go on) when this call's share of reading ran out first."""
        if not isinstance(text, str) or not 1 <= len(text) <= FIND_TEXT_MAX:
            raise HiveError(f"text must be 1 to {FIND_TEXT_MAX} characters")
        if "\n" in text or "\r" in text:
            raise HiveError("text must be on one line: a log line holds no line break")
        if type(start) is not int or start < 0:
            raise HiveError(f"start must be a line number (0 or more), not {start!r}")
        needle = text.lower()
        ascii_needle = needle.encode() if needle.isascii() else None
        with self._view() as view:
            if backward:
                a, b = view.first, min(start, view.total)
            else:
                a, b = max(start, view.first), view.total
            budget = FIND_BUDGET
            for run in view.runs(a, b, backward):
                budget -= len(run.data)
                # Most runs hold no match: they are looked at whole, and split into lines only when they might.
                if ascii_needle is not None:
                    maybe = ascii_needle in run.data.lower()
                else:
                    maybe = needle in run.data.decode("utf-8", "replace").lower()
                if maybe:
                    for n, raw, _ in run.lines():
                        if needle in line_text(raw).lower():
                            return n, None
                if budget <= 0:
                    on = run.next()
                    if (on >= a) if backward else (on < b):
                        return None, on + 1 if backward else on
            return None, None

    def since(self, at: str) -> int:
        """The number of the first line stamped at or after `at`; the next line's when none is."""
        # Stamps compare as text only between 1970 and 9999: a time outside is one of those ends.
        wanted = stamp(min(max(_parse_time(at).timestamp(), 0), 253402300799))
        with self._view() as view:
            lo, hi = view.first, view.total
            while lo < hi:
                mid = (lo + hi) // 2
                segment, i = view.locate(mid)
                head = os.pread(segment.fd, STAMP_LEN, segment.index.start(i))
                found = split_stamp(head)[0] if len(head) == STAMP_LEN else None
                # A line without a stamp (written before lines had one) counts as older than any.
                if found is not None and found.encode() >= wanted:
                    hi = mid
                else:
                    lo = mid + 1
            return lo

    def texts(self, count: int) -> list[str]:
        """The last `count` lines' text, without their stamps."""
        return [line.text for line in self.page(None, count).lines]

    # -- the files

    def _view(self) -> "_Opened":
        return _Opened(self)

    def _open_view(self) -> _View:
        try:
            folder = os.open(self.folder, _FOLDER_FLAGS)
        except FileNotFoundError:
            return _View([], 0, 0)
        except OSError as e:
            raise HiveError(f"cannot read the log in {self.folder}: {e.strerror}") from None
        try:
            # Opened log first, then log.1: a rotation in between gives the same
            # file twice, which is told apart. Only two rotations in between
            # leave files log.base cannot place: then the view is taken again,
            # as a reader of a seqlock does.
            for _ in range(3):
                view = self._try_view(folder)
                if view is not None:
                    return view
            settled = self._try_view(folder, settle=True)
            assert settled is not None
            return settled
        finally:
            os.close(folder)

    def _try_view(self, folder: int, settle: bool = False) -> _View | None:
        current = open_kept(folder, "log")
        kept = open_kept(folder, KEPT)
        if kept is not None and current is not None and _identity(kept) == _identity(current):
            # Rotated between the two: the file is log.1 now, and a new log was empty a moment ago.
            os.close(current)
            current = None
        fds = [fd for fd in (kept, current) if fd is not None]
        try:
            base = read_base(folder)
            indexes = {fd: self._index(fd) for fd in fds}
            counts = {fd: indexes[fd].lines() for fd in fds}
            kept_first = 0
            if base is not None:
                ino, first = base
                if current is not None and os.fstat(current).st_ino == ino:
                    kept_first = first - (counts[kept] if kept is not None else 0)
                elif kept is not None and os.fstat(kept).st_ino == ino:
                    kept_first = first
                elif not settle:
                    for fd in fds:
                        os.close(fd)
                    return None
            kept_first = max(kept_first, 0)
            segments, n = [], kept_first
            for fd in fds:
                segments.append(_Segment(fd, indexes[fd], n, counts[fd]))
                n += counts[fd]
            live = {_identity(s.fd) for s in segments}
            for key in [k for k in self.files if k not in live]:
                del self.files[key]
            return _View(segments, kept_first, n)
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise

    def _index(self, fd: int) -> _FileIndex:
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        index = self.files.get(key)
        if index is not None and (st.st_size < index.scanned or os.pread(fd, len(index.head), 0) != index.head):
            index = None  # truncated, or another file on a used inode
        if index is None:
            index = self.files[key] = _FileIndex(os.pread(fd, _HEAD, 0))
        index.grow(fd, st.st_size)
        return index


class _Opened:
    """A view of the log for one `with` block, under the agent's lock."""

    def __init__(self, log: AgentLog):
        self.log = log

    def __enter__(self) -> _View:
        self.log.lock.acquire()
        try:
            self.view = self.log._open_view()
        except BaseException:
            self.log.lock.release()
            raise
        return self.view

    def __exit__(self, *exc) -> None:
        try:
            self.view.close()
        finally:
            self.log.lock.release()


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _line(n: int, raw: bytes, length: int) -> LogLine:
    at, text = split_stamp(raw)
    shown = _decode(text[:TEXT_LIMIT])
    if length - (len(raw) - len(text)) > TEXT_LIMIT:
        shown += f" [hive-tui: the rest of this line was cut at {TEXT_LIMIT} bytes]"
    return LogLine(n=n, at=at, text=shown)


def _parse_time(at: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(at) if isinstance(at, str) and len(at) <= 64 else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise HiveError(f"at must be an RFC 3339 time with its offset (e.g. 2026-01-02T03:04:05Z), not {at!r}")
    return parsed.astimezone(timezone.utc)


_LOGS: OrderedDict[Path, AgentLog] = OrderedDict()
_LOGS_LOCK = threading.Lock()


def agent_log(folder: Path) -> AgentLog:
    """The log in `folder`, with the index kept from earlier calls."""
    with _LOGS_LOCK:
        log = _LOGS.pop(folder, None) or AgentLog(folder)
        _LOGS[folder] = log
        while len(_LOGS) > KEPT_LOGS:
            _LOGS.popitem(last=False)
        return log

