"""The local runtime with real processes: builds, supervised agents, crashes and stops."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pygit2
import pytest

from hive_tui.host import gitrepo
from hive_tui.host.agentconf import parse_agent_config
from hive_tui.host.engine import Engine
from hive_tui.errors import BuildFailed
from hive_tui.host.runtime.local import SUPERVISOR
from hive_tui.host.runtime.supervisor import HiveSupervisor
from hive_tui.host.runtime.procs import start_ticks, wait_gone

from .helpers import agent_files, main_sha, propose, stop_all, tag_message, wait_for
from .invariants import processes_in

TERM_TRAP = ["sh", "-c", 'trap "" TERM; echo trapped; while :; do sleep 0.1; done']


def run_record(engine: Engine, name: str) -> dict:
    return json.loads((engine.state.container(name) / "run.json").read_text())


def supervisor_pid(engine: Engine, name: str) -> int:
    return run_record(engine, name)["pid"]


def gone(pid: int) -> bool:
    return start_ticks(pid) is None


def test_build_runs_in_a_checkout_and_streams_its_output(engine):
    build = ["sh", "-c", 'echo "cwd=$PWD"; echo "agent=$HIVE_AGENT state=$HIVE_AGENT_STATE"; cat marker.txt']
    lines: list[str] = []
    engine.install_agent("alpha", agent_files(build=build, **{"marker.txt": b"from the commit\n"}), lines.append)
    cdir = engine.state.container("alpha")
    assert lines == [
        f"cwd={cdir / 'next'}",
        f"agent=alpha state={engine.state.agent_state('alpha')}",
        "from the commit",
    ]
    assert (cdir / "build.log").read_text().splitlines() == lines
    # The build's checkout became the one the agent runs from.
    assert not (cdir / "next").exists()
    assert (cdir / "current" / "marker.txt").read_text() == "from the commit\n"
    wait_for(lambda: f"alpha started in {cdir / 'current'}" in (cdir / "log").read_text(), what="the agent's log")


def install_alpha_from_another_process(hive_root: Path) -> None:
    """Agent alpha installed and started by an engine in a process that then exits."""
    script = (
        "import sys; from hive_tui.host.engine import Engine; from tests.helpers import agent_files;"
        "e = Engine(sys.argv[1], locker='builtin'); e.install_agent('alpha', agent_files()); e.close()"
    )
    subprocess.run([sys.executable, "-c", script, str(hive_root)], check=True, timeout=60,
                   cwd=Path(__file__).parent.parent)


def test_agent_outlives_the_process_that_started_it(hive_root):
    install_alpha_from_another_process(hive_root)
    with Engine(hive_root, locker="builtin") as engine:
        try:
            pid = supervisor_pid(engine, "alpha")
            assert not gone(pid)
            assert engine.agent_status("alpha").running
            wait_for(lambda: "alpha started" in engine.runtime.log_path("alpha").read_text(), what="its log")
        finally:
            stop_all(engine)
        assert gone(pid) and not engine.agent_status("alpha").running


def test_an_agent_that_crashes_is_failed(engine):
    engine.install_agent("alpha", agent_files(run=["sh", "-c", "echo dying; exit 7"]))
    exit_file = engine.state.container("alpha") / "exit.json"
    wait_for(exit_file.exists, what="exit.json")
    assert json.loads(exit_file.read_text())["code"] == 7
    row = engine.agent_status("alpha")
    assert row.failed and not row.running
    assert "sh exited with code 7" in engine.runtime.log_path("alpha").read_text()


def test_an_agent_that_finishes_cleanly_is_not_failed(engine):
    engine.install_agent("alpha", agent_files(run=["sh", "-c", "exit 0"]))
    wait_for((engine.state.container("alpha") / "exit.json").exists, what="exit.json")
    state = engine.runtime.run_state("alpha")
    assert not state.running and not state.failed


def test_an_agent_killed_from_outside_is_failed(engine):
    engine.install_agent("alpha", agent_files())
    pid = supervisor_pid(engine, "alpha")
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: not engine.runtime.run_state("alpha").running, what="the agent to be gone")
    assert engine.runtime.run_state("alpha").failed


def test_stop_is_graceful_when_the_agent_obeys(engine):
    engine.install_agent("alpha", agent_files())
    wait_for(lambda: "alpha started" in engine.runtime.log_path("alpha").read_text(), what="the agent to start")
    pid = supervisor_pid(engine, "alpha")
    engine.runtime.stop("alpha")
    assert gone(pid)
    code = json.loads((engine.state.container("alpha") / "exit.json").read_text())["code"]
    assert code == -signal.SIGTERM
    state = engine.runtime.run_state("alpha")
    assert not state.running and not state.failed


def test_stop_turns_forceful_after_the_grace_period(hive_root):
    engine = Engine(hive_root, locker="builtin", runtime_options={"stop_grace": 0.5})
    try:
        engine.install_agent("alpha", agent_files(run=TERM_TRAP))
        log = engine.runtime.log_path("alpha")
        wait_for(lambda: "trapped" in log.read_text(), what="the trap to be set")
        pid = supervisor_pid(engine, "alpha")
        engine.runtime.stop("alpha")
        assert gone(pid)
        # The supervisor records the SIGKILL, and still no failure.
        code = json.loads((engine.state.container("alpha") / "exit.json").read_text())["code"]
        assert code == -signal.SIGKILL
        state = engine.runtime.run_state("alpha")
        assert not state.running and not state.failed
    finally:
        stop_all(engine)
        engine.close()


def test_a_stop_returns_once_every_process_of_the_agent_is_gone(engine):
    # The agent's own process dies at SIGTERM, so its supervisor exits at once;
    # a helper it started ignores SIGTERM and lives on in the same group.
    helper = ["sh", "-c", '(trap "" TERM; echo helper trapped; while :; do sleep 0.1; done) & wait']
    engine.install_agent("alpha", agent_files(run=helper))
    wait_for(lambda: "helper trapped" in engine.runtime.log_path("alpha").read_text(), what="the helper's trap")
    pid = supervisor_pid(engine, "alpha")
    engine.runtime.stop("alpha")
    assert gone(pid)
    assert not processes_in(engine.state.container("alpha"))
    state = engine.runtime.run_state("alpha")
    assert not state.running and not state.failed


def test_a_failed_build_keeps_the_previous_checkout_running(engine):
    engine.install_agent("alpha", agent_files(**{"v.txt": b"1\n"}))
    before = run_record(engine, "alpha")
    broken = ["sh", "-c", "for i in $(seq 1 60); do echo line $i; done; exit 4"]
    with pytest.raises(BuildFailed) as failure:
        engine.runtime.rebuild("alpha", engine.state.applied("alpha"), _commit(engine, agent_files(build=broken)),
                               lambda line: None)
    message = str(failure.value)
    assert message.startswith("build exited with code 4\n")
    assert "line 60" in message and "line 21" in message and "line 20\n" not in message  # the last 40 lines
    assert run_record(engine, "alpha") == before
    assert engine.runtime.run_state("alpha").running
    assert (engine.state.container("alpha") / "current" / "v.txt").read_text() == "1\n"


def test_a_hanging_build_is_bounded_by_its_timeout(hive_root):
    engine = Engine(hive_root, locker="builtin", runtime_options={"build_timeout": 1.0, "stop_grace": 2.0})
    try:
        engine.install_agent("alpha", agent_files())
        hang = ["sh", "-c", "echo waiting forever; sleep 600 & wait"]
        a = propose(engine, "alpha", agent_files(build=hang))
        done = engine.approve(a.id)
        assert done.status == "failed"
        assert done.error.startswith("build timed out after 1s") and "waiting forever" in done.error
    finally:
        stop_all(engine)
        engine.close()


@pytest.mark.parametrize("text, message", [
    (b"run: [sh\nbuild: x", "agent.yaml at line 2"),
    (b"build: [make]\n", "`run` is missing"),
    (b"run: sh -c hi\n", "`run` must be a non-empty list of non-empty strings"),
    (b"run: [sh, 3]\n", "`run` must be a non-empty list of non-empty strings"),
    (b"run: [sh]\nbiuld: [make]\n", "unknown keys biuld"),
    (b"- just\n- a list\n", "expected a mapping"),
])
def test_malformed_agent_yaml_is_a_clear_build_failure(text, message):
    with pytest.raises(BuildFailed, match=message):
        parse_agent_config(text)


def test_a_deploy_of_a_malformed_config_fails_with_the_reason(engine):
    engine.install_agent("alpha", agent_files())
    before = main_sha(engine, "alpha")
    a = propose(engine, "alpha", {"agent.yaml": b"run: [sh\n"})
    done = engine.approve(a.id)
    assert done.status == "failed" and "agent.yaml at line 2" in done.error
    assert tag_message(engine, "alpha", f"failed/{a.id}") == done.error
    assert main_sha(engine, "alpha") == before and engine.runtime.run_state("alpha").running


def test_a_missing_program_fails_the_build_clearly(engine):
    engine.install_agent("alpha", agent_files())
    a = propose(engine, "alpha", agent_files(build=["no-such-program-here", "--flag"]))
    done = engine.approve(a.id)
    assert done.status == "failed"
    assert done.error == "build: cannot run 'no-such-program-here': No such file or directory"


def test_a_reused_pid_is_not_mistaken_for_the_agent(engine):
    engine.install_agent("alpha", agent_files())
    record = run_record(engine, "alpha")
    engine.runtime.stop("alpha")
    # A record naming a live process (this one) with another start time.
    record.update(pid=os.getpid(), ticks=start_ticks(os.getpid()) + 1)
    (engine.state.container("alpha") / "run.json").write_text(json.dumps(record))
    (engine.state.container("alpha") / "stopped").unlink()
    (engine.state.container("alpha") / "exit.json").unlink(missing_ok=True)
    assert not engine.runtime.run_state("alpha").running
    engine.runtime.stop("alpha")  # must not signal this process's group
    assert not gone(os.getpid())


def _commit(engine: Engine, files: dict[str, bytes]) -> str:
    """A commit on top of the applied main that main does not move to."""
    repo = gitrepo.open_repo(engine.state.applied("alpha"))
    sig = gitrepo.signature()
    parent = repo.references[gitrepo.MAIN].target
    tree = gitrepo.write_tree(repo, files, repo[parent].peel(pygit2.Tree))
    return str(repo.create_commit(None, sig, sig, "side", tree, [parent]))


def test_the_supervisor_needs_nothing_but_the_standard_library(tmp_path):
    # It is launched with -I -S from "/": no site-packages and no current folder
    # on its path, so hive_tui cannot be imported there.
    folder = tmp_path / "agent"
    folder.mkdir()
    supervisor = HiveSupervisor(tmp_path)
    with open(folder / "log", "ab") as log:
        started = supervisor.start(folder, ["sh", "-c", "echo hi; exit 3"], tmp_path, dict(os.environ), log.fileno())
    assert started is not None
    assert supervisor.wait_recorded(*started)
    # Each line carries the time the supervisor wrote it; the text is the agent's.
    assert re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) hi\n"
                        r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) \[hive-tui\] sh exited with code 3\n",
                        (folder / "log").read_text())
    assert json.loads((folder / "exit.json").read_text())["code"] == 3
    assert json.loads((folder / "run.json").read_text())["pid"] == started[0]
    assert "Traceback" not in (tmp_path / "hive.supervisor.log").read_text()


@pytest.mark.parametrize("record", ['{"pid": "1; rm -rf /"}', '{"ticks": 5}', '{"pid": 1}', '{"pid": 2.5}', '[]'])
def test_a_mangled_run_record_reads_as_not_running(engine, record):
    engine.install_agent("alpha", agent_files())
    engine.stop("alpha")
    (engine.state.container("alpha") / "run.json").write_text(record)
    row = engine.agent_status("alpha")
    assert (row.running, row.failed) == (False, False)
    engine.stop("alpha")  # a stop with nothing recorded to signal is a no-op
    engine.start("alpha")
    assert engine.agent_status("alpha").running


# -- one supervisor per hive ---------------------------------------------------

def supervisors(root: Path) -> list[int]:
    """The pids of the processes running the supervisor module for the hive at `root`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            if SUPERVISOR in argv and any(a == str(root) or a.startswith(f"{root}/") for a in argv):
                found.append(int(entry.name))
    return found


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_one_supervisor_serves_every_agent_of_the_hive(engine):
    for name in ("alpha", "beta", "gamma"):
        engine.install_agent(name, agent_files())
    [supervisor] = supervisors(engine.state.root)
    # It works in no agent's folder, and each agent leads a session of its own under it.
    assert os.readlink(f"/proc/{supervisor}/cwd") == "/"
    pids = {supervisor_pid(engine, name) for name in ("alpha", "beta", "gamma")}
    assert len(pids) == 3 and supervisor not in pids
    assert {parent_of(pid) for pid in pids} == {supervisor}
    assert {os.getsid(pid) for pid in pids} == pids


