"""What the engine is doing, as it happens: deploy steps, build output, outcomes.

It takes room on screen only while something runs, and for a while after
(`LINGER`), so its last outcome can be read; otherwise the lists have it.
"""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.timer import Timer
from textual.widgets import RichLog

from ..models import DeployStep, Event
from ..plain import one_line, plain
from .themed import Themed

LINGER = 30.0
MAX_LINES = 2000

# A line as its pieces, each with the component class that styles it ("": none).
Piece = tuple[str, str]


class DeployLog(RichLog, Themed):
    COMPONENT_CLASSES = {"deploy-log--output", "deploy-log--outcome", "deploy-log--host"}

    def __init__(self, **kwargs):
        super().__init__(max_lines=MAX_LINES, wrap=False, markup=False, highlight=False, **kwargs)
        # What was written, unstyled: a theme switch writes it again in the new colours.
        self.written: deque[tuple[Piece, ...]] = deque(maxlen=MAX_LINES)
        # Deploys that sent a step and no outcome yet, by approval id (0: not an approval's).
        self.in_flight: set[int] = set()
        self.rest_timer: Timer | None = None

    def step(self, s: DeployStep) -> None:
        if s.step == "output":
            self.put((f"  │ {plain(s.detail)}", "deploy-log--output"))
        else:
            self.put((f"[{s.id} {one_line(s.agent)}] {s.step}: {one_line(s.detail, 200)}", ""))
        self.in_flight.add(s.id)
        self._active()

    def event(self, e: Event) -> None:
        if e.kind not in ("ApprovalResolved", "Destroyed", "Rebuilt", "Interrupted") or (
                e.kind == "Rebuilt" and e.id is not None):
            return
        head = f"{e.kind} {one_line(e.agent)}" + (f" #{e.id}" if e.id else "")
        outcome = " ".join(filter(None, [one_line(e.status), one_line(e.tag)]))
        self.put((f"{head}: {outcome}", "deploy-log--outcome"))
        for line in plain(e.error or "").splitlines()[-12:]:
            self.put((f"  ! {line}", ""))
        self.in_flight.discard(e.id or 0)
        if e.kind == "Interrupted":
            self.in_flight.clear()
        self._active()

    def say(self, line: str) -> None:
        """A line of the console's own (a bulk action's summary)."""
        self.put((line, ""))
        self._active()

    def put(self, *pieces: Piece) -> None:
        """A line, written in the theme's colours and kept to be written again in another's."""
        self.written.append(pieces)
        self._write(pieces)

    def _write(self, pieces: tuple[Piece, ...]) -> None:
        self.write(Text.assemble(*((text, self.themed(name)) if name else text for text, name in pieces)))

    def restyle(self) -> None:
        scrolled = not self.is_vertical_scroll_end
        y = self.scroll_y
        self.clear()
        for pieces in self.written:
            self._write(pieces)
        if scrolled:
            self.scroll_to(y=y, animate=False)

    @property
    def running(self) -> bool:
        return bool(self.in_flight)

    def _active(self) -> None:
        self.add_class("-active")
        if self.rest_timer is not None:
            self.rest_timer.stop()
            self.rest_timer = None
        if not self.in_flight:
            self.rest_timer = self.set_timer(LINGER, self._rest)

    def _rest(self) -> None:
        self.rest_timer = None
        if not self.in_flight:
            self.remove_class("-active")
