"""The real `hive-tui` in a real terminal (tmux): it starts on the demo hive,
approves one proposal, denies another with a reason, and the hive keeps both."""

from __future__ import annotations

import subprocess
import time

from hive_tui.host.engine import Engine

from .helpers import require_program, stop_all
from .serving import EXE


class Tmux:
    def __init__(self, socket_name: str):
        self.base = [require_program("tmux"), "-L", socket_name]

    def __call__(self, *args: str) -> str:
        return subprocess.run([*self.base, *args], check=True, capture_output=True, text=True, timeout=30).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "console")

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never showed; the screen:\n{screen}")
            time.sleep(0.1)


def test_the_console_approves_and_denies_in_a_real_terminal(tmp_path):
    tmux = Tmux(f"hive-tui-{tmp_path.name}")
    data = tmp_path / "data"
    root = data / "hive-tui" / "demo"
    tmux("new-session", "-d", "-s", "console", "-x", "160", "-y", "48", "-c", str(tmp_path),
         "-e", f"XDG_DATA_HOME={data}", "-e", f"XDG_CONFIG_HOME={tmp_path / 'config'}",
         f"{EXE} --locker builtin")
    try:
        tmux("resize-window", "-t", "console", "-x", "160", "-y", "48")
        tmux.wait_for("· live")
        tmux.wait_for("#1 atlas: move to")
        tmux("send-keys", "-t", "console", "Tab")
        tmux("send-keys", "-t", "console", "a")
        tmux.wait_for("deployed/1")
        tmux("send-keys", "-t", "console", "Down")
        tmux("send-keys", "-t", "console", "n")
        tmux.wait_for("Deny #3 (cinder apply_commit)?")
        tmux("send-keys", "-t", "console", "-l", "keep the queue name")
        tmux("send-keys", "-t", "console", "Enter")
        tmux.wait_for("denied #3 (cinder)")
        tmux("send-keys", "-t", "console", "q")
        deadline = time.monotonic() + 30
        while "console" in subprocess.run([*tmux.base, "list-sessions"], capture_output=True, text=True).stdout:
            assert time.monotonic() < deadline, "the console did not quit"
            time.sleep(0.1)
    finally:
        subprocess.run([*tmux.base, "kill-server"], capture_output=True)
        if (root / "hive.db").exists():
            with Engine(root, locker="builtin", runtime_options={"stop_grace": 2.0}) as engine:
                deployed, denied = engine.approval(1), engine.approval(3)
                stop_all(engine)
    assert (deployed.status, deployed.terminal_tag) == ("approved", "deployed/1")
    assert (denied.status, denied.terminal_tag, denied.note) == ("denied", "denied/3", "keep the queue name")


def test_a_default_terminal_shows_every_agent_and_request(tmp_path):
    """At 80×24 the panes stack: each agent's name and state, and each request's id and agent, can be read."""
    import re

    from hive_tui.host.demo_hive import AGENTS, PROPOSALS, SPAWN

    requests = [(i, agent) for i, (agent, *_) in enumerate([*PROPOSALS, SPAWN], start=1)]
    tmux = Tmux(f"hive-tui-{tmp_path.name}")
    data = tmp_path / "data"
    root = data / "hive-tui" / "demo"
    tmux("new-session", "-d", "-s", "console", "-x", "80", "-y", "24", "-c", str(tmp_path),
         "-e", f"XDG_DATA_HOME={data}", "-e", f"XDG_CONFIG_HOME={tmp_path / 'config'}",
         f"{EXE} --locker builtin")
    agent_line = {name: re.compile(rf"^ {name} +[●○✗◐◓◑◒] (running|stopped|failed|\w+…)( |$)") for name in AGENTS}
    request_line = [re.compile(rf"^ {id} +{agent} +\w+ +\w+") for id, agent in requests]

    def readable(screen: str) -> bool:
        lines = screen.splitlines()
        return (all(any(p.match(line) for line in lines) for p in agent_line.values())
                and all(any(p.match(line) for line in lines) for p in request_line))

    try:
        tmux("resize-window", "-t", "console", "-x", "80", "-y", "24")
        tmux.wait_for("· live")
        deadline = time.monotonic() + 60
        while not readable(screen := tmux.screen()):
            assert time.monotonic() < deadline, f"not every agent and request could be read; the screen:\n{screen}"
            time.sleep(0.1)
        assert all(len(line) <= 80 for line in screen.splitlines())
    finally:
        subprocess.run([*tmux.base, "kill-server"], capture_output=True)
        if (root / "hive.db").exists():
            with Engine(root, locker="builtin", runtime_options={"stop_grace": 2.0}) as engine:
                stop_all(engine)
