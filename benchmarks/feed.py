"""A simulated status feed of 10,000 agents, one change every 10 ms, to the
console in a real terminal (tmux): the console's CPU (from /proc) while it
runs, and how late each pushed change was applied to the table, and for rows
on screen drawn. The console runs under benchmarks/probe.py, which notes
those times; the baseline is the same console idle on the same hive just
before the feed starts.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import fakehive
from benchmarks.terminal import PY, ROOT, NeverShown, Terminal

EVERY = 0.01
SETTLE = 1.0


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


def feed(agents: int = 10_000, seconds: float = 5.0, settle: float = SETTLE) -> dict[str, float]:
    """CPU (% of one core) idle and under the feed, push latencies in seconds (median, 95th
    percentile) and changes applied a second, over `seconds` after the first frame has settled."""
    folder = Path(tempfile.mkdtemp(prefix="hive-bench-"))
    out = folder / "probe.json"
    env = {"XDG_CONFIG_HOME": str(folder / "config")}
    try:
        with Terminal("feed") as term, fakehive.served(folder, agents, every=EVERY) as hive:
            term.start([PY, "-m", "benchmarks.probe", str(out), "--feed", "--host", f"unix:{hive.sock}"],
                       env=env, cwd=ROOT)
            term.wait_for("agent-0000")
            term.idle_cpu(settle)
            figures = {"idle cpu": term.idle_cpu(seconds)}
            hive.start_changes()
            term.idle_cpu(settle)
            window = time.perf_counter()
            figures["cpu"] = term.idle_cpu(seconds)
            term.keys("q")
            term.wait_exit()
        # Only what was sent in the window: not the backlog of the first moments.
        probed = json.loads(out.read_text())
        applied = [late for sent, late in probed["applied"] if sent >= window]
        drawn = [late for sent, late in probed["drawn"] if sent >= window]
        return figures | {"applied": statistics.median(applied), "applied p95": _percentile(applied, 0.95),
                          "drawn": statistics.median(drawn), "drawn p95": _percentile(drawn, 0.95),
                          "changes": len(applied) / seconds}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def figures(bench) -> None:
    try:
        f = feed(seconds=1.2, settle=0.3) if bench.quick else feed()
    except NeverShown as e:
        print(f"benchmark run 'feed' failed: {e}", file=sys.stderr)
        bench.figure("status feed of 10000 agents, a change every 10 ms", "failed: the console never showed the rows")
        return
    bench.ratio("status feed of 10000 agents, a change every 10 ms: console CPU in tmux, % of one core",
                f["cpu"], "the same console idle", f["idle cpu"], unit="%", scale=1.0)
    bench.figure("  changes applied a second (100 sent)", f"{f['changes']:.0f}")
    bench.figure("  push latency to the table, ms, median / 95th percentile",
                 f"{f['applied'] * 1000:.1f} / {f['applied p95'] * 1000:.1f}")
    bench.figure("  push latency to the screen (rows in view), ms, median / 95th percentile",
                 f"{f['drawn'] * 1000:.1f} / {f['drawn p95'] * 1000:.1f}")
