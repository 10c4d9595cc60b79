"""What the engine is doing, as it happens: deploy steps, build output, outcomes."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from ..models import DeployStep, Event
from ..plain import one_line, plain


class DeployLog(RichLog):
    def __init__(self, **kwargs):
        super().__init__(max_lines=2000, wrap=False, markup=False, highlight=False, **kwargs)

    def step(self, s: DeployStep) -> None:
        if s.step == "output":
            self.write(Text(f"  │ {plain(s.detail)}", style="dim"))
        else:
            self.write(Text(f"[{s.id} {one_line(s.agent)}] {s.step}: {one_line(s.detail, 200)}"))

    def event(self, e: Event) -> None:
        if e.kind not in ("ApprovalResolved", "Destroyed", "Rebuilt", "Interrupted") or (
                e.kind == "Rebuilt" and e.id is not None):
            return
        head = f"{e.kind} {one_line(e.agent)}" + (f" #{e.id}" if e.id else "")
        outcome = " ".join(filter(None, [one_line(e.status), one_line(e.tag)]))
        self.write(Text(f"{head}: {outcome}", style="bold"))
        for line in plain(e.error or "").splitlines()[-12:]:
            self.write(Text(f"  ! {line}"))
