"""The supervisor of a hive's local agents: `python supervisor.py ROOT`, one
process per state root, and the client the local runtime talks to it with.

Why one process per hive. An agent must outlive the engine that started it
(the engine restarts, or is killed mid-deploy and recovers), so something
other than the engine must be its parent: something that reaps it and
records how it ended. One Python interpreter per agent did that at about
12 MB resident each; one per hive holds every agent for the price of one
interpreter and a few hundred bytes a row. Nothing smaller is at hand: a
compiled helper would need a toolchain this package does not ship, and a
shell wrapper per agent still costs a process per agent and cannot write a
record safely. So the supervisor stays Python, run by its file path under
`-I -S`: it imports nothing but the standard library, works under any
interpreter whether or not hive_tui is on its path, and loads no site
packages it does not need.

What it guarantees, as the per-agent supervisor did:
- each agent runs in a session and process group of its own, led by the
  agent's process, so a stop signals the whole group and waits for it;
- the agent's output goes to its log, a file the engine opens and hands
  over (SCM_RIGHTS), through a pipe this process reads: each line is
  written as `<time> <text>`, the time (RFC 3339, UTC, milliseconds) being
  when this process wrote it, whatever the text says (see "The log" below);
- CONTAINER/run.json names the agent (pid, start time) as soon as it runs,
  written here before the engine hears of it: an engine killed at any point
  leaves no agent that no record names;
- when the agent exits, its last line in the log says how, and
  CONTAINER/exit.json records the code (negative for a signal).

The supervisor works from "/" (in no agent's folder), in a session of its
own, and listens on ROOT/hive.supervisor.sock (mode 0600). It exits once no agent
runs and no request is open; ROOT/hive.supervisor.lock orders that exit against
an engine that is about to connect or to launch a new one, so two never
serve the same root. If it is killed, its agents run on, orphaned but still
named by their run.json: an engine can still stop them (by their group), and
their exit is then unrecorded, which reads as a failure unless stopped. Their
output then has no reader: an agent that writes after that gets SIGPIPE (or
EPIPE, if it ignores the signal), as any writer to a closed pipe does.

The log. An agent's output is read from its pipe a chunk at a time, never
waiting on one agent: a line is written as it comes, the stamp first, the
rest of a line that arrives later after it, so nothing of a line is held
here (a few hundred bytes an agent, whatever it prints). A line over
LINE_MAX bytes is cut, with a note of ours. When the log reaches `log_max`
bytes at the end of a line it is rotated: CONTAINER/log becomes log.1 (the
one kept file; an older one is dropped) and a new log is made. Lines are
numbered from the log's first line ever: CONTAINER/log.base records the
number of one file's first line by its inode, written before each rotation,
so whoever reads the log (the engine's index, logindex.py) numbers both files
the same way across rotations and restarts.

Requests are one JSON line per connection, answered with one JSON line:
    {"op": "start", "dir", "cwd", "argv", "env", "log_max"} with the log's descriptor
        -> {"pid": N, "ticks": T} or {"pid": null, "error": "..."}
    {"op": "wait", "pid": N, "ticks": T}
        -> {} once that agent's exit is recorded; at once if no agent of ours
           has that pid and start time (a pid can be reused)
"""

from __future__ import annotations

import fcntl
import json
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import time

SOCKET = "hive.supervisor.sock"
LOCK = "hive.supervisor.lock"
LOG = "hive.supervisor.log"
REQUEST_LIMIT = 1 << 20
REQUEST_TIMEOUT = 10.0
# A log line's bytes after the stamp, beyond which the rest of the line is dropped.
LINE_MAX = 64 << 10
# What one agent's pipe gives per turn: the next ready agent is served after it.
READ_SIZE = 1 << 16
# The log's size at which it is rotated, unless the start request says otherwise.
LOG_MAX = 16 << 20
# The smallest rotation size a request may ask for.
LOG_MAX_MIN = 4096
KEPT = "log.1"
BASE = "log.base"
# An exiting agent's pipe is read up to this much more before its exit is
# written: a child it left behind cannot keep the supervisor there.
DRAIN_LIMIT = 1 << 20
# How often an idle supervisor that could not take the lock looks again; the
# lock is only held by an engine that is connecting, whose request wakes it anyway.
IDLE_RECHECK = 5.0


