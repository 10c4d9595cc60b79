"""Crash points for fault-injection tests.

`crash_point("deploy:tagged")` kills this process with SIGKILL when
HIVE_TUI_CRASH_AT names that point, so a test can stop the engine at an
exact step boundary, the way a power cut or the OOM killer would, and check
what the next engine makes of it. Unset (always, outside those tests), it
does nothing.
"""

from __future__ import annotations

import os
import signal

VARIABLE = "HIVE_TUI_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
