"""The table of verbs (verbs.py), carried out on an engine.

Every transport ends here: the embedded client calls `handle` in-process,
the socket server with each line it reads. A request is checked against the
verb's fields before the engine sees it; whatever goes wrong comes back as
`ok: false` with an error that says what, never as an exception.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import AsyncGenerator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from .. import wire
from ..errors import HiveError
from ..models import Approval, Lagged
from ..verbs import VERBS, Verb, check_fields
from .engine import Engine
from .fanout import Fanout
from .logstream import follow, log_source

log = logging.getLogger(__name__)

ENGINE_THREADS = 64
# Read-only verbs run on a pool of their own, which no write ever occupies.
READ_THREADS = 4


@dataclass(frozen=True)
class Caller:
    """Who is on the other end, as the kernel vouches."""

    pid: int
    uid: int
    gid: int


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
        # Every subscriber of this dispatcher, in-process or over the socket,
        # waits in this one fan-out, where what waits is bounded.
        self.fanout = Fanout(engine.subscribe)
        self._fanout_started = False
        # Every verb answered with one response: all but the subscriptions, which only stream.
        self._verbs = {name: (verb.fields, self._runner(verb)) for name, verb in VERBS.items()
                       if verb.call is not None or not verb.streams}

    def _runner(self, verb: Verb) -> Callable[..., Awaitable[dict]]:
        if verb.name == "approve":
            return self._approve
        if verb.name == "whoami":
            return self._whoami
        assert verb.call is not None, f"{verb.name} has no engine call"
        # Quick reads run on a pool no write ever occupies. A verb that can
        # stream reads at the pace of a command or a file: it takes the
        # engine's pool, leaving the read pool to the quick ones.
        pool = self._reads if verb.reads_only and not verb.streams else self._pool
        return self._on_pool(pool, functools.partial(verb.call, self.engine))

    @staticmethod
    def _on_pool(pool: ThreadPoolExecutor, fn: Callable[..., dict]) -> Callable[..., Awaitable[dict]]:
        async def run(**args: Any) -> dict:
            return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(fn, **args))

        return run

    async def handle(self, request: object, caller: Caller | None = None) -> dict[str, Any]:
        """The answer to one request; `caller` is who sent it (None: this process)."""
        if not isinstance(request, dict):
            return wire.error(f"a request must be a JSON object, not {type(request).__name__}")
        cmd = request.get("cmd")
        if not isinstance(cmd, str):
            return wire.error("missing field `cmd` (the verb)")
        if cmd not in self._verbs:
            return wire.error(f"unknown verb {cmd!r}")
        fields, run = self._verbs[cmd]
        try:
            args = check_fields(request, fields)
            if cmd == "whoami":
                args["caller"] = caller
            return wire.ok(**await run(**args))
        except HiveError as e:
            return wire.error(str(e))
        except Exception as e:
            log.exception("verb %s failed", cmd)
            return wire.error(f"internal error in {cmd}: {type(e).__name__}: {e}")

    @staticmethod
    async def _whoami(caller: Caller | None) -> dict:
        """Who sent the request, as the kernel reports it; in process, this process."""
        if caller is None:
            caller = Caller(os.getpid(), os.getuid(), os.getgid())
        return {"pid": caller.pid, "uid": caller.uid, "gid": caller.gid}

    async def follow_logs(self, name: str, lines: int | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """`logs` with `follow: true`, as the messages the socket carries: an
        ack, then a message per line; or an error, and the stream ends.

        The socket server and the embedded client both follow logs through
        this one stream. Whatever it holds (a file, a command) is let go as
        soon as its caller stops.
        """
        lines = lines or 200
        try:
            source = await asyncio.to_thread(log_source, self.engine, name, lines)
        except HiveError as e:
            yield wire.error(str(e))
            return
        yield wire.ok()
        try:
            async with aclosing(follow(source, lines)) as followed:
                async for line in followed:
                    yield wire.ok(line=line)
        except HiveError as e:
            yield wire.error(str(e))

    async def subscribe(self, rows_only: bool = False) -> AsyncGenerator[bytes, None]:
        """`subscribe` (with `rows_only`, `subscribe_agent_status`), as the
        lines the socket carries: an ack, then each push as it happens.

        The socket server and the embedded client both subscribe through this
        one stream. Lines, not messages: each push is encoded once for every
        subscriber (see fanout.py). A subscriber that falls too far behind is
        dropped: the stream ends with a `lagged` line saying how many pushes
        it lost (the status rows' stream, hyperhive's, has no such message
        and just ends). Whoever reads it then reads afresh.
        """
        if not self._fanout_started:
            # Started with the first subscriber: the fan-out needs the running loop.
            self.fanout.start()
            self._fanout_started = True
        sub = self.fanout.add(rows_only)
        try:
            yield wire.encode(wire.ok())
            while (line := await sub.next()) is not None:
                yield line
            if not rows_only:
                yield wire.encode(wire.ok(**Lagged(sub.lost or 0).to_wire()))
        finally:
            self.fanout.remove(sub)

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

    async def close(self) -> None:
        """Drain, then stop listening to the engine's pushes."""
        await self.drain()
        self.fanout.close()