def test_agents_started_from_many_threads_at_once_share_one_supervisor(engine):
    names = [f"agent-{i}" for i in range(6)]
    for name in names:
        engine.install_agent(name, agent_files())
    stop_all(engine)
    wait_for(lambda: not supervisors(engine.state.root), what="the idle supervisor to exit")
    errors: list[BaseException] = []

    def start(name: str) -> None:
        try:
            engine.runtime.start(name)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=start, args=(name,)) for name in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert all(engine.runtime.run_state(name).running for name in names)
    [supervisor] = supervisors(engine.state.root)
    assert {parent_of(supervisor_pid(engine, name)) for name in names} == {supervisor}


def test_the_supervisor_exits_once_no_agent_runs(engine):
    engine.install_agent("alpha", agent_files())
    [supervisor] = supervisors(engine.state.root)
    engine.stop("alpha")
    assert wait_gone(supervisor, 30)
    engine.start("alpha")
    assert engine.agent_status("alpha").running and supervisors(engine.state.root) != [supervisor]


def test_a_new_engine_starts_agents_under_the_supervisor_a_gone_one_left(hive_root):
    install_alpha_from_another_process(hive_root)
    with Engine(hive_root, locker="builtin") as engine:
        try:
            [supervisor] = supervisors(engine.state.root)
            engine.install_agent("beta", agent_files())
            assert supervisors(engine.state.root) == [supervisor]
            assert parent_of(supervisor_pid(engine, "beta")) == supervisor
        finally:
            stop_all(engine)


