"""The tree's own bookkeeping: lists written in more than one language agree."""

from __future__ import annotations

import re
from pathlib import Path

from hive_tui.runtime import RUNTIMES

ROOT = Path(__file__).resolve().parent.parent


def test_flake_module_offers_exactly_the_runtimes():
    flake = (ROOT / "flake.nix").read_text()
    offered = re.search(r"runtime = mkOption \{\s*type = types\.enum \[([^\]]*)\]", flake)
    assert offered is not None
    assert re.findall(r'"([^"]+)"', offered.group(1)) == list(RUNTIMES)


def test_the_console_speaks_through_the_client_interface_only():
    """No console module builds a raw request: the client's typed calls are the one way in."""
    console = [ROOT / "hive_tui" / "app.py", ROOT / "hive_tui" / "commands.py",
               *sorted((ROOT / "hive_tui" / "widgets").glob("*.py"))]
    assert [p.name for p in console if '"cmd"' in p.read_text()] == []
