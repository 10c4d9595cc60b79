"""The wire's verbs, each written once.

hyperhive's own client keeps its verbs as one enum that the daemon matches
on, so a verb cannot exist on one side only. This table is that enum here:
the dispatcher carries out its entries (and knows no others), the clients
learn from it which requests they may send again, the manager's socket
checks its list against it, the capability list is its names, and a test
holds docs/protocol.md to it.

Nothing here imports the host side: a remote client loads this table
without the engine it names.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import HiveError, NotFound
from .models import rfc3339
from .names import check_name

if TYPE_CHECKING:
    from .host.engine import Engine

_TYPES = {int: "an integer", str: "a string", bool: "a boolean", dict: "an object"}
# Every integer on the wire ends up in SQLite or beside its rows, whose
# integers are 64-bit: a bigger one is refused here, not deep in a query.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Field:
    type: type
    required: bool = True
    # Ours alone: hyperhive's daemon has the verb but not this field.
    ours: bool = False


def check_fields(request: dict[str, Any], fields: dict[str, Field]) -> dict[str, Any]:
    """The request's fields, checked against `fields`: missing, or of the wrong type, is refused by name."""
    args: dict[str, Any] = {}
    for name, spec in fields.items():
        if name not in request:
            if spec.required:
                raise HiveError(f"missing field `{name}`")
            continue
        value = request[name]
        if value is None and not spec.required:
            args[name] = None
            continue
        # bool is an int in Python; an id of `true` is still a wrong type.
        if not isinstance(value, spec.type) or (spec.type is int and isinstance(value, bool)):
            raise HiveError(f"field `{name}` must be {_TYPES[spec.type]}, not {type(value).__name__}")
        if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
            raise HiveError(f"field `{name}` must be a 64-bit integer, from -2^63 to 2^63-1")
        args[name] = value
    return args


def scope_agents(scope: dict[str, Any]) -> list[str]:
    """The agents a hyperhive `scope` names, each name checked, none twice.

    hyperhive reads a scope whose selectors are all empty as the whole hive;
    here an action always names its agents, so an empty scope is refused.
    """
    names = scope.get("agent_names")
    if not isinstance(names, list) or not names:
        raise HiveError("scope names no agent; name them in scope.agent_names (an empty scope is never 'all')")
    other = sorted(k for k, v in scope.items() if k != "agent_names" and v)
    if other:
        raise HiveError(f"scope selectors {', '.join(other)} are not supported; name agents in agent_names")
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str):
            raise HiveError(f"scope.agent_names must hold strings, not {type(name).__name__}")
        check_name(name)
        if name in seen:
            raise HiveError(f"scope names {name} twice")
        seen.add(name)
    return names


EngineCall = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Verb:
    name: str
    fields: dict[str, Field] = field(default_factory=dict)
    # Changes nothing, so a client may send it again on a new connection.
    reads_only: bool = False
    # Can turn its connection into a stream: always (the subscriptions), or
    # with `follow: true` (logs).
    streams: bool = False
    # hyperhive's own daemon has it too (HOST_SOCK.md); the rest are ours.
    hyperhive: bool = False
    # The engine call, given the engine and the request's checked fields; it
    # returns the answer's payload. None: the dispatcher's own (it claims an
    # approval and carries it out in the background, answers who is asking,
    # or streams).
    call: EngineCall | None = None


def _ack(_: object) -> dict[str, Any]:
    return {}


def _each(engine: Engine, action: Callable[[str], bool | None], scope: dict[str, Any]) -> dict[str, Any]:
    """`action` on every agent the scope names, in its order, once all of them are known to exist.

    One that fails does not stop the others; the error names each failure and
    what was done. The answer's `already` lists the agents the action found
    as it would leave them; it is left out when the runtime could not tell.
    """
    names = scope_agents(scope)
    known = set(engine.agents())
    missing = [n for n in names if n not in known]
    if missing:
        raise NotFound(f"no agent named {', '.join(missing)}")
    done: list[str] = []
    already: list[str] | None = []
    failed: list[str] = []
    for name in names:
        try:
            was = action(name)
        except HiveError as e:
            failed.append(f"{name}: {e}")
            continue
        done.append(name)
        if was is None:
            already = None
        elif was and already is not None:
            already.append(name)
    if failed:
        raise HiveError("; ".join(failed) + (f" (done: {', '.join(done)})" if done else ""))
    return {} if already is None else {"already": already}


def _start(e: Engine, scope: dict[str, Any]) -> dict[str, Any]:
    return _each(e, e.start, scope)


def _stop(e: Engine, scope: dict[str, Any], graceful: bool | None = None) -> dict[str, Any]:
    return _each(e, lambda name: e.stop(name, graceful is not False), scope)


def _log_find(e: Engine, name: str, text: str, start: int, backward: bool | None = None) -> dict[str, Any]:
    line, scanned_to = e.log_find(name, text, start, backward is True)
    return {"line": line} if scanned_to is None else {"line": None, "scanned_to": scanned_to}


def _table(*verbs: Verb) -> dict[str, Verb]:
    return {v.name: v for v in verbs}


