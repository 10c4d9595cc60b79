"""The benchmark suite: prints a table and writes it to BENCHMARKS.md with the
machine and the date. Each figure is a median of several runs, set against a
baseline measured in the same run; nothing here asserts a time.

    .venv/bin/python benchmarks/run.py [--runs 5] [--only deploys spawns ...]
    .venv/bin/python benchmarks/run.py --quick     # every figure, roughly, in under a minute

Each figure group lives in its own module as a function of one `Bench`, and
is registered in GROUPS with one line. A group reads `bench.quick` (fewer
runs, smaller sizes) and `bench.runs`, and reports with `bench.ratio` (a
figure against its baseline) or `bench.figure` (a plain value).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks import deploys, feed, firstframe, fleet, idle, imports, logview, memory, server, spawns, status  # noqa: E402


@dataclass
class Row:
    name: str
    value: str
    baseline: str = ""
    ratio: str = ""
    goal: str = ""


@dataclass
class Bench:
    """What a figure group is given: how hard to try, and where its rows go."""

    quick: bool
    runs: int
    rows: list[Row] = field(default_factory=list)

    def figure(self, name: str, value: str, goal: str = "") -> None:
        self._add(Row(name, value, goal=goal))

    def ratio(self, name: str, value: float, baseline_name: str, baseline: float,
              unit: str = "ms", goal: str = "", scale: float = 1000.0) -> float:
        """`value` against `baseline` (both in seconds unless `scale` says
        otherwise), shown in `unit`; returns the ratio."""
        ratio = value / baseline if baseline else float("inf")
        self._add(Row(name, _num(value * scale, unit), f"{baseline_name}: {_num(baseline * scale, unit)}",
                      f"{ratio:.2f}", goal))
        return ratio

    def median(self, fn: Callable[[], float], runs: int | None = None) -> float:
        return statistics.median(fn() for _ in range(max(1, runs if runs is not None else self.runs)))

    def _add(self, row: Row) -> None:
        self.rows.append(row)
        ratio = f"  x{row.ratio}" if row.ratio else ""
        print(f"{row.name:<66} {row.value:>12}{ratio}  {row.baseline}", flush=True)


def _num(value: float, unit: str) -> str:
    text = f"{value:.1f}" if abs(value) < 10 else f"{value:.0f}"
    return f"{text} {unit}".strip()


# The figure groups, in the order they run: one line each.
GROUPS: list[tuple[str, Callable[[Bench], None]]] = [
    ("deploys", deploys.figures),
    ("spawns", spawns.figures),
    ("status", status.figures),
    ("nixos-status", spawns.nixos_status_figures),
    ("imports", imports.figures),
    ("first-frame", firstframe.figures),
    ("idle", idle.figures),
    ("feed", feed.figures),
    ("server", server.figures),
    ("server-rss", server.rss_figures),
    ("fleet", lambda bench: fleet.figures(1 if bench.quick else max(1, bench.runs // 2), bench.figure)),
    ("memory", lambda bench: memory.figures((10,) if bench.quick else (10, 100), bench.figure)),
    ("logview", logview.figures),
]


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.system()} {platform.release()}, " \
           f"Python {platform.python_version()}"


def main() -> None:
    names = [name for name, _ in GROUPS]
    parser = argparse.ArgumentParser(description="hive-tui benchmarks")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (medians)")
    parser.add_argument("--quick", action="store_true",
                        help="a rough version of every figure, in under a minute; the file is left alone")
    parser.add_argument("--out", type=Path, default=HERE.parent / "BENCHMARKS.md")
    parser.add_argument("--only", nargs="+", choices=names, metavar="GROUP",
                        help=f"run only these groups ({', '.join(names)}), and leave the file alone")
    args = parser.parse_args()
    bench = Bench(quick=args.quick, runs=1 if args.quick else args.runs)
    started = time.perf_counter()
    for name, group in GROUPS:
        if args.only is None or name in args.only:
            group(bench)
    print(f"\n{len(bench.rows)} figures in {time.perf_counter() - started:.0f} s")
    if args.quick or args.only:
        return

    table = "\n".join(f"| {r.name} | {r.value} | {r.baseline} | {r.ratio} | {r.goal} |" for r in bench.rows)
    # Sections written by hand below the table (## headings) are kept.
    previous = args.out.read_text() if args.out.exists() else ""
    notes = previous[previous.index("\n## "):] if "\n## " in previous else ""
    args.out.write_text(
        "# Benchmarks\n\n"
        f"Written by `.venv/bin/python benchmarks/run.py` on {time.strftime('%Y-%m-%d')}, on {machine()}.\n"
        f"Each figure is the median of {args.runs} runs (fewer for the slow ones), set against a baseline "
        "measured in the same run; nothing asserts a time.\n\n"
        f"| figure | value | baseline (same run) | ratio | goal |\n|---|---|---|---|---|\n{table}\n{notes}"
    )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
