"""Idle CPU in a real terminal (tmux), read from /proc: the console sitting on
20 agents with 20, one or no pulsing pills, and a bare Textual app with a
20-row DataTable, in the same run.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from pathlib import Path

from benchmarks import bare, fakehive
from benchmarks.terminal import EXE, PY, ROOT, Terminal

PILLS = {20: "20 pulsing pills", 1: "one pulsing pill", 0: "no pills"}


def idle_cpu(runs: int, seconds: float, settle: float = 1.0,
             pills: tuple[int, ...] = tuple(PILLS)) -> tuple[dict[str, float], dict[str, int]]:
    """Percent of one core: "bare", and the console with each number of pills (medians); failed runs."""
    folder = Path(tempfile.mkdtemp(prefix="hive-bench-"))
    env = {"XDG_CONFIG_HOME": str(folder / "config")}
    seen: dict[str, list[float]] = {"bare": [], **{str(p): [] for p in pills}}
    try:
        with Terminal("idle") as term:
            def sit(argv: list[str], shown: str, env: dict[str, str] | None = None) -> float:
                term.start(argv, env=env, cwd=ROOT)
                term.wait_for(shown)
                term.idle_cpu(settle)
                return term.idle_cpu(seconds)

            for _ in range(runs):
                term.sample(seen, "bare", lambda: sit([PY, "-m", "benchmarks.bare"], bare.LAST_ROW))
                for p in pills:
                    with fakehive.served(folder, 20, pills=p) as hive:
                        term.sample(seen, str(p), lambda: sit([EXE, "--host", f"unix:{hive.sock}"], "agent-0000", env))
        return {k: statistics.median(v) if v else float("nan") for k, v in seen.items()}, term.failed
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def figures(bench) -> None:
    cpu, failed = idle_cpu(1, 1.0, settle=0.5) if bench.quick else idle_cpu(max(1, bench.runs // 2), 5.0)
    for p, what in PILLS.items():
        note = f" [{failed[str(p)]} runs never showed the rows]" if failed.get(str(p)) else ""
        bench.ratio(f"console idle CPU in tmux, 20 agents, {what}, % of one core" + note, cpu[str(p)],
                    "bare Textual app, 20-row DataTable", cpu["bare"], unit="%", scale=1.0,
                    goal="<= 1 %" if p else "")
