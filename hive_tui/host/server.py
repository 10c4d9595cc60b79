"""The host admin socket: an engine served as JSON lines on a Unix socket.

Each connection reads one request line at a time and answers it; the verbs
are the dispatcher's. Three requests turn a connection into a stream until
the client goes away: `subscribe` (everything the engine pushes),
`subscribe_agent_status` (hyperhive's: status rows only) and `logs` with
`follow`.

The engine is never held up by a client, and no client can exhaust the
server: what waits for slow subscribers is bounded (see fanout.py); a log
follower ends when its client goes; connections are capped below the file
descriptor limit, leaving descriptors for the engine's own work (builds, git,
the database), and one over the cap is refused with an error line. A request
in flight runs to its end even if its client hangs up, and shutdown waits
for every one of them.
"""

from __future__ import annotations

import asyncio
import errno
import grp
import logging
import os
import resource
import signal
import socket
import stat
import struct
from collections.abc import AsyncGenerator, Coroutine
from contextlib import aclosing
from pathlib import Path
from typing import Any

from .. import wire
from ..errors import HiveError
from ..verbs import VERBS, check_fields
from .dispatch import Caller, Dispatcher
from .engine import Engine
from .policy import MANAGER, OPERATOR, Policy

log = logging.getLogger(__name__)

READ_CHUNK = 1 << 16
# The kernel trims it to net.core.somaxconn; 128 turned clients away when a
# few hundred connected at once.
LISTEN_BACKLOG = 4096
MAX_CONNECTIONS = 4000
# Descriptors the connections never take: the engine's own work (builds and
# their pipes, git, the database, the meta flake) needs them.
RESERVED_FDS = 256
# A connection's socket, and a followed log's file or a log command's pipe.
FDS_PER_CONNECTION = 3
# Out of descriptors, accept waits this long at first, doubling up to the
# most, or until a connection ends.
ACCEPT_BACKOFF = (0.05, 2.0)
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
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
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise HiveError(f"cannot listen on {path}: {e.strerror or e}") from None
    return sock


class TooLong:
    """Stands for a request line over the limit, which is read and dropped."""


async def read_lines(reader: asyncio.StreamReader, limit: int) -> AsyncGenerator[bytes | TooLong, None]:
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


def connection_cap(max_connections: int) -> int:
    """How many connections fit beside the descriptors the engine keeps for itself."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(0, min(max_connections, (soft - RESERVED_FDS) // FDS_PER_CONNECTION))


def raise_fd_limit(max_connections: int) -> None:
    """Lift the soft descriptor limit toward what the cap needs, as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = RESERVED_FDS + max_connections * FDS_PER_CONNECTION
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard))
    cap = connection_cap(max_connections)
    if cap < max_connections:
        log.warning("the descriptor limit allows %d connections, not %d", cap, max_connections)