def test_a_killed_supervisor_leaves_its_agents_running_and_stoppable(engine):
    helper = ["sh", "-c", '(trap "" TERM; echo helper trapped; while :; do sleep 0.1; done) & wait']
    engine.install_agent("alpha", agent_files(run=helper))
    wait_for(lambda: "helper trapped" in engine.runtime.log_path("alpha").read_text(), what="the helper's trap")
    [supervisor] = supervisors(engine.state.root)
    os.kill(supervisor, signal.SIGKILL)
    assert wait_gone(supervisor, 30)
    assert engine.agent_status("alpha").running
    # A new supervisor takes the next agent; the orphaned one is still stopped whole.
    engine.install_agent("beta", agent_files())
    assert engine.agent_status("beta").running
    engine.stop("alpha")
    assert not processes_in(engine.state.container("alpha"))
    row = engine.agent_status("alpha")
    assert (row.running, row.failed) == (False, False)


def test_a_program_that_cannot_be_started_is_a_failed_agent(engine):
    engine.install_agent("alpha", agent_files(run=["no-such-program-here"]))
    wait_for(lambda: engine.agent_status("alpha").failed, what="the failure to show")
    assert json.loads((engine.state.container("alpha") / "exit.json").read_text())["code"] == 127
    assert "[hive-tui] cannot start 'no-such-program-here'" in engine.runtime.log_path("alpha").read_text()


