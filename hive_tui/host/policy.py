"""Which verbs each socket offers.

The admin socket is the operator's and offers every verb. The manager's
socket offers what the manager needs to file its requests and follow what
became of them, and nothing that resolves a request, acts on a container or
reads what another agent wrote: whoever can reach only the manager's socket
cannot approve what it asked for.

A socket's policy is checked once per request, before the request reaches
the server's streams or the dispatcher, so a verb added to the table of
verbs (verbs.py) is refused on the manager's socket until it is named here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..verbs import VERBS


@dataclass(frozen=True)
class Policy:
    # Who the socket is for, as its refusals name it.
    holder: str
    # The verbs it offers; None for every verb.
    verbs: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.verbs is not None and not self.verbs <= VERBS.keys():
            raise ValueError(f"the {self.holder} socket's policy names no such verb: "
                             f"{', '.join(sorted(self.verbs - VERBS.keys()))}")

    def refusal(self, cmd: object) -> str | None:
        """Why `cmd` is refused on this socket, or None if it may go on.

        A verb the table does not hold is refused as unknown, the same words
        the admin socket uses.
        """
        if self.verbs is None or not isinstance(cmd, str) or cmd in self.verbs:
            return None
        if cmd in VERBS:
            return (f"{cmd!r} is the operator's: the {self.holder} socket does not offer it "
                    f"(it offers {', '.join(sorted(self.verbs))})")
        return f"unknown verb {cmd!r}"


OPERATOR = Policy("admin")

# What the manager may do: file a request, and read back approvals (with the
# diff the hive made of its own proposal), the tags and helper events that
# record each outcome, the agents' names, and who it is. Not offered: approve,
# deny, every lifecycle action, pause, the operator's feeds (`subscribe`
# carries every agent's status text and build output), agents' logs (`logs`,
# and `log_page`, `log_find`, `log_since` alike) and status rows (another
# agent's own words), and the meta log.
MANAGER = Policy("manager's", frozenset({
    "request_apply_commit", "request_spawn",
    "pending", "approvals", "approval", "diff",
    "history", "events",
    "list", "whoami",
}))