class Server:
    def __init__(self, engine: Engine, path: Path, group: str | None = None,
                 policy: Policy = OPERATOR, max_connections: int = MAX_CONNECTIONS):
        self.engine = engine
        self.path = path
        self.group = group
        self.policy = policy
        self.max_connections = max_connections
        self.dispatcher = Dispatcher(engine)
        # Who is connected now; a connection's entry goes with it.
        self.peers: dict[asyncio.Task, Caller] = {}
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task | None = None
        self._connections: set[asyncio.Task] = set()
        self._in_flight: set[asyncio.Task] = set()
        self._connection_ended = asyncio.Event()

    async def start(self) -> None:
        raise_fd_limit(self.max_connections)
        self._listener = bind_socket(self.path, self.group)
        self._accepting = asyncio.create_task(self._accept(self._listener))
        log.info("serving %s on %s", self.engine.state.root, self.path)

    async def close(self) -> None:
        """Stop taking connections, end the streams, and wait for every request in flight."""
        if self._accepting is not None:
            self._accepting.cancel()
            await asyncio.gather(self._accepting, return_exceptions=True)
        if self._listener is not None:
            self._listener.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        while self._in_flight:
            await asyncio.gather(*list(self._in_flight), return_exceptions=True)
        await self.dispatcher.close()
        try:
            if stat.S_ISSOCK(self.path.lstat().st_mode):
                self.path.unlink()
        except FileNotFoundError:
            pass

    async def _accept(self, listener: socket.socket) -> None:
        """Take connections until cancelled; out of descriptors, say so once and back off."""
        loop = asyncio.get_running_loop()
        backoff = ACCEPT_BACKOFF[0]
        short = False
        while True:
            try:
                conn, _ = await loop.sock_accept(listener)
            except OSError as e:
                if listener.fileno() < 0:
                    return
                if e.errno not in _OUT_OF_RESOURCES:
                    log.warning("accept failed: %s", e)
                    continue
                if not short:
                    log.warning("out of file descriptors (%s): new connections wait until some are free", e.strerror)
                    short = True
                self._connection_ended.clear()
                try:
                    await asyncio.wait_for(self._connection_ended.wait(), backoff)
                except TimeoutError:
                    pass
                backoff = min(backoff * 2, ACCEPT_BACKOFF[1])
                continue
            if short:
                log.info("accepting connections again")
                short, backoff = False, ACCEPT_BACKOFF[0]
            cap = connection_cap(self.max_connections)
            if len(self._connections) >= cap:
                _refuse(conn, f"the server is at its limit of {cap} connections; try again later")
                continue
            task = asyncio.create_task(self._connection(conn))
            # Counted from now, not from when the task first runs.
            self._connections.add(task)
            # sock_accept does not yield while connections are queued: let the
            # ones taken run, rather than take the whole queue first.
            await asyncio.sleep(0)

    async def _connection(self, conn: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(sock=conn, limit=READ_CHUNK)
        except BaseException:
            conn.close()
            self._ended(asyncio.current_task())
            raise
        await self._serve(reader, writer)

    def _ended(self, task: asyncio.Task | None) -> None:
        if task is not None:
            self._connections.discard(task)
            self.peers.pop(task, None)
        self._connection_ended.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            peer = peer_of(writer.get_extra_info("socket"))
        except OSError:
            self._ended(task)
            writer.close()
            return
        self.peers[task] = peer
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
            self._ended(task)
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
            return None, lambda r, w: self._follow(r, w, args["name"], args.get("lines"))
        # Its own task, shielded: a client that hangs up does not cut it short.
        task = asyncio.create_task(self.dispatcher.handle(request, peer))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return task, None

    async def _subscription(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            rows_only: bool) -> None:
        async with aclosing(self.dispatcher.subscribe(rows_only)) as lines:
            writer.write(await anext(lines))
            await writer.drain()
            # What waits for this client waits in the fan-out, where it is counted:
            # the transport holds no more than the line being sent.
            writer.transport.set_write_buffer_limits(high=0)

            async def pump() -> None:
                async for line in lines:
                    writer.write(line)
                    await writer.drain()
                # The stream ends only when this client was dropped for lagging
                # (its last line said so): close once that is sent.
                writer.close()
                await writer.wait_closed()

            await _while_connected(reader, pump())

    async def _follow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      name: str, lines: int | None) -> None:
        async with aclosing(self.dispatcher.follow_logs(name, lines)) as messages:
            first = await anext(messages)
            await _send(writer, first)
            if not first["ok"]:
                return

            async def pump() -> None:
                async for message in messages:
                    await _send(writer, message)

            await _while_connected(reader, pump())


def _refuse(conn: socket.socket, message: str) -> None:
    """One error line, then close: the connection is not served."""
    try:
        # What the client already sent is read first, so the close is a clean end, not a reset.
        while conn.recv(READ_CHUNK):
            pass
    except OSError:
        pass
    try:
        conn.send(wire.encode(wire.error(message)))
    except OSError:
        pass
    conn.close()


async def _send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    writer.write(wire.encode(message))
    await writer.drain()


async def _until_eof(reader: asyncio.StreamReader) -> None:
    """Returns when the client hangs up; what it sends on a stream is ignored."""
    while await reader.read(READ_CHUNK):
        pass


async def _while_connected(reader: asyncio.StreamReader, work: Coroutine[Any, Any, None]) -> None:
    """Run `work` until it ends or the client hangs up, whichever comes first.

    Whatever `work` holds (a log command, a file) is let go before this
    returns: a client that goes takes its stream with it at once, not at the
    stream's next line.
    """
    gone = asyncio.create_task(_until_eof(reader))
    task = asyncio.create_task(work)
    try:
        await asyncio.wait({gone, task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        task.cancel()
        await asyncio.gather(gone, task, return_exceptions=True)


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
    # Only on a clean shutdown: whoever reads the log knows the work in flight ended.
    log.info("stopped")


def check_socket_path(path: Path) -> Path:
    """An absolute socket path short enough for AF_UNIX (108 bytes with its NUL)."""
    path = path.absolute()
    if len(os.fsencode(path)) > 107:
        raise HiveError(f"socket path {path} is over 107 bytes, too long for a Unix socket")
    if not path.parent.is_dir():
        raise HiveError(f"socket folder {path.parent} does not exist")
    return path