def test_a_link_planted_where_the_exit_record_is_written_is_not_followed(engine, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not the agent's")
    # The agent waits for its gate to be there, then for a line through it.
    wait_gate = 'g="$HIVE_AGENT_STATE/gate"; while [ ! -p "$g" ]; do sleep 0.05; done; read v < "$g"; exit 5'
    engine.install_agent("alpha", agent_files(run=["sh", "-c", wait_gate]))
    cdir = engine.state.container("alpha")
    for name in ("exit.json.tmp", "run.json.tmp"):
        (cdir / name).symlink_to(outside)
    gate = engine.state.agent_state("alpha") / "gate"
    os.mkfifo(gate)

    def writer() -> int | None:
        try:
            return os.open(gate, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no reader yet
            return None

    fd = wait_for(writer, what="the agent to open its gate")
    os.write(fd, b"go\n")
    os.close(fd)
    wait_for(lambda: engine.agent_status("alpha").failed, what="the exit to be recorded")
    assert outside.read_text() == "not the agent's"
    assert not (cdir / "exit.json").is_symlink()
    assert json.loads((cdir / "exit.json").read_text())["code"] == 5


def test_a_hive_whose_path_is_longer_than_a_socket_address_runs_agents(tmp_path):
    root = tmp_path / ("deep-" * 20) / "hive"
    root.mkdir(parents=True)
    folder = root / "agent"
    folder.mkdir()
    supervisor = HiveSupervisor(root)
    with open(folder / "log", "ab") as log:
        started = supervisor.start(folder, ["sh", "-c", "exit 4"], root, dict(os.environ), log.fileno())
    assert started is not None
    assert supervisor.wait_recorded(*started)
    assert json.loads((folder / "exit.json").read_text())["code"] == 4


def test_an_agent_that_exits_cleanly_never_reads_as_failed_on_its_way_out(engine):
    engine.install_agent("alpha", agent_files(run=["sh", "-c", "exit 0"]))
    exit_file = engine.state.container("alpha") / "exit.json"
    for _ in range(20):
        seen = set()
        while not exit_file.exists():
            seen.add(engine.runtime.run_state("alpha"))
        seen.add(engine.runtime.run_state("alpha"))
        assert all(not state.failed for state in seen), seen
        engine.runtime.start("alpha")
    engine.runtime.stop("alpha")


@pytest.mark.parametrize("kind", ["symlink", "fifo", "folder"])
def test_a_log_replaced_by_something_else_is_never_written_through(engine, tmp_path, kind):
    engine.install_agent("alpha", agent_files())
    engine.stop("alpha")
    cdir = engine.state.container("alpha")
    outside = tmp_path / "outside.txt"
    outside.write_text("not the agent's")
    (cdir / "log").unlink()
    if kind == "symlink":
        (cdir / "log").symlink_to(outside)
    elif kind == "fifo":
        os.mkfifo(cdir / "log")
    else:
        (cdir / "log").mkdir()
        (cdir / "log" / "inside").write_text("x")
    engine.start("alpha")
    wait_for(lambda: (cdir / "log").is_file() and "alpha started in" in (cdir / "log").read_text(),
             what="the agent's log")
    assert not (cdir / "log").is_symlink()
    assert outside.read_text() == "not the agent's"
