"""The host admin socket: an engine served as JSON lines on a Unix socket.

Each connection reads one request line at a time and answers it; the verbs
are the dispatcher's. Three requests turn a connection into a stream until
the client goes away: `subscribe` (everything the engine pushes),
`subscribe_agent_status` (hyperhive's: status rows only) and `logs` with
`follow`.

The engine is never held up by a client: a subscriber has a bounded queue,
and one too slow to keep up loses pushes and is told how many (a `lagged`
message) so it can reconcile. A request in flight runs to its end even if
its client hangs up, and shutdown waits for every one of them.
"""

from __future__ import annotations

import asyncio
import grp
import logging
import os
import signal
import socket
import stat
import struct
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

from . import wire
from .dispatch import Caller, Dispatcher
from .verbs import VERBS, check_fields
from .engine import Engine
from .errors import HiveError
from .logstream import follow_command
from .models import AgentStatus, Lagged
from .policy import MANAGER, OPERATOR, Policy

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE = 1000
READ_CHUNK = 1 << 16
# The socket is rw for its owner and group, nothing for others.
SOCKET_UMASK = 0o117


def peer_of(sock: socket.socket) -> Caller:
    """Who is on the other end of a Unix socket, as the kernel vouches (SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return Caller(*struct.unpack("3i", creds))


def bind_socket(path: Path, group: str | None = None) -> socket.socket:
    """A listening socket at `path`, mode 0660 from its first moment.

    A stale socket file (nothing listening) is replaced; a live server's is
    never taken over, and a path that is not a socket is never removed.
    """
    gid = None
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise HiveError(f"no group named {group!r}") from None
    if path.is_symlink() or path.exists():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise HiveError(f"{path} exists and is not a socket; not replacing it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            log.info("replacing the stale socket %s", path)
            path.unlink()
        else:
            raise HiveError(f"a server is already listening on {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old = os.umask(SOCKET_UMASK)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old)
        if gid is not None:
            # Before listen(): until then every connect is refused, so the
            # group change leaves no window.
            os.chown(path, -1, gid)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise HiveError(f"cannot listen on {path}: {e.strerror or e}") from None
    return sock


class TooLong:
    """Stands for a request line over the limit, which is read and dropped."""


async def read_lines(reader: asyncio.StreamReader, limit: int) -> AsyncIterator[bytes | TooLong]:
    """Lines without their newline; a line over `limit` bytes is skipped to its end and yields TooLong."""
    buf = bytearray()
    skipping = False
    while chunk := await reader.read(READ_CHUNK):
        buf += chunk
        while (end := buf.find(b"\n")) >= 0:
            line = bytes(buf[:end])
            del buf[:end + 1]
            if skipping:
                skipping = False
            elif len(line) > limit:
                yield TooLong()
            else:
                yield line
        if len(buf) > limit:
            if not skipping:
                yield TooLong()
            skipping = True
            buf.clear()
    if buf and not skipping:
        yield bytes(buf)


class Server:
    def __init__(self, engine: Engine, path: Path, group: str | None = None, policy: Policy = OPERATOR):
        self.engine = engine
        self.path = path
        self.group = group
        self.policy = policy
        self.dispatcher = Dispatcher(engine)
        self.peers: list[Caller] = []
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task] = set()
        self._in_flight: set[asyncio.Task] = set()

    async def start(self) -> None:
        sock = bind_socket(self.path, self.group)
        self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=READ_CHUNK)
        log.info("serving %s on %s", self.engine.state.root, self.path)

    async def close(self) -> None:
        """Stop taking connections, end the streams, and wait for every request in flight."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)
        await self.dispatcher.drain()
        if self._server is not None:
            await self._server.wait_closed()
        try:
            if stat.S_ISSOCK(self.path.lstat().st_mode):
                self.path.unlink()
        except FileNotFoundError:
            pass

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = peer_of(writer.get_extra_info("socket"))
        self.peers.append(peer)
        log.info("connection from pid %d uid %d", peer.pid, peer.uid)
        try:
            async with aclosing(read_lines(reader, wire.MAX_REQUEST)) as lines:
                async for line in lines:
                    response, stream = self._answer(line, peer)
                    if stream is not None:
                        await stream(reader, writer)
                        return
                    if isinstance(response, asyncio.Task):
                        response = await asyncio.shield(response)
                    await _send(writer, response)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("connection from pid %d failed", peer.pid)
        finally:
            self._connections.discard(task)
            writer.close()

    def _answer(self, line: bytes | TooLong, peer: Caller):
        """The response to one line, or the stream it turns the connection into."""
        if isinstance(line, TooLong):
            return wire.error(f"request line over {wire.MAX_REQUEST} bytes; it was dropped"), None
        if not line.strip():
            return wire.error("empty request line"), None
        try:
            request = wire.decode(line)
        except HiveError as e:
            return wire.error(str(e)), None
        cmd = request.get("cmd") if isinstance(request, dict) else None
        if (refused := self.policy.refusal(cmd)) is not None:
            return wire.error(refused), None
        if cmd in ("subscribe", "subscribe_agent_status"):
            return None, lambda r, w: self._subscription(r, w, rows_only=cmd == "subscribe_agent_status")
        if cmd == "logs" and isinstance(request, dict) and request.get("follow") is True:
            try:
                args = check_fields(request, VERBS["logs"].fields)
            except HiveError as e:
                return wire.error(str(e)), None
            return None, lambda r, w: self._follow(r, w, args["name"], args.get("lines") or 200)
        # Its own task, shielded: a client that hangs up does not cut it short.
        task = asyncio.create_task(self.dispatcher.handle(request, peer))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return task, None

    async def _subscription(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            rows_only: bool) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SUBSCRIBER_QUEUE)
        dropped = 0

        def put(message: dict[str, Any]) -> None:
            nonlocal dropped
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                dropped += 1

        def listener(item: object) -> None:
            if rows_only and not isinstance(item, AgentStatus):
                return
            message = wire.push(item)
            if message is not None:
                loop.call_soon_threadsafe(put, message)

        unsubscribe = self.engine.subscribe(listener)
        gone = asyncio.create_task(_until_eof(reader))
        try:
            await _send(writer, wire.ok())
            while not gone.done():
                getter = asyncio.create_task(queue.get())
                await asyncio.wait({getter, gone}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    break
                if dropped and not rows_only:
                    lost, dropped = dropped, 0
                    await _send(writer, wire.ok(**Lagged(lost).to_wire()))
                await _send(writer, getter.result())
        finally:
            unsubscribe()
            gone.cancel()

    async def _follow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      name: str, lines: int) -> None:
        try:
            argv = await asyncio.to_thread(self.engine.log_argv, name, lines, True)
        except HiveError as e:
            await _send(writer, wire.error(str(e)))
            return
        await _send(writer, wire.ok())
        gone = asyncio.create_task(_until_eof(reader))
        try:
            async with aclosing(follow_command(argv)) as followed:
                async for line in followed:
                    if gone.done():
                        break
                    await _send(writer, wire.ok(line=line))
        finally:
            gone.cancel()


