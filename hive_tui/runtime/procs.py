"""Processes we did not necessarily start: is it still the one we think, and
how to wait for it without polling."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


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


@dataclass(frozen=True)
class Outcome:
    code: int
    timed_out: bool
    tail: list[str]


def run_streaming(
    argv: list[str],
    on_output: Callable[[str], None],
    timeout: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    tail_lines: int = 40,
) -> Outcome:
    """Run `argv` in its own process group, handing each output line to `on_output`.

    stdout and stderr are merged, copied to `log` when given, and the last
    `tail_lines` lines kept for an error message. After `timeout` seconds the
    whole group is killed; whatever the command left running goes too.
    Raises OSError when the program cannot be started.
    """
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        signal_group(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, expire)
    timer.start()
    tail: deque[str] = deque(maxlen=tail_lines)
    try:
        with open(log if log is not None else os.devnull, "wb") as sink:
            assert proc.stdout is not None
            for raw in proc.stdout:
                sink.write(raw)
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                tail.append(line)
                on_output(line)
        code = proc.wait()
    finally:
        timer.cancel()
        signal_group(proc.pid, signal.SIGKILL)
        if proc.stdout is not None:
            proc.stdout.close()
    return Outcome(code, expired.is_set(), list(tail))
