"""Processes we did not necessarily start: is it still the one we think, and
how to wait for it without polling."""

from __future__ import annotations

import os
import select
import signal


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if gone.

    Recorded beside a pid, it tells a live process from a later one that
    reused the pid. A zombie counts as gone.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(b")") + 2:].split()
    if fields[0] == b"Z":
        return None
    return int(fields[19])


def is_alive(pid: int, ticks: int | None) -> bool:
    return ticks is not None and start_ticks(pid) == ticks


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait up to `timeout` seconds for `pid` to exit; True if it did."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(timeout * 1000))
    finally:
        os.close(fd)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