VERBS: dict[str, Verb] = _table(
    Verb("list", reads_only=True, hyperhive=True, call=lambda e: {"agents": e.agents()}),
    Verb("agent_status", reads_only=True, hyperhive=True,
         call=lambda e: {"agent_statuses": [r.to_wire() for r in e.status()]}),
    Verb("subscribe_agent_status", reads_only=True, streams=True, hyperhive=True),
    Verb("subscribe", reads_only=True, streams=True),
    Verb("pending", reads_only=True, hyperhive=True,
         call=lambda e: {"approvals": [a.to_wire() for a in e.pending()]}),
    Verb("approvals", {"status": Field(str, False), "agent": Field(str, False)}, reads_only=True,
         call=lambda e, status=None, agent=None: {"approvals": [a.to_wire() for a in e.approvals(status, agent)]}),
    Verb("approval", {"id": Field(int)}, reads_only=True,
         call=lambda e, id: {"approval": e.approval(id).to_wire()}),
    Verb("approve", {"id": Field(int)}, hyperhive=True),
    Verb("deny", {"id": Field(int), "note": Field(str, False, ours=True)}, hyperhive=True,
         call=lambda e, id, note=None: {"approval": e.deny(id, note).to_wire()}),
    Verb("request_apply_commit", {"agent": Field(str), "commit_ref": Field(str), "description": Field(str, False)},
         call=lambda e, agent, commit_ref, description=None: {
             "approval": e.request_apply_commit(agent, commit_ref, description).to_wire()}),
    Verb("request_spawn", {"name": Field(str), "description": Field(str, False)},
         call=lambda e, name, description=None: {"approval": e.request_spawn(name, description).to_wire()}),
    Verb("history", {"name": Field(str)}, reads_only=True,
         call=lambda e, name: {"tags": [t.to_wire() for t in e.history(name)]}),
    Verb("events", {"since": Field(int, False)}, reads_only=True,
         call=lambda e, since=None: {"events": [v.to_wire() for v in e.events(since or 0)]}),
    Verb("meta_log", reads_only=True,
         call=lambda e: {"commits": [{**vars(c), "at": rfc3339(c.at)} for c in e.meta_log()]}),
    Verb("diff", {"id": Field(int)}, reads_only=True, call=lambda e, id: e.diff(id)),
    Verb("urls", reads_only=True, hyperhive=True,
         call=lambda e: {"urls": {"domain": socket.getfqdn(), "home": None}}),
    Verb("transients", reads_only=True,
         call=lambda e: {"transients": [t.to_wire() for t in e.transients_in_flight()]}),
    Verb("start", {"scope": Field(dict)}, hyperhive=True, call=_start),
    Verb("stop", {"scope": Field(dict), "graceful": Field(bool, False)}, hyperhive=True, call=_stop),
    Verb("restart", {"name": Field(str)}, hyperhive=True, call=lambda e, name: _ack(e.restart(name))),
    Verb("rebuild", {"name": Field(str)}, call=lambda e, name: {"meta_commit": e.rebuild(name)}),
    Verb("destroy", {"name": Field(str), "purge": Field(bool, False)},
         call=lambda e, name, purge=None: {"warning": e.destroy(name, purge is True)}),
    Verb("set_paused", {"name": Field(str), "paused": Field(bool)}, hyperhive=True,
         call=lambda e, name, paused: {"agent_statuses": [e.set_paused(name, paused).to_wire()]}),
    Verb("logs", {"name": Field(str), "lines": Field(int, False), "follow": Field(bool, False)},
         reads_only=True, streams=True,
         call=lambda e, name, lines=None, follow=None: {"lines": e.logs(name, 200 if lines is None else lines)}),
    Verb("log_page", {"name": Field(str), "start": Field(int, False), "count": Field(int)}, reads_only=True,
         call=lambda e, name, count, start=None: e.log_page(name, start, count).to_wire()),
    Verb("log_find", {"name": Field(str), "text": Field(str), "start": Field(int), "backward": Field(bool, False)},
         reads_only=True, call=_log_find),
    Verb("log_since", {"name": Field(str), "at": Field(str)}, reads_only=True,
         call=lambda e, name, at: {"line": e.log_since(name, at)}),
    Verb("whoami", reads_only=True),
    Verb("capabilities", reads_only=True, call=lambda e: {"verbs": {n: list(v.fields) for n, v in VERBS.items()}}),
)

# Safe to send again on a new connection: a lost answer changed nothing.
READ_ONLY = frozenset(v.name for v in VERBS.values() if v.reads_only)
# What this daemon offers, for a client to check before it asks.
CAPABILITIES = tuple(VERBS)
# The verbs hyperhive's own daemon offers too.
HYPERHIVE = frozenset(v.name for v in VERBS.values() if v.hyperhive)

# What a daemon offers: each verb with the fields it takes. Ours answers
# `capabilities` with OURS; a daemon that does not know that verb is
# hyperhive's, which offers the table's hyperhive column.
Offer = dict[str, frozenset[str]]
OURS: Offer = {n: frozenset(v.fields) for n, v in VERBS.items()}
HYPERHIVE_OFFER: Offer = {n: frozenset(f for f, spec in v.fields.items() if not spec.ours)
                          for n, v in VERBS.items() if v.hyperhive}
