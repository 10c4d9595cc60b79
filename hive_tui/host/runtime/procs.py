"""Processes we did not necessarily start: is it still the one we think, and
how to wait for it without polling.

A build runs in a process group of its own, recorded in a file while it
runs (BUILD_RECORD, in its container's folder), so that a new engine can end
the build a killed one left behind.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..fsutil import read_json, write_atomic

BUILD_RECORD = "build.json"


def _stat(pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rindex(b")") + 2:].split()


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if gone.

    Recorded beside a pid, it tells a live process from a later one that
    reused the pid. A zombie counts as gone.
    """
    fields = _stat(pid)
    if fields is None or fields[0] == b"Z":
        return None
    return int(fields[19])


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes in process group `pgid`."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and fields[0] != b"Z" and int(fields[2]) == pgid:
                members.append(int(entry))
    return members


def end_recorded_group(record: Path, timeout: float = 10.0) -> list[int]:
    """SIGKILL the process group a `run_streaming` record names, if it is still
    the one recorded, and wait for its members to go; returns their pids.

    The record's leader may be gone while the rest of its group runs on; the
    kernel hands out no pid still in use as a group id, so a group found under
    a gone leader's pid is the recorded one. A live leader must have the
    recorded start time, or its pid was reused once the whole group was gone.
    """
    info = read_json(record)
    members: list[int] = []
    if info is not None and isinstance(info.get("pgid"), int) and info["pgid"] > 1:
        pgid = info["pgid"]
        leader = start_ticks(pgid)
        if leader is None or leader == info.get("ticks"):
            members = group_members(pgid)
            if members:
                signal_group(pgid, signal.SIGKILL)
                for pid in members:
                    wait_gone(pid, timeout)
    record.unlink(missing_ok=True)
    return members


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


def wait_group_gone(pgid: int, timeout: float) -> bool:
    """Wait up to `timeout` seconds for every process of group `pgid` to exit; True if they did.

    The leader can be gone while others of its group are still on their way
    out, or were never asked to go (a helper that ignores SIGTERM)."""
    deadline = time.monotonic() + timeout
    while members := group_members(pgid):
        for pid in members:
            if not wait_gone(pid, max(0.0, deadline - time.monotonic())):
                return False
    return True


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
    record: Path | None = None,
) -> Outcome:
    """Run `argv` in its own process group, handing each output line to `on_output`.

    stdout and stderr are merged, copied to `log` when given, and the last
    `tail_lines` lines kept for an error message. After `timeout` seconds the
    whole group is killed; whatever the command left running goes too.
    With `record`, the group's id and start time are kept in that file while
    it runs (see `end_recorded_group`). Raises OSError when the program cannot
    be started.
    """
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    if record is not None:
        try:
            write_atomic(record, json.dumps({"pgid": proc.pid, "ticks": start_ticks(proc.pid)}))
        except BaseException:
            signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()
            raise
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
        if record is not None:
            record.unlink(missing_ok=True)
    return Outcome(code, expired.is_set(), list(tail))
