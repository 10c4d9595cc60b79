"""Typing a 10-character filter in a real terminal (tmux), until only the
match shows; against typing the same ten characters into a bare Textual
app's Input until they show. Run by benchmarks/firstframe.py on the consoles
whose first frames it measured.

Each key goes by a `tmux send-keys` of its own, one after the other with no
pause: a quick typist, so keys arrive while the console is still filtering.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from benchmarks import bare
from benchmarks.terminal import PY, ROOT, Terminal

NAME = re.compile(r"agent-\d{4}")


def target(agents: int) -> str:
    """A name in the hive, ten characters long, that no other name contains."""
    return f"agent-{(agents * 421 // 1000) % agents:04d}"


def type_text(term: Terminal, text: str, done: Callable[[str], bool]) -> tuple[float, float]:
    """Seconds from the first key, and from the last, to the screen `done` accepts."""
    first = time.perf_counter()
    for c in text:
        term.keys(c, literal=True)
    last = time.perf_counter()
    shown = term.wait_until(done, timeout=60.0)
    return shown - first, shown - last


def type_filter(term: Terminal, agents: int) -> tuple[float, float]:
    """In the console on screen (a hive of `agents`): open the filter and type a name until
    only its row shows. Seconds from the first key and from the last."""
    name = target(agents)

    def only_the_match(screen: str) -> bool:
        shown = NAME.findall(screen)
        # The filter box shows the name too: the box and one row.
        return set(shown) == {name} and len(shown) >= 2

    term.keys("/", literal=True)
    term.wait_for("Escape clears")
    return type_text(term, name, only_the_match)


def bare_typing(term: Terminal) -> tuple[float, float]:
    """The same ten keys into the bare app's Input, until they show."""
    term.start([PY, "-m", "benchmarks.bare", "--input"], cwd=ROOT)
    term.wait_for(bare.LAST_ROW)
    return type_text(term, target(1000), lambda screen: target(1000) in screen)