def describe_exit(code: int) -> str:
    """A subprocess return code in words: negative codes are signals."""
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"code {code}"


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, zombie or not."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat[stat.rindex(b")") + 2:].split()[19])


def _write_record(folder: str, name: str, record: dict) -> None:
    """Replace folder/name with `record`, atomically; a link planted in the
    temporary file's place is replaced, never written through."""
    tmp = os.path.join(folder, f"{name}.tmp")
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with open(fd, "w") as f:
        f.write(json.dumps(record))
    os.replace(tmp, os.path.join(folder, name))


def _write_record_at(folder_fd: int, name: str, record: dict) -> None:
    """_write_record, in the folder open at `folder_fd`."""
    tmp = f"{name}.tmp"
    try:
        os.unlink(tmp, dir_fd=folder_fd)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=folder_fd)
    with open(fd, "w") as f:
        f.write(json.dumps(record))
    os.replace(tmp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)


# The supervisor process imports as little as it can (no pathlib, contextlib
# or selectors): every module is resident memory for as long as agents run.

class _Address:
    """A name for the socket in `root` that fits a Unix socket address (108
    bytes): its path, or the same file reached through a descriptor of
    `root` when the path is too long."""

    def __init__(self, root: str):
        self.root, self.folder = root, -1

    def __enter__(self) -> str:
        path = os.path.join(self.root, SOCKET)
        if len(os.fsencode(path)) < 100:
            return path
        self.folder = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        return f"/proc/self/fd/{self.folder}/{SOCKET}"

    def __exit__(self, *exc) -> None:
        if self.folder != -1:
            os.close(self.folder)


class _Lock:
    """ROOT's supervisor lock, held for a `with` block; BlockingIOError at
    entry when not `blocking` and someone else holds it."""

    def __init__(self, root: str, blocking: bool = True):
        self.root, self.blocking, self.fd = root, blocking, -1

    def __enter__(self) -> None:
        self.fd = os.open(os.path.join(self.root, LOCK), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                          0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if self.blocking else fcntl.LOCK_NB))
        except BaseException:
            os.close(self.fd)
            raise

    def __exit__(self, *exc) -> None:
        os.close(self.fd)


# -- the client, in the engine -------------------------------------------------

class SupervisorError(Exception):
    pass


