"""What an operator can do in the console, and the key for each.

One table feeds the key bindings, the footer, the help screen and the
command palette, so an action is a key, a palette entry and a help line at
once. Every binding has an id, so a keymap can move it (config.yaml's
`keys:`, see keymap.py); the keys here are the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding, BindingType


@dataclass(frozen=True)
class Action:
    id: str
    key: str
    label: str
    help: str
    scope: str  # "agent", "approval" or "global"
    # Shown in the footer; a key left out is still in the help screen and the palette.
    footer: bool = True


ACTIONS = (
    Action("approve", "a", "Approve", "approve the selected request and carry it out", "approval"),
    Action("deny", "n", "Deny…", "deny the selected request, with an optional reason for the manager", "approval"),
    Action("resolved", "v", "Resolved", "show resolved requests too, or pending ones only", "approval"),
    Action("start", "s", "Start", "start the selected agent", "agent"),
    Action("stop", "x", "Stop", "stop the selected agent: a signal, a grace period, then by force", "agent"),
    Action("restart", "r", "Restart", "stop the selected agent and start it again", "agent"),
    Action("rebuild", "b", "Rebuild", "build the agent's applied config again and switch to it", "agent"),
    Action("pause", "p", "Pause/resume", "park the agent's turn loop, or let it run again", "agent"),
    Action("destroy", "d", "Destroy…", "remove the agent's container, keeping its repos and state", "agent"),
    Action("purge", "D", "Purge…", "destroy the agent and delete its repos and state, with no undo", "agent"),
    Action("mark", "space", "Mark", "mark or unmark the agent: start, stop, restart, rebuild and pause then act "
           "on every marked agent", "agent"),
    Action("history", "enter", "History", "the agent's tags, the meta log and its logs", "agent"),
    Action("logs", "l", "Logs", "the agent's own log, read lazily: follow, search, time window, save", "agent"),
    Action("filter", "slash", "Filter", "filter the lists as you type", "global"),
    Action("faults", "f", "Faults only", "show only the agents that need you (failed, needs login or update, an "
           "action in flight), or every agent again", "global"),
    Action("jump", "colon", "Jump", "jump to an agent, a view or a host by name", "global"),
    Action("hosts", "H", "Hosts", "the configured hosts; switch to another", "global"),
    Action("fleet", "A", "All hosts", "every host in one view, or back to the selected row's host", "global"),
    Action("command_log", "L", "Command log", "every action taken in the console and what came of it, newest "
           "first, this session's and earlier ones'; its lines can be copied", "global"),
    Action("group", "g", "Group", "group the agents under their parents, with a header per group saying how "
           "many run; again to list them all by name", "global"),
    Action("fold", "z", "Fold", "fold the group under the cursor into its header line, or unfold it (Enter on "
           "a header does too)", "global"),
    Action("help", "question_mark", "Help", "every key, and what it does", "global"),
    Action("quit", "q", "Quit", "leave the console", "global"),
    # Escape in the lists; a screen's or a dialog's own Escape comes first there.
    Action("clear", "escape", "Clear", "clear the filter, or else the marks", "global", footer=False),
)


# Left out of the footer, which is full: found in the help screen and the palette.
FOOTERLESS = frozenset({"command_log", "group", "fold"})

# What changes a hive: hidden and refused on a read-only host.
CHANGES = frozenset({"approve", "deny", "start", "stop", "restart", "rebuild", "pause", "destroy", "purge"})


def bindings(scope: str, via_app: bool = True) -> list[BindingType]:
    """The bindings of one scope; widgets route them to the app's actions."""
    prefix = "app." if via_app else ""
    return [
        # Enter is the table's own key; Space (mark) leaves the single host's full footer to the actions.
        Binding(a.key, f"{prefix}{a.id}", a.label, id=a.id, tooltip=a.help,
                show=a.footer and a.key not in ("enter", "space") and a.id not in FOOTERLESS)
        for a in ACTIONS if a.scope == scope
    ]


def elsewhere(scope: str) -> list[BindingType]:
    """Hidden app-wide bindings for one scope's keys, so that pressing one
    outside its pane says where it acts instead of doing nothing. They share
    the action's id, so a keymap moves them with it."""
    return [Binding(a.key, f"agent_pane('{a.id}')", a.label, show=False, id=a.id)
            for a in ACTIONS if a.scope == scope]


IDS = frozenset(a.id for a in ACTIONS if a.scope != "global")


def by_id(id: str) -> Action:
    return next(a for a in ACTIONS if a.id == id)
