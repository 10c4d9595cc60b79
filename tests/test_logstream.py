"""Following a log file in this process, as the local runtime's logs are:
by name, across a new file and a truncation, and never through a symlink or
into a FIFO an agent put in the log's place."""

from __future__ import annotations

import asyncio
import os
from contextlib import aclosing
from pathlib import Path

from hive_tui.host import logstream
from hive_tui.host.logstream import LINE_LIMIT, follow_file


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def take(followed, count: int) -> list[str]:
    return [await followed.__anext__() for _ in range(count)]


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def test_the_last_lines_then_each_new_one_across_a_new_file_and_a_truncation(tmp_path):
    log = tmp_path / "log"
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(10)) + b"half")

    async def scenario():
        async with aclosing(follow_file(log, 3)) as followed:
            seen = await take(followed, 3)
            append(log, b" done\nnext\n")
            seen += await take(followed, 2)
            # A restarted agent's new log under the same name.
            log.rename(tmp_path / "log.old")
            log.write_bytes(b"a fresh log\n")
            seen += await take(followed, 1)
            log.write_bytes(b"")  # truncated in place, then shorter than before
            append(log, b"again\n")
            seen += await take(followed, 1)
            return seen

    assert run(scenario()) == ["line 7", "line 8", "line 9", "half done", "next", "a fresh log", "again"]


def test_a_log_that_does_not_exist_yet_is_waited_for(tmp_path):
    log = tmp_path / "log"

    async def scenario():
        async with aclosing(follow_file(log, 5)) as followed:
            first = asyncio.ensure_future(followed.__anext__())
            await asyncio.sleep(0)
            log.write_bytes(b"hello\n")
            return await first

    assert run(scenario()) == "hello"


def test_a_symlink_or_fifo_in_the_logs_place_is_not_followed(tmp_path, caplog):
    secret = tmp_path / "secret"
    secret.write_bytes(b"not for agents\n")
    log = tmp_path / "log"
    log.symlink_to(secret)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    async def scenario():
        seen = []
        async with aclosing(follow_file(log, 5)) as through_link, aclosing(follow_file(fifo, 5)) as into_fifo:
            pending = asyncio.ensure_future(through_link.__anext__())
            blocked = asyncio.ensure_future(into_fifo.__anext__())
            await asyncio.sleep(0)
            # The link is replaced by a real file: that one is read.
            log.unlink()
            log.write_bytes(b"real\n")
            seen.append(await pending)
            assert not blocked.done()
            blocked.cancel()
            await asyncio.gather(blocked, return_exceptions=True)
        return seen

    assert run(scenario()) == ["real"]
    assert any("it is a symlink" in r.getMessage() for r in caplog.records)
    assert any("not a regular file" in r.getMessage() for r in caplog.records)
    assert secret.read_bytes() == b"not for agents\n"


def test_a_line_over_the_limit_is_replaced_by_a_notice(tmp_path):
    log = tmp_path / "log"
    log.write_bytes(b"")

    async def scenario():
        async with aclosing(follow_file(log, 5)) as followed:
            append(log, b"x" * (LINE_LIMIT + 10) + b"\nshort\n")
            return await take(followed, 2)

    assert run(scenario()) == [f"[a line over {LINE_LIMIT} bytes was left out]", "short"]


def test_followers_share_one_inotify_instance_closed_after_the_last(tmp_path):
    log = tmp_path / "log"
    log.write_bytes(b"one\n")

    async def scenario():
        followers = [follow_file(log, 1) for _ in range(200)]
        firsts = [await f.__anext__() for f in followers]
        loop = asyncio.get_running_loop()
        shared = logstream._Inotify._per_loop[loop]
        for f in followers:
            await f.aclose()
        return firsts, shared, loop in logstream._Inotify._per_loop

    firsts, shared, still_open = run(scenario())
    assert firsts == ["one"] * 200
    assert shared.fd >= 0 and not still_open
