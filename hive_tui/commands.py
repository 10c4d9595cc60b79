"""The command palette: actions on the selected agent or request, agents to
jump to, views and hosts, each findable by name."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from .actions import ACTIONS, CHANGES
from .palette import EntryProvider

if TYPE_CHECKING:
    from .app import HiveApp


class HiveCommands(EntryProvider):
    def _entries(self) -> list[tuple[str, str, Callable[[], Any]]]:
        # The palette is only ever opened on the console.
        app = cast("HiveApp", self.app)
        entries: list[tuple[str, str, Callable[[], Any]]] = []
        if self.screen is not app.screen_stack[0]:
            # Another screen (the all-hosts view) lists its own entries.
            return entries

        keyed = self.keyed

        def hidden(id: str) -> bool:
            # A read-only host's actions are not offered (nor sent).
            return app.read_only_here() and (id in CHANGES or id == "mark")

        agent = app.selected_agent()
        if agent:
            for a in ACTIONS:
                if a.scope == "agent" and not hidden(a.id):
                    entries.append((f"{a.label.rstrip('…')} {agent}", keyed(a), partial(app.do_action, a.id)))
        approval = app.selected_approval()
        if approval is not None:
            for a in ACTIONS:
                if a.scope == "approval" and not hidden(a.id):
                    entries.append((f"{a.label.rstrip('…')} request #{approval.id} ({approval.agent})", keyed(a),
                                    partial(app.do_action, a.id)))
        for name in app.agent_names():
            entries.append((f"Go to {name}", f"select {name} in the container list", partial(app.jump_to, name)))
        for host in app.hosts:
            entries.append((f"Switch to host {host.name}", host.address(), partial(app.switch_host, host)))
        for a in ACTIONS:
            # Jump is the palette itself.
            if a.scope == "global" and a.id != "jump":
                entries.append((a.label, keyed(a), partial(app.do_action, a.id)))
        return entries
