"""A walk through a throwaway demo hive with the CLI: what `hive-tui` does
with no verb until the console takes its place."""

from __future__ import annotations

import argparse
import shlex
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

STEPS = [
    (["demo"], "Seed a hive: three agents and the manager's four requests."),
    (["status"], "One row per agent, derived from the runtime, the repos and the agents' own reports."),
    (["pending"], "What the manager asks for, waiting for the operator."),
    (["approve", "1"], "Deploy atlas's proposal: tags, fast-forward, meta lock, build, commit."),
    (["approve", "2"], "bramble's proposal fails to build: failed/2, main rolled back, meta log untouched."),
    (["deny", "3", "--note", "keep the longer status line; it names the queue"],
     "Deny cinder's proposal with a reason: denied/3 carries it, and so does the manager's event."),
    (["history", "bramble"], "The approval tags in bramble's applied repo, with their notes."),
    (["meta-log"], "The meta flake's log: the spawns and the deploy that succeeded; bramble's failed one left no commit."),
    (["events"], "The helper events the manager reads."),
    (["status"], "atlas now runs its new config."),
]


def tour(args: argparse.Namespace, main: Callable[[list[str]], int]) -> int:
    """Run each step through `main`, the CLI's entry point (passed in: the CLI imports us)."""
    from .host.engine import Engine

    root = Path(tempfile.mkdtemp(prefix="hive-tui-tour-")) / "hive"
    common = ["--state", str(root), "--locker", args.locker]
    try:
        for argv, why in STEPS:
            print(f"\n# {why}\n$ hive-tui {shlex.join(['--state', str(root), *argv])}", flush=True)
            main([*common, *argv])
    finally:
        if (root / "hive.db").exists():
            with Engine(root, locker="builtin") as engine:
                for name in engine.agents():
                    engine.runtime.stop(name)
        shutil.rmtree(root.parent, ignore_errors=True)
    print("\nThat hive was a throwaway: its agents are stopped and its folder is gone.")
    print("To keep one: hive-tui --state DIR demo, then the verbs above with --state DIR.")
    return 0
