"""Layers point one way: the engine, the wire and the clients import no UI."""

from __future__ import annotations

import subprocess
import sys

import pytest

CORE = [
    "hive_tui.engine", "hive_tui.deploy", "hive_tui.meta", "hive_tui.dispatch", "hive_tui.wire",
    "hive_tui.client.embedded", "hive_tui.runtime.local", "hive_tui.cli", "hive_tui.demo",
]


@pytest.mark.parametrize("module", CORE)
def test_core_modules_do_not_import_textual(module):
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
