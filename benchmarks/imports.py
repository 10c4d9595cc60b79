"""What the console imports before its first frame, from `python -X importtime`,
against what the bare Textual app imports: totals and the biggest of the
console's own, each the fastest of several runs (the machine's load only
ever adds)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from benchmarks.terminal import compile_sources

CONSOLE = "import hive_tui.cli, hive_tui.app, hive_tui.client.stream"
BARE = "import benchmarks.bare"


def self_times(code: str, runs: int) -> dict[str, float]:
    """Each module's own import time in ms (not its imports'), the least over `runs`."""
    best: dict[str, float] = {}
    for _ in range(runs):
        err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                             check=True).stderr
        for line in err.splitlines():
            if not line.startswith("import time:") or "[us]" in line:
                continue
            own, _, name = line[len("import time:"):].split("|")
            best[name.strip()] = min(best.get(name.strip(), float("inf")), int(own) / 1000)
    return best


def group(module: str) -> str:
    """hive_tui's modules one by one; anything else by its package."""
    return module if module.startswith("hive_tui") else module.split(".")[0]


def figures(figure: Callable[[str, str], None], runs: int, quick: bool = False) -> None:
    runs = 2 if quick else max(5, runs)
    compile_sources()
    console, bare = self_times(CONSOLE, runs), self_times(BARE, runs)
    figure("imports before the first frame: console / bare Textual app, ms",
           f"{sum(console.values()):.0f} / {sum(bare.values()):.0f}")
    extra: dict[str, float] = {}
    for module, ms in console.items():
        if module not in bare:
            extra[group(module)] = extra.get(group(module), 0.0) + ms
    figure("  the console's imports the bare app does not make, ms", f"{sum(extra.values()):.0f}")
    for name, ms in sorted(extra.items(), key=lambda kv: -kv[1])[:8]:
        figure(f"    {name}, ms", f"{ms:.1f}")
    loaded = set(console)
    figure("  a remote console loads asyncssh / pygit2 / hive_tui.host",
           " / ".join("yes" if any(group(m) == p or m.startswith(p + ".") for m in loaded) else "no"
                      for p in ("asyncssh", "pygit2", "hive_tui.host")))