class HiveSupervisor:
    """The engine's side: asks the hive's supervisor to start an agent or to
    say when one's exit is recorded, launching the supervisor when none runs."""

    def __init__(self, root: os.PathLike | str, python: str = sys.executable, timeout: float = 30.0):
        self.root = os.fspath(root)
        self.python = python
        self.timeout = timeout

    def start(self, folder: os.PathLike | str, argv: list[str], cwd: os.PathLike | str, env: dict[str, str],
              log_fd: int, log_max: int = LOG_MAX) -> tuple[int, int | None] | None:
        """Run `argv` as an agent whose records go in `folder` and output to
        `log_fd` (folder/log, rotated at `log_max` bytes); its pid and start
        ticks, or None when it could not be started (which its log and
        exit.json then say)."""
        request = {"op": "start", "dir": os.fspath(folder), "cwd": os.fspath(cwd), "argv": argv, "env": env,
                   "log_max": log_max}
        reply = self._ask(request, log_fd, launch=True)
        pid = reply.get("pid") if reply is not None else None
        if reply is None or (pid is not None and type(pid) is not int):
            raise SupervisorError(f"the supervisor did not start the agent: {reply!r}")
        ticks = reply.get("ticks")
        return None if pid is None else (pid, ticks if type(ticks) is int else None)

    def wait_recorded(self, pid: int, ticks: int | None) -> bool:
        """Wait until the supervisor has recorded the exit of the agent `pid`
        started at `ticks` (it must be on its way out). Returns at once when
        no supervisor runs or that is none of its agents; False when the
        supervisor could not be asked."""
        try:
            self._ask({"op": "wait", "pid": pid, "ticks": ticks}, None, launch=False)
        except (OSError, ValueError, SupervisorError):
            return False
        return True

    def _ask(self, request: dict, fd: int | None, launch: bool) -> dict | None:
        sock = self._connect(launch)
        if sock is None:
            return None
        with sock:
            sock.settimeout(self.timeout)
            payload = json.dumps(request).encode() + b"\n"
            if fd is None:
                sock.sendall(payload)
            else:
                # The descriptor rides on the first bytes; the rest follows if the first send was short.
                sent = socket.send_fds(sock, [payload], [fd])
                if sent < len(payload):
                    sock.sendall(payload[sent:])
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    raise SupervisorError(f"the supervisor of {self.root} hung up without an answer")
                answer += chunk
        reply = json.loads(answer)
        return reply if isinstance(reply, dict) else {}

    def _connect(self, launch: bool) -> socket.socket | None:
        # Under the lock, a supervisor found listening cannot be on its way out,
        # and only one caller launches a new one.
        with _Lock(self.root):
            sock = _try_connect(self.root)
            if sock is not None or not launch:
                return sock
            self._launch()
            sock = _try_connect(self.root)
            if sock is None:
                raise SupervisorError(f"the supervisor of {self.root} started but does not listen")
            return sock

    def _launch(self) -> None:
        """Start a supervisor; it returns once the new one listens."""
        with open(os.path.join(self.root, LOG), "ab") as log:
            done = subprocess.run([self.python, "-I", "-S", __file__, self.root], cwd="/",
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                  timeout=self.timeout)
        if done.returncode != 0:
            raise SupervisorError(f"the supervisor of {self.root} could not start (code {done.returncode}); "
                                  f"see {os.path.join(self.root, LOG)}")


def _try_connect(root: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        with _Address(root) as address:
            sock.connect(address)
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    except BaseException:
        sock.close()
        raise
    return sock


# -- the log, shared with the engine's reader (logindex.py) ----------------------

_OPEN_READ = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC


def stamp(at: float) -> bytes:
    """`at` as a log line's stamp: RFC 3339, UTC, to the millisecond (24 bytes)."""
    ms = int(at * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)).encode() + b".%03dZ" % (ms % 1000)


def read_base(folder_fd: int) -> tuple[int, int] | None:
    """log.base as (inode, number of that file's first line); None when it is
    missing or not what this module writes (the agent may have written it)."""
    try:
        fd = os.open(BASE, _OPEN_READ, dir_fd=folder_fd)
    except OSError:
        return None
    try:
        if not _is_regular(fd):
            return None
        record = json.loads(os.read(fd, 256))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    if not isinstance(record, dict):
        return None
    ino, first = record.get("ino"), record.get("first")
    if type(ino) is not int or type(first) is not int or not 0 <= first < 2**53:
        return None
    return ino, first


def count_lines(fd: int, limit: int | None = None) -> int:
    """The lines in the file at `fd`: its newlines, and an unfinished last
    line; in its first `limit` bytes only, when given."""
    count, pos, last = 0, 0, b"\n"
    while chunk := os.pread(fd, 1 << 20 if limit is None else min(1 << 20, limit - pos), pos):
        count += chunk.count(b"\n")
        pos += len(chunk)
        last = chunk[-1:]
    return count + (last != b"\n")


def open_kept(folder_fd: int, name: str) -> int | None:
    """One of the log's files, read-only; None when it is missing or not a regular file."""
    try:
        fd = os.open(name, _OPEN_READ, dir_fd=folder_fd)
    except OSError:
        return None
    if not _is_regular(fd):
        os.close(fd)
        return None
    return fd


