"""Fleet benchmarks (run by benchmarks/run.py): 20 hosts of 50 agents each,
reached over Unix sockets, two of them through a real sshd on 127.0.0.1.
Two hosts are real `hive-tui serve` processes (their agents stopped, so that
100 supervisors do not crowd the machine); the others are hosts from memory
(memhost.py), which speak the same wire.

The figures are the console's all-hosts view (fleetconsole.py), as ratios
against the single-host view on one host of 1,000 agents measured in the
same run. `first_frame` and `push_latency` here measure the many-hosts
client module alone (client/fleet.py), for a look beneath the view.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hive_tui.client.base import HiveClient
from hive_tui.client.connect import open_client
from hive_tui.client.fleet import LIVE, Fleet
from hive_tui.client.stream import UnixClient
from hive_tui.config import Host

from benchmarks import fleetconsole

HERE = Path(__file__).resolve().parent
EXE = Path(sys.executable).with_name("hive-tui")
HOSTS, AGENTS = 20, 50


class _Env:
    """What tests/sshd.py asks of pytest's monkeypatch, for a process of our own."""

    def setenv(self, name: str, value: str) -> None:
        os.environ[name] = value

    def delenv(self, name: str, raising: bool = True) -> None:
        os.environ.pop(name, None)


@dataclass
class Lab:
    """The hosts, as the fleet reaches them, and the socket behind each (for an actor that changes things)."""

    hosts: list[Host]
    sockets: dict[str, Path]
    one: Host  # a single host with all HOSTS * AGENTS agents
    dead: Host
    slow: Host


def _seed(root: Path, agents: int) -> None:
    """A hive of `agents` agents, all stopped. Run in a child process: this one never loads the engine."""
    code = ("import sys; from pathlib import Path; from hive_tui.host.engine import Engine; "
            "from hive_tui.host.template import new_agent_files\n"
            "with Engine(Path(sys.argv[1]), locker='builtin', runtime_options={'stop_grace': 2.0}) as e:\n"
            "    [e.install_agent(f'r{i:03d}', new_agent_files(f'r{i:03d}')) for i in range(int(sys.argv[2]))]\n"
            "    [e.runtime.stop(n) for n in e.runtime.containers()]\n")
    subprocess.run([sys.executable, "-c", code, str(root), str(agents)], check=True)


