"""The verbs of the host admin socket, carried out on an engine.

Every transport ends here: the embedded client calls `handle` in-process,
the socket server with each line it reads. A request is checked against the
verb's fields before the engine sees it; whatever goes wrong comes back as
`ok: false` with an error that says what, never as an exception.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from . import wire
from .engine import Engine
from .errors import HiveError
from .models import Approval

log = logging.getLogger(__name__)

ENGINE_THREADS = 64
# Read-only verbs run on a pool of their own, which no write ever occupies.
READ_THREADS = 4
_TYPES = {int: "an integer", str: "a string", bool: "a boolean", dict: "an object"}
# Every integer on the wire ends up in SQLite or beside its rows, whose
# integers are 64-bit: a bigger one is refused here, not deep in a query.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Field:
    type: type
    required: bool = True


def check_fields(request: dict[str, Any], fields: dict[str, Field]) -> dict[str, Any]:
    args = {}
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
        if spec.type is int and not INT_MIN <= value <= INT_MAX:
            raise HiveError(f"field `{name}` must be a 64-bit integer, from -2^63 to 2^63-1")
        args[name] = value
    return args


def _ack(_: object) -> dict:
    return {}


def _one_agent(scope: dict[str, Any]) -> str:
    """The one agent a hyperhive `scope` names.

    hyperhive reads a scope whose selectors are all empty as the whole hive;
    here an action always names exactly one agent, so anything else is refused.
    """
    names = scope.get("agent_names")
    if not isinstance(names, list) or not names:
        raise HiveError("scope names no agent; name exactly one in scope.agent_names (an empty scope is never 'all')")
    if len(names) != 1:
        raise HiveError(f"scope names {len(names)} agents; name exactly one")
    other = sorted(k for k, v in scope.items() if k != "agent_names" and v)
    if other:
        raise HiveError(f"scope selectors {', '.join(other)} are not supported; name one agent in agent_names")
    if not isinstance(names[0], str):
        raise HiveError(f"scope.agent_names must hold strings, not {type(names[0]).__name__}")
    return names[0]


class Dispatcher:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._background: set[asyncio.Task] = set()
        # Engine calls block (builds take minutes): a pool of their own, big
        # enough that deploys of many agents build side by side, not queued
        # behind the event loop's small default one.
        self._pool = ThreadPoolExecutor(max_workers=ENGINE_THREADS, thread_name_prefix="hive-engine")
        self._reads = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="hive-read")
        # Approved work of each agent, in the order approved: one runs on a
        # thread, the rest wait here as tasks (agent -> [turn, how many hold or want it]).
        self._turns: dict[str, list] = {}
        e = engine
        self._verbs: dict[str, tuple[dict[str, Field], Callable[..., Awaitable[dict]]]] = {
            "list": ({}, self._read(lambda: {"agents": e.agents()})),
            "agent_status": ({}, self._read(lambda: {"agent_statuses": [r.to_wire() for r in e.status()]})),
            "pending": ({}, self._read(lambda: {"approvals": [a.to_wire() for a in e.pending()]})),
            "approvals": (
                {"status": Field(str, False), "agent": Field(str, False)},
                self._read(lambda status=None, agent=None: {
                    "approvals": [a.to_wire() for a in e.approvals(status, agent)]}),
            ),
            "approval": ({"id": Field(int)}, self._read(lambda id: {"approval": e.approval(id).to_wire()})),
            "approve": ({"id": Field(int)}, self._approve),
            "deny": (
                {"id": Field(int), "note": Field(str, False)},
                self._sync(lambda id, note=None: {"approval": e.deny(id, note).to_wire()}),
            ),
            "request_apply_commit": (
                {"agent": Field(str), "commit_ref": Field(str), "description": Field(str, False)},
                self._sync(lambda agent, commit_ref, description=None: {
                    "approval": e.request_apply_commit(agent, commit_ref, description).to_wire()}),
            ),
            "request_spawn": (
                {"name": Field(str), "description": Field(str, False)},
                self._sync(lambda name, description=None: {
                    "approval": e.request_spawn(name, description).to_wire()}),
            ),
            "history": (
                {"name": Field(str)},
                self._read(lambda name: {"tags": [t.to_wire() for t in e.history(name)]}),
            ),
            "events": (
                {"since": Field(int, False)},
                self._read(lambda since=None: {"events": [v.to_wire() for v in e.events(since or 0)]}),
            ),
            "meta_log": ({}, self._read(lambda: {"commits": [vars(c) for c in e.meta_log()]})),
            "diff": ({"id": Field(int)}, self._read(lambda id: e.diff(id))),
            "urls": ({}, self._read(lambda: {"urls": {"domain": socket.getfqdn(), "home": None}})),
            "transients": ({}, self._read(lambda: {"transients": [t.to_wire() for t in e.transients_in_flight()]})),
            "start": ({"scope": Field(dict)}, self._sync(lambda scope: _ack(e.start(_one_agent(scope))))),
            "stop": (
                {"scope": Field(dict), "graceful": Field(bool, False)},
                self._sync(lambda scope, graceful=None: _ack(e.stop(_one_agent(scope), graceful is not False))),
            ),
            "restart": ({"name": Field(str)}, self._sync(lambda name: _ack(e.restart(name)))),
            "rebuild": ({"name": Field(str)}, self._sync(lambda name: {"meta_commit": e.rebuild(name)})),
            "destroy": (
                {"name": Field(str), "purge": Field(bool, False)},
                self._sync(lambda name, purge=None: {"warning": e.destroy(name, purge is True)}),
            ),
            "set_paused": (
                {"name": Field(str), "paused": Field(bool)},
                self._sync(lambda name, paused: {"agent_statuses": [e.set_paused(name, paused).to_wire()]}),
            ),
            "logs": (
                # `follow: true` turns a socket connection into a stream; the server takes those.
                {"name": Field(str), "lines": Field(int, False), "follow": Field(bool, False)},
                self._sync(lambda name, lines=None, follow=None: {
                    "lines": e.logs(name, 200 if lines is None else lines)}),
            ),
        }

    @property
    def verbs(self) -> dict[str, dict[str, Field]]:
        """Each verb carried out here, with its fields."""
        return {name: fields for name, (fields, _) in self._verbs.items()}

    def _sync(self, fn: Callable[..., dict]) -> Callable[..., Awaitable[dict]]:
        return self._on(self._pool, fn)

    def _read(self, fn: Callable[..., dict]) -> Callable[..., Awaitable[dict]]:
        return self._on(self._reads, fn)

    @staticmethod
    def _on(pool: ThreadPoolExecutor, fn: Callable[..., dict]) -> Callable[..., Awaitable[dict]]:
        async def run(**args: Any) -> dict:
            return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(fn, **args))

        return run

    async def handle(self, request: object) -> dict[str, Any]:
        if not isinstance(request, dict):
            return wire.error(f"a request must be a JSON object, not {type(request).__name__}")
        cmd = request.get("cmd")
        if not isinstance(cmd, str):
            return wire.error("missing field `cmd` (the verb)")
        if cmd not in self._verbs:
            return wire.error(f"unknown verb {cmd!r}")
        fields, run = self._verbs[cmd]
        try:
            return wire.ok(**await run(**check_fields(request, fields)))
        except HiveError as e:
            return wire.error(str(e))
        except Exception as e:
            log.exception("verb %s failed", cmd)
            return wire.error(f"internal error in {cmd}: {type(e).__name__}: {e}")

    async def _approve(self, id: int) -> dict:
        """Claim at once, carry out in the background: a client that goes away
        does not stop the deploy, and the outcome reaches subscribers."""
        approval = await asyncio.get_running_loop().run_in_executor(self._pool, self.engine.claim, id)
        task = asyncio.create_task(self._carry_out(approval))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return {"approval": approval.to_wire()}

    async def _carry_out(self, approval: Approval) -> None:
        """Carry out once the agent's earlier approvals are done: a backlog
        waits here, as tasks, and never holds the threads other verbs need."""
        turn = self._turns.setdefault(approval.agent, [asyncio.Lock(), 0])
        turn[1] += 1
        try:
            async with turn[0]:
                await asyncio.get_running_loop().run_in_executor(self._pool, self.engine.carry_out, approval)
        except Exception:
            log.exception("approval %s could not be carried out", approval.id)
        finally:
            turn[1] -= 1
            if turn[1] == 0:
                del self._turns[approval.agent]

    async def drain(self) -> None:
        """Wait for deploys and spawns started here to finish."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
