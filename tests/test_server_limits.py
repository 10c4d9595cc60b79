"""What clients cannot exhaust: the server's memory, its file descriptors,
its listen queue, its child processes. Each attack runs against a real
`hive-tui serve` (or a Server in this process where its own state is the
outcome), and each asserts what is left afterwards: RSS, descriptors, the
process table, the answers clients get."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import resource
import signal
import socket
import threading
from pathlib import Path


from hive_tui import wire
from hive_tui.client.stream import UnixClient
from hive_tui.host.stateroot import StateRoot
from hive_tui.host.server import Server

from .helpers import Gate, wait_for
from .serving import raw_connection, run_async


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def children(pid: int) -> list[str]:
    """The commands of `pid`'s live child processes."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != b"Z":
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace").strip())
    return found


async def toggle(sock: Path, times: int) -> list[str]:
    c = UnixClient(str(sock))
    for i in range(times):
        await c.set_paused("beta", i % 2 == 0)
    agents = await c.agents()
    await c.close()
    return agents


def exchange(s: socket.socket, line: bytes, reader) -> dict:
    s.sendall(line + b"\n")
    return json.loads(reader.readline())


def read_to_eof(s: socket.socket) -> list[dict]:
    s.settimeout(60)
    data = bytearray()
    while chunk := s.recv(1 << 16):
        data += chunk
    return [json.loads(line) for line in bytes(data).splitlines()]


def open_later(gate: Gate) -> threading.Thread:
    """Gate.open in a thread: it returns once the gated build reads the gate."""
    opener = threading.Thread(target=gate.open, args=("ok",), daemon=True)
    opener.start()
    return opener


# -- memory


def test_subscribers_that_never_read_hold_bounded_memory_and_are_told_they_lagged(served):
    pid = served.proc.pid
    assert run_async(toggle(served.sock, 50)) == ["alpha", "beta"]
    idle = rss_mb(pid)
    stuck = []
    for _ in range(150):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(served.sock))
        s.sendall(b'{"cmd": "subscribe"}\n')
        stuck.append(s)
    try:
        assert run_async(toggle(served.sock, 1500)) == ["alpha", "beta"]
        grown = rss_mb(pid) - idle
        assert grown < 40, f"the server grew by {grown:.0f} MB for 150 subscribers that never read"
        # Each was told what it lost, then closed; the rest of what it was sent still reads whole.
        for s in stuck:
            lines = read_to_eof(s)
            assert lines[0] == wire.ok()
            assert set(lines[-1]) == {"version", "ok", "lagged"} and lines[-1]["lagged"] > 0
            assert all("agent_statuses" in line for line in lines[1:-1])
    finally:
        for s in stuck:
            s.close()
    assert run_async(toggle(served.sock, 2)) == ["alpha", "beta"]


def test_connections_that_come_and_go_leave_no_record_behind(engine, tmp_path):
    sock = tmp_path / "host.sock"

    async def scenario():
        server = Server(engine, sock)
        await server.start()
        try:
            for _ in range(2000):
                reader, writer = await asyncio.open_unix_connection(str(sock))
                writer.write(b'{"cmd": "whoami"}\n')
                assert (await reader.readline()).startswith(b'{"version":1,"ok":true')
                writer.close()
                await writer.wait_closed()
            held = [await asyncio.open_unix_connection(str(sock)) for _ in range(2)]
            for reader, writer in held:
                writer.write(b'{"cmd": "whoami"}\n')
                await reader.readline()
            live = len(server.peers)
            for _, writer in held:
                writer.close()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while server.peers and loop.time() < deadline:
                await asyncio.sleep(0.01)
            return live, len(server.peers)
        finally:
            await server.close()

    assert run_async(scenario()) == (2, 0)


# -- followers


def test_a_follower_ends_with_its_client_and_runs_no_child(served):
    pid = served.proc.pid
    log = served.root / "containers" / "beta" / "log"
    wait_for(lambda: log.exists() and b"beta started" in log.read_bytes(), what="beta's first line")
    assert run_async(toggle(served.sock, 2)) == ["alpha", "beta"]
    baseline = fds(pid)
    followers = []
    for _ in range(5):
        s = raw_connection(served.sock)
        s.sendall(b'{"cmd": "logs", "name": "beta", "lines": 5, "follow": true}\n')
        reader = s.makefile("rb")
        assert json.loads(reader.readline()) == wire.ok()
        assert "beta started" in json.loads(reader.readline())["line"]
        followers.append((s, reader))
    with open(log, "ab") as f:
        f.write(b"a line written while followed\n")
    for _, reader in followers:
        assert json.loads(reader.readline()) == wire.ok(line="a line written while followed")
    assert children(pid) == [], "a follower runs a process of its own"
    for s, reader in followers:
        reader.close()
        s.close()
    # Nothing more is written to the log: each follower must end because its client went.
    wait_for(lambda: fds(pid) <= baseline, timeout=30, what="the followers' descriptors to be closed")
    assert children(pid) == []