def _is_regular(fd: int) -> bool:
    return (os.fstat(fd).st_mode & 0o170000) == 0o100000


def first_of_log(folder_fd: int, log_ino: int, limit: int | None = None) -> int:
    """The number of the first line of the file named log (inode `log_ino`);
    log.1's lines are counted in its first `limit` bytes only, when given."""
    base = read_base(folder_fd)
    if base is not None and base[0] == log_ino:
        return base[1]
    kept = open_kept(folder_fd, KEPT)
    if kept is None:
        return base[1] if base is not None else 0
    try:
        first = base[1] if base is not None and os.fstat(kept).st_ino == base[0] else 0
        return first + count_lines(kept, limit)
    finally:
        os.close(kept)


# -- the supervisor process ------------------------------------------------------

_CUT = b" [hive-tui: the rest of this line was cut at %d bytes]" % LINE_MAX


class _Output:
    """One agent's output: the pipe it writes to, and its log, stamped line by line."""

    __slots__ = ("pipe", "log", "folder", "log_max", "size", "mid", "length")

    def __init__(self, pipe: int, log: int, folder: int, log_max: int):
        self.pipe, self.log, self.folder, self.log_max = pipe, log, folder, log_max
        self.size = os.fstat(log).st_size
        # In the middle of a line (its stamp written), and how long that line is so far.
        self.mid, self.length = False, 0

    def take(self, data: bytes) -> None:
        """Write what the agent wrote; a line left open waits for its end."""
        now = stamp(time.time())
        out = bytearray()
        whole = 0  # how much of `out` ends with a line's end: a rotation may follow it
        pos = 0
        while pos < len(data):
            newline = data.find(b"\n", pos)
            end = len(data) if newline < 0 else newline
            if not self.mid:
                out += now + b" "
                self.mid, self.length = True, 0
            if self.length + (end - pos) <= LINE_MAX:
                out += data[pos:end]
            elif self.length <= LINE_MAX:
                # Where the line goes over the limit: what fits, then our note; the rest is dropped.
                out += data[pos:pos + LINE_MAX - self.length] + _CUT
            self.length += end - pos
            if newline < 0:
                break
            out += b"\n"
            self.mid = False
            whole = len(out)
            pos = newline + 1
            if self.size + whole >= self.log_max:
                # Rotated at this line's end, not at the end of what was read.
                self._write(out, True)
                out.clear()
                whole = 0
        if whole:
            self._write(memoryview(out)[:whole], True)
        if whole < len(out):
            self._write(memoryview(out)[whole:], False)

    def say(self, line: str) -> None:
        """A line of ours, on a line of its own."""
        self._write((b"\n" if self.mid else b"") + stamp(time.time()) + b" " + line.encode() + b"\n", True)
        self.mid = False

    def _write(self, data: bytes | bytearray | memoryview, line_end: bool) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.log, view):]
        except OSError:
            return  # a full disk loses lines, never the supervisor
        finally:
            self.size += len(data) - len(view)
        if line_end and self.size >= self.log_max:
            self._rotate()

    def _rotate(self) -> None:
        """log -> log.1 and a new log, numbering kept (see "The log" above)."""
        try:
            ino = os.fstat(self.log).st_ino
            # log.1 is what this process rotated, near log_max bytes: one that
            # grew far past that was not written here, and is not read to its end.
            first = first_of_log(self.folder, ino, max(4 * self.log_max, 64 << 20))
            _write_record_at(self.folder, BASE, {"ino": ino, "first": first})
            os.rename("log", KEPT, src_dir_fd=self.folder, dst_dir_fd=self.folder)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                fresh = os.open("log", flags, 0o600, dir_fd=self.folder)
            except FileExistsError:
                # Something took the name in between: it is not ours to write through.
                os.unlink("log", dir_fd=self.folder)
                fresh = os.open("log", flags, 0o600, dir_fd=self.folder)
        except OSError as e:
            print(f"supervisor: rotating a log: {e!r}", file=sys.stderr, flush=True)
            self.size = 0  # tried again after another log_max bytes
            return
        os.close(self.log)
        self.log, self.size = fresh, 0

    def close(self) -> None:
        for fd in (self.pipe, self.log, self.folder):
            if fd != -1:
                os.close(fd)
        self.pipe = self.log = self.folder = -1