async def _send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    writer.write(wire.encode(message))
    await writer.drain()


async def _until_eof(reader: asyncio.StreamReader) -> None:
    """Returns when the client hangs up; what it sends on a stream is ignored."""
    while await reader.read(READ_CHUNK):
        pass


async def serve(engine: Engine, path: Path, group: str | None = None,
                stop: asyncio.Event | None = None,
                manager_path: Path | None = None, manager_group: str | None = None) -> None:
    """Serve until `stop` is set (or SIGTERM/SIGINT arrive), then shut down cleanly.

    With `manager_path`, the manager's socket too, offering the manager's
    verbs only (policy.MANAGER).
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (RuntimeError, ValueError):
            pass  # not the main thread: the caller sets `stop`
    servers = [Server(engine, path, group)]
    if manager_path is not None:
        # Listening before the admin socket is, so a client that finds the
        # admin socket up finds the manager's too.
        servers.insert(0, Server(engine, manager_path, manager_group, MANAGER))
    started: list[Server] = []
    try:
        for server in servers:
            await server.start()
            started.append(server)
        await stop.wait()
        log.info("shutting down: waiting for the work in flight")
    finally:
        await asyncio.gather(*(server.close() for server in started))


def check_socket_path(path: Path) -> Path:
    """An absolute socket path short enough for AF_UNIX (108 bytes with its NUL)."""
    path = path.absolute()
    if len(os.fsencode(path)) > 107:
        raise HiveError(f"socket path {path} is over 107 bytes, too long for a Unix socket")
    if not path.parent.is_dir():
        raise HiveError(f"socket folder {path.parent} does not exist")
    return path