# -- descriptors


def test_idle_connections_are_capped_and_leave_descriptors_for_a_deploy(served):
    pid = served.proc.pid
    limit = 600
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))
    gate = Gate(StateRoot.at(served.root).agent_state("alpha"))

    async def start_deploy():
        c = UnixClient(str(served.sock))
        approval = await c.propose("alpha", "main", "a deploy in flight")
        await c.request({"cmd": "approve", "id": approval.id})
        await c.close()
        return approval.id

    from .test_server import propose_on

    propose_on(served.root, "alpha", {"notes.txt": b"in flight\n"})
    id = run_async(start_deploy())
    idle, refused = [], []
    opener = threading.Thread()
    try:
        for _ in range(limit):
            s = raw_connection(served.sock)
            try:
                s.sendall(b'{"cmd": "whoami"}\n')
            except BrokenPipeError:
                pass  # refused before the request went: its answer is waiting all the same
            answer = json.loads(s.makefile("rb").readline())
            (idle if answer["ok"] else refused).append((s, answer))
        assert idle and refused, "neither the cap nor the connections showed"
        assert fds(pid) < limit
        for s, answer in refused:
            assert "connections" in answer["error"] and "try again" in answer["error"]
            try:
                rest = s.recv(1)
            except ConnectionResetError:
                rest = b""
            assert rest == b"", "a refused connection is closed after its one line"
        opener = open_later(gate)
        # The deploy that was in flight when the connections piled up finishes.
        s, _ = idle[0]
        reader = s.makefile("rb")
        wait_for(lambda: exchange(s, json.dumps({"cmd": "approval", "id": id}).encode(), reader)
                 ["approval"]["terminal_tag"], timeout=60, what="the deploy to end")
        approval = exchange(s, json.dumps({"cmd": "approval", "id": id}).encode(), reader)["approval"]
        assert approval["terminal_tag"] == f"deployed/{id}", approval
    finally:
        for s, _ in idle + refused:
            s.close()
        if not opener.is_alive() and opener.ident is None:
            open_later(gate)  # for the build that the hive's next engine runs again
    log = served.log.read_text()
    assert "Too many open files" not in log and "out of system resource" not in log


def test_two_hundred_clients_at_once_all_get_in(served):
    """The server is stopped while they connect, so every one waits in the listen queue."""
    served.proc.send_signal(signal.SIGSTOP)
    sockets, refused = [], 0
    try:
        for _ in range(200):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(str(served.sock))
            except BlockingIOError:
                refused += 1
                s.close()
                continue
            sockets.append(s)
    finally:
        served.proc.send_signal(signal.SIGCONT)
    try:
        assert refused == 0, f"{refused} of 200 clients found the listen queue full"
        for s in sockets:
            s.setblocking(True)
            s.settimeout(60)
            s.sendall(b'{"cmd": "whoami"}\n')
        for s in sockets:
            assert json.loads(s.makefile("rb").readline())["ok"]
    finally:
        for s in sockets:
            s.close()


def test_accept_backs_off_when_descriptors_run_out(engine, tmp_path, caplog):
    """Out of descriptors, the server says so once and waits; once they are back, the client waiting is served."""
    sock = tmp_path / "host.sock"
    caplog.set_level(logging.INFO)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    async def scenario():
        server = Server(engine, sock)
        await server.start()
        filler: list[int] = []
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (fds(os.getpid()) + 64, hard))
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            while True:
                try:
                    filler.append(os.open(os.devnull, os.O_RDONLY))
                except OSError as e:
                    assert e.errno == errno.EMFILE
                    break
            client.setblocking(False)
            client.connect(str(sock))  # waits in the listen queue: the server cannot accept it
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while not any("descriptors" in r.getMessage() for r in caplog.records) and loop.time() < deadline:
                await asyncio.sleep(0.01)
            for fd in filler:
                os.close(fd)
            filler.clear()
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
            reader, writer = await asyncio.open_unix_connection(sock=client)
            writer.write(b'{"cmd": "whoami"}\n')
            answer = json.loads(await reader.readline())
            writer.close()
            return answer
        finally:
            for fd in filler:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
            await server.close()

    answer = run_async(scenario())
    assert answer["ok"] and answer["pid"] == os.getpid()
    warnings = [r.getMessage() for r in caplog.records if "descriptors" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