class _Agent:
    __slots__ = ("proc", "ticks", "folder", "output", "program")

    def __init__(self, proc: subprocess.Popen, ticks: int | None, folder: str, output: _Output, program: str):
        self.proc, self.ticks, self.folder, self.output, self.program = proc, ticks, folder, output, program


class _Supervisor:
    def __init__(self, root: str, listener: socket.socket):
        self.root = root
        self.listener = listener
        self.agents: dict[int, _Agent] = {}
        # Each agent's pipe, by its descriptor.
        self.pipes: dict[int, _Output] = {}
        self.waiting: dict[int, list[socket.socket]] = {}
        self.poll = select.poll()
        self.poll.register(listener, select.POLLIN)
        # SIGCHLD wakes the loop through this pair; the handler itself does nothing.
        self.wake, wake_write = socket.socketpair()
        self.wake.setblocking(False)
        wake_write.setblocking(False)
        self._wake_write = wake_write
        signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        self.poll.register(self.wake, select.POLLIN)

    def run(self) -> None:
        while True:
            idle = not self.agents and not self.waiting
            if idle and self._exit_if_still_idle():
                return
            for fd, _ in self.poll.poll(IDLE_RECHECK * 1000 if idle else None):
                if fd == self.listener.fileno():
                    self._accept()
                elif fd in self.pipes:
                    self._pump(self.pipes[fd])
                else:
                    try:
                        while self.wake.recv(4096):
                            pass
                    except BlockingIOError:
                        pass
            self._reap()

    def _pump(self, output: _Output) -> bool:
        """One read of an agent's pipe; False once there is nothing more to read now."""
        try:
            data = os.read(output.pipe, READ_SIZE)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            # Every writer is gone: the pipe is done with, the log stays open for the exit line.
            self.poll.unregister(output.pipe)
            del self.pipes[output.pipe]
            os.close(output.pipe)
            output.pipe = -1
            return False
        output.take(data)
        return True

    def _exit_if_still_idle(self) -> bool:
        try:
            with _Lock(self.root, blocking=False):
                # A caller that connected before the lock was ours is served first.
                self.listener.setblocking(False)
                try:
                    conn, _ = self.listener.accept()
                except BlockingIOError:
                    with _Address(self.root) as address:
                        os.unlink(address)
                    self.listener.close()
                    return True
                finally:
                    if self.listener.fileno() != -1:
                        self.listener.setblocking(True)
                self._serve(conn)
                return False
        except BlockingIOError:
            return False

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(REQUEST_TIMEOUT)
        fds: list[int] = []
        keep = False
        try:
            data = b""
            while not data.endswith(b"\n") and len(data) <= REQUEST_LIMIT:
                chunk, got, _, _ = socket.recv_fds(conn, 65536, 4, socket.MSG_CMSG_CLOEXEC)
                fds += got
                if not chunk:
                    return
                data += chunk
            request = json.loads(data)
            if request.get("op") == "start" and len(fds) == 1:
                reply = self._start(request, fds[0])
            elif request.get("op") == "wait" and type(request.get("pid")) is int:
                agent = self.agents.get(request["pid"])
                if agent is not None and agent.ticks == request.get("ticks"):
                    self.waiting.setdefault(request["pid"], []).append(conn)
                    keep = True
                    return
                reply = {}
            else:
                reply = {"error": "unknown request"}
            conn.sendall(json.dumps(reply).encode() + b"\n")
        except Exception as e:  # a bad request is answered by a hang-up, never the end of the supervisor
            print(f"supervisor: a request failed: {e!r}", file=sys.stderr, flush=True)
        finally:
            for fd in fds:
                os.close(fd)
            if not keep:
                conn.close()

    def _start(self, request: dict, log_fd: int) -> dict:
        """Start the agent; `log_fd` stays the caller's to close."""
        folder, argv = request["dir"], request["argv"]
        log_max = request.get("log_max")
        if type(log_max) is not int or log_max < LOG_MAX_MIN:
            log_max = LOG_MAX
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        output = _Output(-1, os.dup(log_fd), folder_fd, log_max)
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            proc = subprocess.Popen(argv, cwd=request["cwd"], env=request["env"], stdin=subprocess.DEVNULL,
                                    stdout=write_end, stderr=subprocess.STDOUT, start_new_session=True)
        except (OSError, ValueError, TypeError) as e:
            os.close(read_end)
            output.say(f"[hive-tui] cannot start {argv[0]!r}: {e}")
            output.close()
            _write_record(folder, "exit.json", _exit_record(127))
            return {"pid": None, "error": str(e)}
        finally:
            os.close(write_end)
        os.set_blocking(read_end, False)
        output.pipe = read_end
        self.pipes[read_end] = output
        self.poll.register(read_end, select.POLLIN)
        ticks = _start_ticks(proc.pid)
        self.agents[proc.pid] = _Agent(proc, ticks, folder, output, argv[0])
        try:
            _write_record(folder, "run.json", {"pid": proc.pid, "ticks": ticks, "argv": argv,
                                               "started_at": _now()})
        except OSError as e:
            # Unrecorded, no stop would find it: it must not outlive this start.
            os.killpg(proc.pid, signal.SIGKILL)
            return {"pid": None, "error": f"cannot record the agent: {e}"}
        return {"pid": proc.pid, "ticks": ticks}

    def _reap(self) -> None:
        for pid, agent in list(self.agents.items()):
            code = agent.proc.poll()
            if code is None:
                continue
            del self.agents[pid]
            output = agent.output
            try:
                # What it wrote before it exited comes before the line saying so.
                drained = 0
                while output.pipe != -1 and drained < DRAIN_LIMIT and self._pump(output):
                    drained += READ_SIZE
                output.say(f"[hive-tui] {agent.program} exited with {describe_exit(code)}")
                _write_record(agent.folder, "exit.json", _exit_record(code))
            except OSError as e:
                print(f"supervisor: recording the exit of {pid}: {e!r}", file=sys.stderr, flush=True)
            finally:
                if output.pipe != -1:
                    # A child it left behind writes no more to its log.
                    self.poll.unregister(output.pipe)
                    del self.pipes[output.pipe]
                output.close()
            for conn in self.waiting.pop(pid, []):
                try:
                    conn.sendall(b"{}\n")
                except OSError:
                    pass
                conn.close()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _exit_record(code: int) -> dict:
    return {"code": code, "at": _now()}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python supervisor.py ROOT", file=sys.stderr)
        return 2
    root = argv[0]
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    with _Address(root) as address:
        try:
            os.unlink(address)  # the caller holds the lock and found no one listening there
        except FileNotFoundError:
            pass
        umask = os.umask(0o177)
        try:
            listener.bind(address)
        finally:
            os.umask(umask)
    listener.listen(128)
    # Every agent holds its log open here: room for as many as the system allows.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # The caller waits for this process to exit; the supervisor is its child,
    # already listening, and outlives it in a session of its own.
    if os.fork() != 0:
        os._exit(0)
    os.setsid()
    os.chdir("/")
    try:
        _Supervisor(root, listener).run()
    except BaseException as e:
        print(f"supervisor: stopped by {e!r}", file=sys.stderr, flush=True)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
