"""A real terminal for console benchmarks: a tmux server of our own with one
160x48 pane, the program under test running in it as the pane's own process
(its CPU and memory read from /proc), and what the terminal shows read back
with `capture-pane`.

A frame "shows" once the pane holds it: polled every few milliseconds, with
a bound, so the figure includes the terminal's own drawing, as a user sees it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
EXE = str(Path(PY).with_name("hive-tui"))
SIZE = (160, 48)
POLL = 0.01


def compile_sources() -> None:
    """Byte-compile the package as pip does when it installs it: with PYTHONDONTWRITEBYTECODE set
    (as on some machines) an editable checkout would otherwise compile every module on every start."""
    global _COMPILED
    if not _COMPILED:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "hive_tui"), str(ROOT / "benchmarks")],
                       check=True, capture_output=True)
        _COMPILED = True


_COMPILED = False


class NeverShown(RuntimeError):
    """The program in the terminal never showed what was awaited (or ended first)."""


class Terminal:
    def __init__(self, label: str):
        tmux = shutil.which("tmux")
        if tmux is None:
            raise RuntimeError("the console benchmarks need tmux")
        self.base = [tmux, "-L", f"hive-bench-{label}-{os.getpid()}", "-f", "/dev/null"]
        compile_sources()
        self.pid: int | None = None
        self.failed: dict[str, int] = {}
        # A pane that stays when its program ends, so the next one can take it.
        self("new-session", "-d", "-s", "bench", "-x", str(SIZE[0]), "-y", str(SIZE[1]), "sleep", "3600")
        self("set-option", "-g", "remain-on-exit", "on")

    def __call__(self, *args: str) -> str:
        return subprocess.run([*self.base, *args], check=True, capture_output=True, text=True, timeout=30).stdout

    def __enter__(self) -> "Terminal":
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, timeout=30)

    def start(self, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
        """Run argv in the pane (ending what ran there first); the moment it was started."""
        self.end()
        options = [f"-e{k}={v}" for k, v in (env or {}).items()]
        if cwd is not None:
            options += ["-c", str(cwd)]
        start = time.perf_counter()
        # More than one word: tmux runs argv itself, no shell between, so the pane's pid is the program's.
        self("respawn-pane", "-k", "-t", "bench", *options, *argv)
        self.pid = int(self("display-message", "-p", "-t", "bench", "#{pane_pid}"))
        return start

    def end(self) -> None:
        """End the pane's program and wait until it is gone: its lock, its CPU, its memory."""
        if self.pid is None:
            return
        old, self.pid = self.pid, None
        self("respawn-pane", "-k", "-t", "bench", "sleep", "3600")
        deadline = time.perf_counter() + 30
        while _running(old):
            if time.perf_counter() > deadline:
                raise RuntimeError(f"process {old} did not end")
            time.sleep(POLL)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "bench")

    def wait_until(self, shown: Callable[[str], bool], timeout: float = 30.0) -> float:
        """The moment the pane first shows a screen `shown` accepts."""
        deadline = time.perf_counter() + timeout
        while True:
            screen = self.screen()
            now = time.perf_counter()
            if shown(screen):
                return now
            if now > deadline:
                raise NeverShown(f"the terminal never showed what was awaited; it shows:\n{screen}")
            if not self.alive():
                raise NeverShown(f"the program in the terminal ended; it shows:\n{screen}")
            time.sleep(POLL)

    def wait_for(self, text: str, timeout: float = 30.0) -> float:
        return self.wait_until(lambda screen: text in screen, timeout)

    def wait_exit(self, timeout: float = 60.0) -> None:
        """Returns once the pane's program has ended."""
        deadline = time.perf_counter() + timeout
        while self.alive():
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the program in the terminal did not end; it shows:\n{self.screen()}")
            time.sleep(POLL)

    def keys(self, *keys: str, literal: bool = False) -> None:
        self("send-keys", "-t", "bench", *(["-l"] if literal else []), *keys)

    def alive(self) -> bool:
        return self("display-message", "-p", "-t", "bench", "#{pane_dead}").strip() == "0"

    def _threads_ns(self) -> dict[str, int]:
        """Nanoseconds on a CPU of each of the program's threads (the scheduler's own count)."""
        assert self.pid is not None
        spent = {}
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                spent[task.name] = int((task / "schedstat").read_text().split()[0])
            except (OSError, IndexError, ValueError):
                pass  # a thread that ended while it was read
        return spent

    def rss_mib(self) -> float:
        assert self.pid is not None
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for pid {self.pid}")

    def sample(self, seen: dict[str, list], kind: str, run: Callable[[], object]) -> None:
        """One run of `kind` into seen[kind]; a run whose screen never came is counted in
        self.failed instead, said on stderr, and the others go on."""
        try:
            seen.setdefault(kind, []).append(run())
        except NeverShown as e:
            self.failed[kind] = self.failed.get(kind, 0) + 1
            print(f"benchmark run {kind!r} failed: {e}", file=sys.stderr)

    def idle_cpu(self, seconds: float) -> float:
        """Percent of one core the pane's program uses over `seconds`, left alone.

        Read per thread in nanoseconds: clock ticks (10 ms) would round an idle
        program's few milliseconds to nothing or to a whole tick."""
        before, wall = self._threads_ns(), time.perf_counter()
        time.sleep(seconds)
        after = self._threads_ns()
        wall = time.perf_counter() - wall
        return 100 * sum(ns - before.get(tid, 0) for tid, ns in after.items()) / 1e9 / wall


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
