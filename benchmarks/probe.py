"""Where the console's first frame goes: the real CLI, run with a timestamp at
each stage up to the first frame that shows agents, written as JSON to OUT;
then the console quits.

    python -m benchmarks.probe OUT [--feed] [hive-tui arguments...]
    python -m benchmarks.probe OUT --bare

With --bare it runs the bare Textual app (benchmarks/bare.py) instead, for
the same stages to set beside the console's.

With --feed the console stays up after its first frame and notes, for each
row a simulated hive (benchmarks/fakehive.py) changed, how late it was
applied, and for the rows on screen how late it was drawn; all of it is
written to OUT when the console quits.

Timestamps are `time.perf_counter()`, CLOCK_MONOTONIC on Linux: one clock for
the benchmark that started this process and for this process. Style parsing
and application are summed over the whole start, wherever they fall.
"""

from __future__ import annotations

import functools
import json
import sys
import time

MARKS: dict[str, float] = {"probe started": time.perf_counter()}
SPENT: dict[str, float] = {}


def mark(name: str) -> None:
    MARKS.setdefault(name, time.perf_counter())


def timed(cls: type, method: str, before: str | None = None, after: str | None = None,
          total: str | None = None) -> None:
    """Wrap cls.method: mark the first call's start and end, and sum every call's time."""
    original = getattr(cls, method)

    def note(start: float) -> None:
        if after:
            mark(after)
        if total:
            SPENT[total] = SPENT.get(total, 0.0) + time.perf_counter() - start

    if getattr(original, "__code__", None) and original.__code__.co_flags & 0x80:  # a coroutine function
        @functools.wraps(original)
        async def wrapper(*args, **kwargs):
            if before:
                mark(before)
            start = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                note(start)
    else:
        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            if before:
                mark(before)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                note(start)
    setattr(cls, method, wrapper)


def bare_app(out: str) -> int:
    from textual.app import App
    from textual.css.stylesheet import Stylesheet
    mark("textual imported")
    from benchmarks.bare import Bare

    timed(Bare, "__init__", after="app made")
    timed(Bare, "compose", before="compose")
    timed(Bare, "on_mount", before="mounted")
    timed(Stylesheet, "_parse_rules", total="style parsing")
    timed(Stylesheet, "apply", total="style application")
    display = App._display

    def probed_display(self, screen, renderable):
        display(self, screen, renderable)
        if "frame with rows" not in MARKS:
            mark("frame with rows")
            with open(out, "w") as f:
                json.dump({"marks": MARKS, "spent": SPENT}, f)
            self.exit()

    App._display = probed_display  # type: ignore[method-assign]
    Bare().run()
    return 0


def main() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
    if argv == ["--bare"]:
        return bare_app(out)
    feed = argv[:1] == ["--feed"]
    if feed:
        argv = argv[1:]
    from hive_tui import cli
    mark("hive_tui.cli imported")
    from hive_tui.app import HiveApp
    mark("hive_tui.app imported")
    from textual.app import App
    from textual.css.stylesheet import Stylesheet

    from benchmarks.fakehive import CHANGE, ON_SCREEN
    from hive_tui.client.base import HiveClient
    from hive_tui.models import AgentStatus
    from hive_tui.widgets.containers import ContainerTable

    timed(HiveApp, "__init__", after="app made")
    timed(HiveApp, "compose", before="compose")
    timed(HiveApp, "on_mount", before="mounted")
    timed(Stylesheet, "_parse_rules", total="style parsing")
    timed(Stylesheet, "apply", total="style application")
    timed(HiveClient, "status", before="status asked", after="status read")
    timed(ContainerTable, "set_rows", before="rows given", after="rows set")

    # (when sent, how late): the benchmark keeps those sent in its window.
    applied: list[tuple[float, float]] = []
    drawn: list[tuple[float, float]] = []
    undrawn: list[float] = []

    def write() -> None:
        with open(out, "w") as f:
            json.dump({"marks": MARKS, "spent": SPENT, "applied": applied, "drawn": drawn}, f)

    display = App._display

    def probed_display(self, screen, renderable):
        display(self, screen, renderable)
        mark("first frame")
        now = time.perf_counter()
        drawn.extend((sent, now - sent) for sent in undrawn)
        undrawn.clear()
        if "rows set" in MARKS and "frame with rows" not in MARKS:
            mark("frame with rows")
            if not feed:
                write()
                self.exit()

    App._display = probed_display  # type: ignore[method-assign]
    apply = HiveApp.apply

    async def probed_apply(self, item):
        await apply(self, item)
        if isinstance(item, AgentStatus) and item.status_text.startswith(CHANGE + " "):
            sent = float(item.status_text.split()[2])
            applied.append((sent, time.perf_counter() - sent))
            if int(item.name.rsplit("-", 1)[1]) < ON_SCREEN:
                undrawn.append(sent)

    HiveApp.apply = probed_apply  # type: ignore[method-assign]
    try:
        return cli.main(argv)
    finally:
        if feed:
            write()


if __name__ == "__main__":
    sys.exit(main())
