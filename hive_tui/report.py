"""Human-readable output for the CLI. Every piece of agent or manager text
goes through `plain`, so nothing printed here can drive the terminal."""

from __future__ import annotations

from collections.abc import Sequence

from .models import AgentStatus, Approval, DeployStep, Event, TagRecord, Transient
from .plain import one_line, plain
from .presentation import age, flags, state_word


def table(headers: Sequence[str], rows: list[Sequence[str]]) -> str:
    """Aligned columns; the last column may hold several lines, kept under its heading."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers[:-1])]
    indent = " " * (sum(widths) + 2 * len(widths))

    def line(cells: Sequence[str]) -> str:
        first, *more = cells[-1].split("\n") or [""]
        head = "  ".join(c.ljust(w) for c, w in zip(cells[:-1], widths))
        return "\n".join([f"{head}  {first}".rstrip(), *(indent + m for m in more)])

    return "\n".join([line(headers), *map(line, rows)])


def _hosted(headers: list[str], rows: list[Sequence[str]],
            hosts: Sequence[str]) -> tuple[list[str], list[Sequence[str]]]:
    """With `hosts` (one per row, as for --all-hosts), a HOST column first."""
    if not hosts:
        return headers, rows
    return ["HOST", *headers], [[plain(h), *r] for h, r in zip(hosts, rows)]


def flag_cell(row: AgentStatus) -> str:
    """The flags as one column word: hyphenated, comma-joined."""
    return ",".join(word.replace(" ", "-") for word in flags(row)) or "-"


def status_table(rows: list[AgentStatus], spawning: Sequence[Transient] = (), hosts: Sequence[str] = ()) -> str:
    coming = f"spawning: {', '.join(plain(t.agent) for t in spawning)}" if spawning else ""
    body = table(*_hosted(
        ["NAME", "STATE", "DEPLOYED", "FLAGS", "MODEL", "STATUS"],
        [[plain(r.name), state_word(r), r.deployed_sha or "-", flag_cell(r), one_line(r.active_model, 16) or "-",
          (f"{one_line(r.status_text, 48)} ({age(r.status_set_at)})" if r.status_text else "-")] for r in rows],
        hosts)) if rows else "no agents"
    return "\n".join(filter(None, [body, coming]))


def approvals_table(items: list[Approval], hosts: Sequence[str] = ()) -> str:
    if not items:
        return "no approvals"
    return table(*_hosted(
        ["ID", "AGENT", "KIND", "STATUS", "AGE", "SHA", "DESCRIPTION"],
        [[str(a.id), plain(a.agent), one_line(a.kind, 16), one_line(a.status, 12), age(a.requested_at),
          (a.fetched_sha or "")[:12] or "-", one_line(a.description, 60) or "-"] for a in items],
        hosts))


def approval_outcome(a: Approval) -> str:
    tag = f" ({plain(a.terminal_tag)})" if a.terminal_tag else ""
    words = {"approved": "approved" if a.kind != "apply_commit" else "deployed"}.get(a.status, plain(a.status))
    line = f"approval {a.id} for {plain(a.agent)}: {words}{tag}"
    if a.note:
        line += "\nnote: " + _indented(a.note)
    if a.error:
        line += "\nerror: " + _indented(a.error)
    return line


def proposal_line(a: Approval) -> str:
    if a.kind == "spawn":
        return f"approval {a.id}: spawn {plain(a.agent)} is waiting for the operator"
    return (f"approval {a.id}: {plain(a.agent)} {(a.fetched_sha or '')[:12]} "
            f"({one_line(a.commit_ref, 40)}) is waiting for the operator")


def history_table(tags: list[TagRecord], hosts: Sequence[str] = ()) -> str:
    if not tags:
        return "no history"
    return table(*_hosted(
        ["ID", "STATE", "WHEN", "SHA", "NOTE"],
        [[str(t.id), t.state, t.at or "-", t.sha[:12], plain(t.message.strip()) or "-"] for t in tags],
        hosts))


def events_table(events: list[Event], hosts: Sequence[str] = ()) -> str:
    if not events:
        return "no events"
    rows: list[Sequence[str]] = []
    for e in events:
        detail = " ".join(
            f"{k}={one_line(str(v), 60)}" for k, v in
            (("id", e.id), ("status", e.status), ("tag", e.tag), ("sha", (e.sha or "")[:12] or None),
             ("note", e.note), ("error", e.error)) if v is not None
        )
        rows.append([str(e.seq), e.at, plain(e.kind), plain(e.agent), detail])
    return table(*_hosted(["SEQ", "WHEN", "KIND", "AGENT", "DETAIL"], rows, hosts))


def progress_line(item: object) -> str | None:
    if isinstance(item, DeployStep):
        if item.step == "output":
            return f"  | {plain(item.detail)}"
        return f"[{item.id} {plain(item.agent)}] {item.step}: {_indented(item.detail)}"
    return None


def _indented(text: str) -> str:
    return plain(text).replace("\n", "\n    ")
