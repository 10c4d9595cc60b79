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
  over (SCM_RIGHTS), never a path the supervisor opens in the agent's reach;
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
their exit is then unrecorded, which reads as a failure unless stopped.

Requests are one JSON line per connection, answered with one JSON line:
    {"op": "start", "dir", "cwd", "argv", "env"} with the log's descriptor
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
              log_fd: int) -> tuple[int, int | None] | None:
        """Run `argv` as an agent whose records go in `folder` and output to
        `log_fd`; its pid and start ticks, or None when it could not be
        started (which its log and exit.json then say)."""
        request = {"op": "start", "dir": os.fspath(folder), "cwd": os.fspath(cwd), "argv": argv, "env": env}
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


# -- the supervisor process ------------------------------------------------------

class _Agent:
    def __init__(self, proc: subprocess.Popen, ticks: int | None, folder: str, log_fd: int, program: str):
        self.proc, self.ticks, self.folder, self.log_fd, self.program = proc, ticks, folder, log_fd, program


class _Supervisor:
    def __init__(self, root: str, listener: socket.socket):
        self.root = root
        self.listener = listener
        self.agents: dict[int, _Agent] = {}
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
                else:
                    try:
                        while self.wake.recv(4096):
                            pass
                    except BlockingIOError:
                        pass
            self._reap()

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
        try:
            proc = subprocess.Popen(argv, cwd=request["cwd"], env=request["env"], stdin=subprocess.DEVNULL,
                                    stdout=log_fd, stderr=subprocess.STDOUT, start_new_session=True)
        except (OSError, ValueError, TypeError) as e:
            _say(log_fd, f"[hive-tui] cannot start {argv[0]!r}: {e}")
            _write_record(folder, "exit.json", _exit_record(127))
            return {"pid": None, "error": str(e)}
        ticks = _start_ticks(proc.pid)
        self.agents[proc.pid] = _Agent(proc, ticks, folder, os.dup(log_fd), argv[0])
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
            try:
                _say(agent.log_fd, f"[hive-tui] {agent.program} exited with {describe_exit(code)}")
                _write_record(agent.folder, "exit.json", _exit_record(code))
            except OSError as e:
                print(f"supervisor: recording the exit of {pid}: {e!r}", file=sys.stderr, flush=True)
            finally:
                os.close(agent.log_fd)
            for conn in self.waiting.pop(pid, []):
                try:
                    conn.sendall(b"{}\n")
                except OSError:
                    pass
                conn.close()


def _say(fd: int, line: str) -> None:
    try:
        os.write(fd, line.encode() + b"\n")
    except OSError:
        pass


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
