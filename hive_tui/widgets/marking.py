"""Marked rows and the bulk action on them, as both views say it.

The single-host view and the all-hosts view mark rows their own way (an
agent's name, a host and an agent), but run a bulk action alike: one `Bulk`
at a time, one progress line while it runs, the failures summed up at the
end, and the failed agents left marked so the same key tries them again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..client.base import HiveClient
from ..client.fleet import Bulk, Target
from ..commandlog import CommandLog, outcome_of_failure
from ..plain import plain

# Before a marked row's name: a bulk action acts on it.
MARKED = "◆"
# The keys that act on every marked agent, as the progress line names them.
KEYS = "s x r b p"


def marks_line(count: int, where: str = "") -> str:
    """What the progress line says while rows are marked and nothing runs; empty with none."""
    return f"{count} marked{where}: {KEYS} act on them all; Escape clears" if count else ""


def one_at_a_time(action: str, count: int) -> str:
    """Why destroy or purge is refused while rows are marked."""
    return f"{action} acts on one agent at a time: {count} marked (Escape clears the marks)"


def running(bulk: Bulk | None) -> bool:
    return bulk is not None and len(bulk.done) + len(bulk.failed) < len(bulk.targets)


def still_running(bulk: Bulk) -> str:
    return f"a bulk {bulk.action} is still running: {bulk.progress()}"


def pause_or_resume(paused: Iterable[bool]) -> str:
    """One key for both, as for one agent: resume when every marked agent is paused."""
    every = list(paused)
    return "resume" if every and all(every) else "pause"


async def run_bulk(bulk: Bulk, client: Callable[[str], HiveClient], parallel: Callable[[str], int],
                   show: Callable[[str], None], notify: Callable[..., Any],
                   note: Callable[[str], None], log: CommandLog) -> set[Target]:
    """Run `bulk`, its progress on `show`; then say how it went. Returns the targets that failed.

    Each agent's outcome goes to the command `log` as it ends. The summary's lines go to
    `note` (a log), and in one notification (`notify`, a screen's or the app's)."""
    show(f"{bulk.action}: {bulk.progress()}")
    action = f"{bulk.action} (bulk of {len(bulk.targets)})"

    def logged(target: Target, failure: BaseException | None) -> None:
        log.record(target.host, target.agent, action, "done" if failure is None else outcome_of_failure(failure))

    await bulk.run(client, parallel, lambda line: show(f"{bulk.action}: {line}"), logged)
    summary = bulk.summary()
    show(f"{bulk.action}: {bulk.progress()}" + (" (failures in the log)" if summary else ""))
    if summary:
        for line in summary.splitlines():
            note(line)
        notify(plain(summary), title=f"{bulk.action}: {len(bulk.failed)} failed", severity="error",
                        markup=False, timeout=30)
    else:
        notify(f"{bulk.action}: {bulk.progress()}", markup=False)
    return {t for t, _ in bulk.failed}
