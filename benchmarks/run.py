"""The benchmark suite: prints a table and writes it to BENCHMARKS.md with the
machine and the date. Each figure is a median of several runs; nothing here
asserts a time.

    .venv/bin/python benchmarks/run.py [--runs 5] [--only server-rss]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import console, deploys, fleet, memory, server  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description="hive-tui benchmarks")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (medians)")
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
    for agents in (10, 100, 1000):
        frame = statistics.median(asyncio.run(console.first_frame(agents)) for _ in range(args.runs))
        latency = statistics.median(asyncio.run(console.update_latency(agents)) for _ in range(args.runs))
        figure(f"console, {agents} agents: first interactive frame, ms", f"{frame * 1000:.0f}")
        figure(f"console, {agents} agents: push-update latency, ms", f"{latency * 1000:.1f}")
    cpu = statistics.median(asyncio.run(console.idle_cpu()) for _ in range(max(1, args.runs // 2)))
    figure("console idle CPU with 20 pulsing pills, % of one core", f"{cpu:.1f}")
    figure("console resident memory after the runs above, MiB",
           f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
    for ssh in (False, True):
        latency = statistics.median(server.feed_latency(ssh=ssh) for _ in range(max(1, args.runs // 2)))
        figure(f"status feed to 50 subscribers over {'SSH on 127.0.0.1' if ssh else 'a Unix socket'}, ms",
               f"{latency * 1000:.1f}")
    server_rss(args.runs, figure)
    fleet.figures(max(1, args.runs // 2), figure)
    memory.figures((10, 100), figure)

    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    args.out.write_text(
        "# Benchmarks\n\n"
        f"Written by `.venv/bin/python benchmarks/run.py` on {time.strftime('%Y-%m-%d')}, on {machine()}.\n"
        f"Each figure is the median of {args.runs} runs (fewer for the slow ones); nothing asserts a time.\n\n"
        f"| figure | value |\n|---|---|\n{table}\n"
    )
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
