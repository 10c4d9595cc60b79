"""Layers point one way: the engine, the wire and the clients import no UI."""

from __future__ import annotations

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
