"""The supervisor of one local agent: `python supervisor.py DIR -- ARGV...`

It outlives the engine call that started it, runs ARGV with its own output
(the agent's log), and when ARGV exits writes DIR/exit.json with the exit
code (negative for a signal), so the runtime can tell a crash from a stop
long after the engine that started it is gone.

It is run by its file path and imports nothing but the standard library, so
it works under any interpreter, whether or not hive_tui is on its path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def describe_exit(code: int) -> str:
    """A subprocess return code in words: negative codes are signals."""
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"code {code}"


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python supervisor.py DIR -- ARGV...", file=sys.stderr)
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
    record = {"code": code, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    tmp = state_dir / "exit.json.tmp"
    tmp.write_text(json.dumps(record))
    os.replace(tmp, state_dir / "exit.json")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
