"""The real `hive-tui` in a real terminal (tmux) on every host at once:
`--all-hosts` opens the all-hosts view, `default: all` in the hosts file
makes it the default, A switches to the selected row's host and back, and
`--read-only` puts READ-ONLY in the title."""

from __future__ import annotations

import subprocess
import time
import textwrap

import pytest

from .hyperhive_daemon import sample_daemon
from .serving import EXE
from .test_tmux import Tmux


@pytest.fixture
def hosts_file(tmp_path, served):
    daemon = sample_daemon(tmp_path / "hh.sock").__enter__()
    path = tmp_path / "hosts.yaml"
    path.write_text(textwrap.dedent(f"""\
        hosts:
          here:
            transport: unix
            socket: {served.sock}
            accent: red
          hh:
            transport: unix
            socket: {daemon.sock}
        """))
    try:
        yield path
    finally:
        daemon.close()


def until(tmux: Tmux, condition, what: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        screen = tmux.screen()
        if condition(screen):
            return screen
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never showed; the screen:\n{screen}")
        time.sleep(0.1)


def console(tmp_path, *args: str) -> Tmux:
    tmux = Tmux(f"hive-tui-{tmp_path.name}")
    tmux("new-session", "-d", "-s", "console", "-x", "160", "-y", "48", "-c", str(tmp_path),
         "-e", f"XDG_DATA_HOME={tmp_path / 'data'}", "-e", f"XDG_CONFIG_HOME={tmp_path / 'config'}",
         " ".join([str(EXE), *args]))
    tmux("resize-window", "-t", "console", "-x", "160", "-y", "48")
    return tmux


def test_all_hosts_opens_the_view_and_a_switches(tmp_path, hosts_file):
    tmux = console(tmp_path, "--config", str(hosts_file), "--all-hosts")
    try:
        tmux.wait_for("hive-tui · all hosts")
        tmux.wait_for("▌ here  ·  live  ·  2 agents")
        screen = tmux.wait_for("▌ hh  ·  live  ·  3 agents")
        assert screen.index("alpha") < screen.index("▌ hh") < screen.index("north")
        # Down to hh's first agent, then A: that host alone.
        for _ in range(5):
            tmux("send-keys", "-t", "console", "Down")
        tmux.wait_for("hh")
        tmux("send-keys", "-t", "console", "A")
        until(tmux, lambda screen: "Containers" in screen and "north" in screen, "hh alone")
        assert "alpha" not in tmux.screen()
        tmux("send-keys", "-t", "console", "A")
        tmux.wait_for("hive-tui · all hosts")
        tmux("send-keys", "-t", "console", "q")
    finally:
        subprocess.run([*tmux.base, "kill-server"], capture_output=True)


def test_default_all_and_read_only(tmp_path, hosts_file):
    everything = tmp_path / "default-all.yaml"
    everything.write_text("default: all\n" + hosts_file.read_text())
    tmux = console(tmp_path, "--config", str(everything), "--read-only")
    try:
        tmux.wait_for("hive-tui · all hosts · READ-ONLY")
        tmux.wait_for("▌ hh  ·  live  ·  3 agents  ·  READ-ONLY")
        # The footer offers no action, the requests' included.
        until(tmux, lambda screen: " H Hosts  A One host  ? Help  q Quit" in screen and "Start" not in screen
              and "Approve" not in screen, "a footer with no action")
    finally:
        subprocess.run([*tmux.base, "kill-server"], capture_output=True)
