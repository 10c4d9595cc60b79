"""The supervisor of one local agent: `python -m hive_tui.runtime.supervisor DIR -- ARGV...`

It outlives the engine call that started it, runs ARGV with its own output
(the agent's log), and when ARGV exits writes DIR/exit.json with the exit
code (negative for a signal), so the runtime can tell a crash from a stop
long after the engine that started it is gone.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from hive_tui.fsutil import write_atomic
from hive_tui.models import rfc3339
from hive_tui.runtime.procs import describe_exit


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m hive_tui.runtime.supervisor DIR -- ARGV...", file=sys.stderr)
        return 2
    state_dir, command = Path(argv[0]), argv[2:]
    children: list[subprocess.Popen] = []

    def forward(signum: int, _frame) -> None:
        # Reached when only the supervisor was signalled, not its group; a
        # handler rather than SIG_IGN, since an ignored signal stays ignored
        # in the child across exec.
        for child in children:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        children.append(subprocess.Popen(command, stdin=subprocess.DEVNULL))
    except OSError as e:
        print(f"[hive-tui] cannot start {command[0]!r}: {e}", flush=True)
        _record_exit(state_dir, 127)
        return 1
    code = children[0].wait()
    print(f"[hive-tui] {command[0]} exited with {describe_exit(code)}", flush=True)
    _record_exit(state_dir, code)
    return 0


def _record_exit(state_dir: Path, code: int) -> None:
    write_atomic(state_dir / "exit.json", json.dumps({"code": code, "at": rfc3339()}))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
