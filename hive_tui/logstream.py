"""Following a command's output line by line, without blocking the event loop."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import AsyncIterator

from .runtime.procs import signal_group

LINE_LIMIT = 1 << 20


async def follow_command(argv: list[str]) -> AsyncIterator[str]:
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
                yield f"[a line over {LINE_LIMIT} bytes was left out]"
                continue
            if not raw:
                break
            yield raw.decode("utf-8", "replace").rstrip("\r\n")
    finally:
        if proc.returncode is None:
            signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()