class Setup:
    """Starts everything the lab needs; `close` ends it all."""

    def __init__(self, agents: int = AGENTS):
        self.root = Path(tempfile.mkdtemp(prefix="hive-fleet-"))
        self.saved = dict(os.environ)
        self.procs: list[subprocess.Popen] = []
        self.sshd = None
        self.agents = agents

    def start(self) -> Lab:
        root, sockets = self.root, {}
        for i in range(2):
            _seed(root / f"real{i}", self.agents)
            sock = root / f"real{i}.sock"
            self.procs.append(subprocess.Popen(
                [str(EXE), "--state", str(root / f"real{i}"), "--locker", "builtin", "serve", "--socket", str(sock)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            sockets[f"real{i}"] = sock
        specs = []
        for i in range(HOSTS - 2):
            sockets[f"mem{i:02d}"] = root / f"mem{i:02d}.sock"
            specs += ["--socket", f"{root / f'mem{i:02d}.sock'}:{self.agents}"]
        specs += ["--socket", f"{root / 'one.sock'}:{HOSTS * self.agents}", "--socket", f"{root / 'slow.sock'}:slow"]
        mem = subprocess.Popen([sys.executable, "-m", "benchmarks.memhost", *specs], cwd=HERE.parent,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.procs.append(mem)
        assert mem.stdout is not None and mem.stdout.readline() == "ready\n"
        while not all(s.exists() for s in sockets.values()):
            time.sleep(0.05)
        sys.path.insert(0, str(HERE.parent))
        from tests.sshd import start_sshd

        self.sshd = sshd = start_sshd(root, _Env())
        sshd.trust()
        through_ssh = {"real1", "mem00"}
        hosts = [Host(name, "ssh", socket=str(sock), user=sshd.user, hostname="127.0.0.1", port=sshd.port)
                 if name in through_ssh else Host(name, "unix", socket=str(sock)) for name, sock in sockets.items()]
        return Lab(hosts, sockets, Host("one", "unix", socket=str(root / "one.sock")),
                   Host("dead", "unix", socket=str(root / "dead.sock")),
                   Host("slow", "unix", socket=str(root / "slow.sock")))

    def close(self) -> None:
        if self.sshd is not None:
            self.sshd.stop()
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.terminate()
            proc.wait(60)
        os.environ.clear()
        os.environ.update(self.saved)
        code = ("import sys; from pathlib import Path; from hive_tui.host.engine import Engine\n"
                "with Engine(Path(sys.argv[1]), locker='builtin', runtime_options={'stop_grace': 2.0}) as e:\n"
                "    [e.runtime.stop(n) for n in e.runtime.containers()]\n")
        for i in range(2):
            subprocess.run([sys.executable, "-c", code, str(self.root / f"real{i}")], check=False)
        shutil.rmtree(self.root, ignore_errors=True)


async def _opener(host: Host) -> HiveClient:
    return await open_client(host, redial_for=0)


class _Watched:
    """A fleet whose every change wakes whoever waits on a condition."""

    def __init__(self, hosts: Sequence[Host]):
        self.changed = asyncio.Event()
        self.fleet = Fleet(hosts, _opener, lambda name: self.changed.set(), timeout=60)

    async def until(self, condition, timeout: float = 300) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self.changed.clear()
                await self.changed.wait()


def _all_in(watched: _Watched, hosts: Sequence[Host], rows: int):
    links = watched.fleet.links

    def ready() -> bool:
        return (all(links[h.name].link.state == LIVE for h in hosts)
                and sum(len(links[h.name].rows) for h in hosts) >= rows)

    return ready


async def first_frame(hosts: Sequence[Host], wait_for: Sequence[Host], rows: int) -> float:
    """Seconds from starting a fleet of `hosts` to every row of `wait_for` in."""
    watched = _Watched(hosts)
    start = time.perf_counter()
    async with watched.fleet:
        await watched.until(_all_in(watched, wait_for, rows))
        return time.perf_counter() - start


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def push_latency(lab: Lab, changes: int = 100) -> tuple[float, float]:
    """p95 seconds from a change on any host to the fleet's row for it, and the process's RSS (MiB) meanwhile."""
    watched = _Watched(lab.hosts)
    actors = {name: UnixClient(str(sock)) for name, sock in lab.sockets.items()}
    latencies = []
    async with watched.fleet:
        await watched.until(_all_in(watched, lab.hosts, sum(1 for _ in lab.hosts)))
        await watched.until(lambda: all(watched.fleet.links[h.name].rows for h in lab.hosts))
        for i in range(changes):
            host = lab.hosts[i % len(lab.hosts)]
            rows = watched.fleet.links[host.name].rows
            agent = sorted(rows)[(i * 7) % len(rows)]
            paused = not rows[agent].paused
            start = time.perf_counter()
            await actors[host.name].set_paused(agent, paused)
            await watched.until(lambda: watched.fleet.links[host.name].rows[agent].paused == paused, 60)
            latencies.append(time.perf_counter() - start)
        rss = _rss_mb()
    for actor in actors.values():
        await actor.close()
    latencies.sort()
    return latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], rss


def figures(runs: int, figure, agents: int = AGENTS) -> None:
    """The fleet's figures, as run.py registers them: `figure(name, value)` for each.

    The console's (benchmarks/fleetconsole.py): the all-hosts view against the
    single-host view on one host of as many agents, in the same run. Two of
    the hosts are reached over SSH, so the one host is measured over SSH too.
    """
    setup = Setup(agents)
    try:
        lab = setup.start()
        total = len(lab.hosts) * agents
        n = len(lab.hosts)
        ssh = next(h for h in lab.hosts if h.transport == "ssh")
        one_ssh = dataclasses.replace(ssh, name="one-ssh", socket=lab.one.socket)
        one, one_over_ssh, every = [], [], []
        # Interleaved, so that load from the rest of the machine falls on each alike; the best of each.
        for _ in range(runs):
            one.append(asyncio.run(fleetconsole.one_host(lab.one, total)))
            one_over_ssh.append(asyncio.run(fleetconsole.one_host(one_ssh, total)))
            every.append(asyncio.run(fleetconsole.every_host(lab.hosts, lab.hosts, total)))
        (one_first, one_rows), (_, ssh_rows) = (min(one, key=lambda r: r[1]), min(one_over_ssh, key=lambda r: r[1]))
        first, rows = min(f for f, _ in every), min(r for _, r in every)
        one_first = min(f for f, _ in one)
        figure(f"console, one host of {total} agents: first frame, ms", f"{one_first * 1000:.0f}")
        figure(f"console, one host of {total} agents: every row in, ms", f"{one_rows * 1000:.0f}")
        figure(f"console, one host of {total} agents over SSH: every row in, ms", f"{ssh_rows * 1000:.0f}")
        figure(f"console, all hosts ({n} x {agents}, 2 over SSH): first frame (a line per host), ms",
               f"{first * 1000:.0f}")
        figure("ratio, all hosts / one host, first frame (goal <= 1.5)", f"{first / one_first:.2f}")
        figure(f"console, all hosts ({n} x {agents}, 2 over SSH): every row in, ms", f"{rows * 1000:.0f}")
        figure("ratio, all hosts / one host, every row in", f"{rows / one_rows:.2f}")
        figure("ratio, all hosts / one host over SSH, every row in", f"{rows / ssh_rows:.2f}")
        bad = min(asyncio.run(fleetconsole.every_host([*lab.hosts, lab.dead, lab.slow], lab.hosts, total))[1]
                  for _ in range(runs))
        figure("console, all hosts with one dead and one hanging: the others' rows in, ms", f"{bad * 1000:.0f}")
        figure("ratio, with a dead and a hanging host / without (goal <= 1)", f"{bad / rows:.2f}")
        p95 = asyncio.run(fleetconsole.push_latency(lab.hosts, lab.sockets, total))
        figure("console, all hosts: a change on any host to its row, p95 ms (goal <= 150)", f"{p95 * 1000:.1f}")
        one_rss = fleetconsole.resident_mib("one", [lab.one], total)
        every_rss = fleetconsole.resident_mib("all", lab.hosts, total)
        figure(f"console resident memory, one host of {total} agents, MiB", f"{one_rss:.0f}")
        figure(f"console resident memory, all hosts ({n} x {agents}), MiB (goal <= 200)", f"{every_rss:.0f}")
        figure("ratio, all hosts / one host, resident memory", f"{every_rss / one_rss:.2f}")
    finally:
        setup.close()


if __name__ == "__main__":
    def show(name: str, value: str) -> None:
        print(f"{name:<80} {value}", flush=True)

    figures(int(sys.argv[1]) if len(sys.argv) > 1 else 3, show,
            int(sys.argv[2]) if len(sys.argv) > 2 else AGENTS)
