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
import time
from collections.abc import Callable
from pathlib import Path

SIZE = (160, 48)
POLL = 0.01
CLOCK = os.sysconf("SC_CLK_TCK")


class Terminal:
    def __init__(self, label: str):
        tmux = shutil.which("tmux")
        if tmux is None:
            raise RuntimeError("the console benchmarks need tmux")
        self.base = [tmux, "-L", f"hive-bench-{label}-{os.getpid()}", "-f", "/dev/null"]
        self.pid: int | None = None
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
        """Run argv in the pane (ending what ran there); the moment it was started."""
        options = [f"-e{k}={v}" for k, v in (env or {}).items()]
        if cwd is not None:
            options += ["-c", str(cwd)]
        start = time.perf_counter()
        # More than one word: tmux runs argv itself, no shell between, so the pane's pid is the program's.
        self("respawn-pane", "-k", "-t", "bench", *options, *argv)
        self.pid = int(self("display-message", "-p", "-t", "bench", "#{pane_pid}"))
        return start

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "bench")

    def wait_until(self, shown: Callable[[str], bool], timeout: float = 120.0) -> float:
        """The moment the pane first shows a screen `shown` accepts."""
        deadline = time.perf_counter() + timeout
        while True:
            screen = self.screen()
            now = time.perf_counter()
            if shown(screen):
                return now
            if now > deadline:
                raise RuntimeError(f"the terminal never showed what was awaited; it shows:\n{screen}")
            if not self.alive():
                raise RuntimeError(f"the program in the terminal ended; it shows:\n{screen}")
            time.sleep(POLL)

    def wait_for(self, text: str, timeout: float = 120.0) -> float:
        return self.wait_until(lambda screen: text in screen, timeout)

    def keys(self, *keys: str, literal: bool = False) -> None:
        self("send-keys", "-t", "bench", *(["-l"] if literal else []), *keys)

    def alive(self) -> bool:
        return self("display-message", "-p", "-t", "bench", "#{pane_dead}").strip() == "0"

    def cpu(self) -> float:
        """Seconds of CPU the pane's program has used, user and system, all its threads."""
        assert self.pid is not None
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK

    def rss_mib(self) -> float:
        assert self.pid is not None
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for pid {self.pid}")

    def idle_cpu(self, seconds: float) -> float:
        """Percent of one core the pane's program uses over `seconds`, left alone."""
        cpu, wall = self.cpu(), time.perf_counter()
        time.sleep(seconds)
        return 100 * (self.cpu() - cpu) / (time.perf_counter() - wall)
