"""What the console imports before its first frame, from `python -X importtime`,
against what the bare Textual app imports: totals and the biggest of the
console's own, each the fastest of several runs (the machine's load only
ever adds)."""

from __future__ import annotations

import subprocess
import sys

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


def figures(bench) -> None:
    runs = 4 if bench.quick else max(7, bench.runs)
    compile_sources()
    console, bare = self_times(CONSOLE, runs), self_times(BARE, runs)
    bench.ratio("console imports before its first frame (python -X importtime, least of runs)",
                sum(console.values()), "bare Textual app", sum(bare.values()), scale=1.0)
    extra: dict[str, float] = {}
    for module, ms in console.items():
        if module not in bare:
            extra[group(module)] = extra.get(group(module), 0.0) + ms
    bench.figure("  the console's imports the bare app does not make, ms", f"{sum(extra.values()):.0f}")
    for name, ms in sorted(extra.items(), key=lambda kv: -kv[1])[:8]:
        bench.figure(f"    {name}, ms", f"{ms:.1f}")
    bench.figure("  a remote console loads asyncssh / pygit2 / hive_tui.host",
                 " / ".join("yes" if any(group(m) == p or m.startswith(p + ".") for m in console) else "no"
                            for p in ("asyncssh", "pygit2", "hive_tui.host")))
