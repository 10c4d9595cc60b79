"""The benchmark suite: prints a table and writes it to BENCHMARKS.md with the
machine and the date. Each figure is a median of several runs; nothing here
asserts a time.

    .venv/bin/python benchmarks/run.py [--runs 5] [--only server-rss]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import deploys, feed, firstframe, fleet, idle, imports, memory, server  # noqa: E402


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.system()} {platform.release()}, " \
           f"Python {platform.python_version()}"


def server_rss(runs: int, figure) -> None:
    """The server's resident memory, idle and after clients that try to exhaust it."""
    subscribers, pushes, cycles = 1000, 2000, 100_000
    results = [server.server_rss(subscribers, pushes, cycles) for _ in range(max(1, runs // 2))]
    idle, after_subscribers, after_cycles = (statistics.median(r[k] for r in results)
                                             for k in ("idle", "subscribers", "cycles"))
    figure("server RSS idle, MiB", f"{idle:.0f}")
    figure(f"server RSS, {subscribers} subscribers that never read, {pushes} pushes, MiB (idle +)",
           f"{after_subscribers:.0f} (+{after_subscribers - idle:.0f})")
    figure(f"server RSS after {cycles} connect/close cycles more, MiB (idle +)",
           f"{after_cycles:.0f} (+{after_cycles - idle:.0f})")


class _Bench:
    """What a figure group is given: how hard to try, and where its rows go."""

    def __init__(self, quick: bool, runs: int, figure) -> None:
        self.quick, self.runs, self.figure_ = quick, runs, figure

    def figure(self, name: str, value: str, goal: str = "") -> None:
        self.figure_(name, value + (f" (goal {goal})" if goal else ""))

    def ratio(self, name: str, value: float, baseline_name: str, baseline: float, unit: str = "ms",
              goal: str = "", scale: float = 1000.0) -> float:
        ratio = value / baseline if baseline else float("inf")
        self.figure(f"{name}, {unit} (× {baseline_name})",
                    f"{value * scale:.1f} ({ratio:.2f}× {baseline * scale:.1f})", goal)
        return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description="hive-tui benchmarks")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (medians)")
    parser.add_argument("--quick", action="store_true", help="a rough version of every figure: fewer, smaller runs")
    parser.add_argument("--out", type=Path, default=HERE.parent / "BENCHMARKS.md")
    parser.add_argument("--only", choices=["server-rss"],
                        help="print only these figures, and leave the file alone")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []

    def figure(name: str, value: str) -> None:
        rows.append((name, value))
        print(f"{name:<62} {value}", flush=True)

    if args.only == "server-rss":
        server_rss(args.runs, figure)
        return

    ours, git = deploys.deploy_overhead(args.runs)
    figure("deploy overhead (all but build and nix), ms", f"{ours * 1000:.0f}")
    figure("the same repository steps with the git program, ms", f"{git * 1000:.0f}")
    figure("ratio, hive-tui / git program", f"{ours / git:.2f}")
    for agents in (1, 5, 20):
        wall = statistics.median(deploys.parallel(agents) for _ in range(max(1, args.runs // 2)))
        figure(f"{agents} deploys at once, wall time / one build's (1 s)", f"{wall:.2f}")
    console = _Bench(args.quick, args.runs, figure)
    imports.figures(console)
    firstframe.figures(console)
    idle.figures(console)
    feed.figures(console)
    for ssh in (False, True):
        latency = statistics.median(server.feed_latency(ssh=ssh) for _ in range(max(1, args.runs // 2)))
        figure(f"status feed to 50 subscribers over {'SSH on 127.0.0.1' if ssh else 'a Unix socket'}, ms",
               f"{latency * 1000:.1f}")
    server_rss(args.runs, figure)
    fleet.figures(max(1, args.runs // 2), figure)
    memory.figures((10, 100), figure)

    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    # Sections written by hand below the table (## headings) are kept.
    previous = args.out.read_text() if args.out.exists() else ""
    notes = previous[previous.index("\n## "):] if "\n## " in previous else ""
    args.out.write_text(
        "# Benchmarks\n\n"
        f"Written by `.venv/bin/python benchmarks/run.py` on {time.strftime('%Y-%m-%d')}, on {machine()}.\n"
        f"Each figure is the median of {args.runs} runs (fewer for the slow ones); nothing asserts a time.\n\n"
        f"| figure | value |\n|---|---|\n{table}\n{notes}"
    )
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
