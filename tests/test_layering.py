"""Layers point one way: the engine, the wire and the clients import no UI."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest

CORE = [
    "hive_tui.host.engine", "hive_tui.host.deploy", "hive_tui.host.meta", "hive_tui.host.dispatch", "hive_tui.wire",
    "hive_tui.client.embedded", "hive_tui.host.runtime.local", "hive_tui.cli", "hive_tui.host.demo_hive",
    "hive_tui.host.server", "hive_tui.client.stream", "hive_tui.client.ssh", "hive_tui.host.runtime.nixos",
]
REMOTE_CLIENTS = ["hive_tui.client.stream", "hive_tui.client.ssh", "hive_tui.client.connect", "hive_tui.cli"]


@pytest.mark.parametrize("module", CORE)
def test_core_modules_do_not_import_textual(module):
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("module", REMOTE_CLIENTS)
def test_remote_clients_do_not_load_the_engine(module):
    """A console on a laptop reaching a host needs none of the host's machinery."""
    code = (f"import sys, {module}; "
            "print(sorted(m for m in sys.modules if m in ('hive_tui.host.engine', 'pygit2', 'sqlite3')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# Runs the real CLI's console on a served socket, headless (in a pty, since
# the console wants a terminal), and writes what the process had loaded once
# the agents' rows were on screen.
_CONSOLE_MODULES = """
import json, sys
from hive_tui import cli
from hive_tui.app import HiveApp

run = HiveApp.run

async def first_frame(pilot):
    app = pilot.app
    while app.link != "live" or app.containers.row_count < 2:
        await pilot.pause(0.05)
    await pilot.pause()
    with open(sys.argv[2], "w") as out:
        json.dump(sorted(sys.modules), out)
    app.exit()

HiveApp.run = lambda self, **kw: run(self, headless=True, size=(160, 48), auto_pilot=first_frame)
sys.exit(cli.main(["--host", "unix:" + sys.argv[1]]))
"""


def test_a_remote_console_loads_no_host_side(served, tmp_path):
    """The console on a laptop, reaching a host's socket, draws its agents with
    none of the host's machinery loaded: no pygit2, no engine, no host module."""
    out = tmp_path / "modules.json"
    main, terminal = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-c", _CONSOLE_MODULES, str(served.sock), str(out)],
                              stdin=terminal, stdout=terminal, stderr=subprocess.PIPE, text=True, timeout=120,
                              env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")})
    finally:
        os.close(main)
        os.close(terminal)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(out.read_text())
    assert "hive_tui.app" in loaded and "hive_tui.client.stream" in loaded
    assert [m for m in loaded if m.split(".")[0] == "pygit2" or m.startswith("hive_tui.host")] == []
    # Nor the SSH library, on a Unix socket: it was a good third of the console's imports.
    assert [m for m in loaded if m.split(".")[0] == "asyncssh"] == []
