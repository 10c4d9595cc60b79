"""The local runtime: each agent is a process on this machine, supervised by
the hive's one supervisor process (see supervisor.py for why one per hive).

containers/<name>/ holds:
    current/     the checkout the agent runs from (the last good build)
    next/        the checkout being built; renamed to current/ once it built
    build.log    the last build's output
    build.json   the running build's process group, for a new engine to end
                 if this one dies
    log          the agent's own output, appended across restarts, each line
                 stamped with the time the supervisor wrote it
    log.1        the log before the last rotation (at log_max_bytes)
    log.base     the number of one of those files' first line (see supervisor.py)
    run.json     the agent's pid (its session and process group) and start
                 time, written by the supervisor as it starts the agent
    exit.json    written by the supervisor when the agent exits
    stopped      present while the agent is stopped on purpose
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import stat
from pathlib import Path

import pygit2

from ...errors import BuildFailed, HiveError, NotFound
from ...names import is_valid_name
from .. import gitrepo
from ..agentconf import load_agent_config
from ..faults import crash_point
from ..fsutil import is_marker, open_folder, read_json, remove_entry, set_marker
from ..stateroot import StateRoot
from . import OutputSink, RunState
from .procs import BUILD_RECORD, is_alive, run_streaming, signal_group, wait_group_gone
from .supervisor import LOG_MAX, LOG_MAX_MIN, HiveSupervisor, describe_exit

log = logging.getLogger(__name__)

BUILD_TIMEOUT = 900.0
STOP_GRACE = 10.0
SUPERVISOR = str(Path(__file__).with_name("supervisor.py"))


class LocalRuntime:
    name = "local"
    meta_inputs: dict[str, str] = {}

    def __init__(self, state: StateRoot, build_timeout: float = BUILD_TIMEOUT, stop_grace: float = STOP_GRACE,
                 log_max_bytes: int = LOG_MAX):
        if type(log_max_bytes) is not int or log_max_bytes < LOG_MAX_MIN:
            raise HiveError(f"the log's rotation size must be at least {LOG_MAX_MIN} bytes, not {log_max_bytes!r}")
        self.log_max_bytes = log_max_bytes
        self.state = state
        self.build_timeout = build_timeout
        self.stop_grace = stop_grace
        self.supervisor = HiveSupervisor(state.root)

    def _dir(self, name: str) -> Path:
        return self.state.container(name)

    def containers(self) -> list[str]:
        root = self.state.root / "containers"
        # A link is no container: the runtime never acts on what it points to.
        return sorted(p.name for p in root.iterdir()
                      if is_valid_name(p.name) and p.is_dir() and not p.is_symlink())

    def create(self, name: str, repo: Path, sha: str, on_output: OutputSink) -> None:
        cdir = self._dir(name)
        cdir.mkdir(mode=0o700)
        try:
            self.rebuild(name, repo, sha, on_output)
        except BaseException:
            self.destroy(name)
            raise

    def destroy(self, name: str) -> None:
        cdir = self._dir(name)
        if cdir.is_dir():
            self.stop(name)
            crash_point("runtime:remove")
            shutil.rmtree(cdir)

    def log_path(self, name: str) -> Path:
        return self._dir(name) / "log"

    def log_file(self, name: str) -> Path:
        return self.log_path(name)

    def log_argv(self, name: str, lines: int, follow: bool) -> list[str]:
        # --follow=name --retry: keep following across a rebuild's restart,
        # and wait for a log that does not exist yet.
        return ["tail", "-n", str(lines), *(["--follow=name", "--retry"] if follow else []), str(self.log_path(name))]

    def _env(self, name: str) -> dict[str, str]:
        agent_state = self.state.agent_state(name)
        agent_state.mkdir(mode=0o700, exist_ok=True)
        return {**os.environ, "HIVE_AGENT": name, "HIVE_AGENT_STATE": str(agent_state)}

    def rebuild(self, name: str, repo: Path, sha: str, on_output: OutputSink) -> None:
        cdir = self._dir(name)
        if not cdir.is_dir():
            raise NotFound(f"agent {name} has no container")
        nxt = cdir / "next"
        shutil.rmtree(nxt, ignore_errors=True)
        crash_point("runtime:export")
        gitrepo.export_tree(gitrepo.open_repo(repo), pygit2.Oid(hex=sha), nxt)
        conf = load_agent_config(nxt)
        if conf.build:
            self._build(name, conf.build, nxt, on_output)
        # An agent stopped on purpose stays stopped on its new build.
        stay_stopped = is_marker(cdir / "stopped")
        self.stop(name)
        current = cdir / "current"
        crash_point("runtime:swap")
        shutil.rmtree(current, ignore_errors=True)
        os.rename(nxt, current)
        if not stay_stopped:
            self.start(name)

    def _build(self, name: str, argv: list[str], cwd: Path, on_output: OutputSink) -> None:
        crash_point("runtime:build")
        try:
            out = run_streaming(argv, on_output, self.build_timeout, cwd=cwd, env=self._env(name),
                                log=cwd.parent / "build.log", record=cwd.parent / BUILD_RECORD)
        except OSError as e:
            raise BuildFailed(f"build: cannot run {argv[0]!r}: {e.strerror}") from None
        if out.timed_out:
            raise BuildFailed(f"build timed out after {self.build_timeout:g}s\n" + "\n".join(out.tail))
        if out.code != 0:
            raise BuildFailed(f"build exited with {describe_exit(out.code)}\n" + "\n".join(out.tail))

    def start(self, name: str) -> None:
        cdir = self._dir(name)
        if self.run_state(name).running:
            return
        current = cdir / "current"
        if not current.is_dir():
            raise HiveError(f"agent {name} has never been built")
        conf = load_agent_config(current)
        for leftover in ("exit.json", "stopped"):
            (cdir / leftover).unlink(missing_ok=True)
        crash_point("runtime:start")
        log_fd = _open_log(cdir)
        try:
            # The supervisor records run.json before it answers.
            started = self.supervisor.start(cdir, conf.run, current, self._env(name), log_fd, self.log_max_bytes)
        finally:
            os.close(log_fd)
        if started is None:
            return  # it could not be started: its log and exit.json say why
        pid, ticks = started
        try:
            crash_point("runtime:started")
        except BaseException:
            # A start that fails leaves no agent behind.
            signal_group(pid, signal.SIGKILL)
            wait_group_gone(pid, self.stop_grace)
            self.supervisor.wait_recorded(pid, ticks)
            raise

    def stop(self, name: str, graceful: bool = True) -> None:
        """SIGTERM to the agent's process group, then SIGKILL after the grace
        period; SIGKILL at once when not graceful."""
        cdir = self._dir(name)
        if not cdir.is_dir():
            raise NotFound(f"agent {name} has no container")
        set_marker(cdir / "stopped", True)
        recorded = _agent(cdir)
        if recorded is None:
            return
        pid, ticks = recorded
        if is_alive(pid, ticks):
            # The agent leads its process group: stopped means every process
            # of that group is gone, not only the agent's own.
            if graceful:
                signal_group(pid, signal.SIGTERM)
            if not graceful or not wait_group_gone(pid, self.stop_grace):
                signal_group(pid, signal.SIGKILL)
                wait_group_gone(pid, self.stop_grace)
        # Gone, and recorded: exit.json says how it ended before the stop returns.
        self.supervisor.wait_recorded(pid, ticks)

    def run_state(self, name: str) -> RunState:
        cdir = self._dir(name)
        exit_record = read_json(cdir / "exit.json")
        recorded = None
        if exit_record is None:
            recorded = _agent(cdir)
            if recorded is None:
                return RunState()
            if is_alive(*recorded):
                return RunState(running=True)
        if is_marker(cdir / "stopped"):
            return RunState()
        if recorded is not None:
            # Gone, and not recorded yet: its supervisor may be writing the record now.
            self.supervisor.wait_recorded(*recorded)
            exit_record = read_json(cdir / "exit.json")
        # Gone without a stop: a non-zero exit, one that could not start, or one
        # whose supervisor was killed before it could record the exit.
        return RunState(failed=exit_record is None or exit_record.get("code") != 0)


def _open_log(cdir: Path) -> int:
    """The agent's log, open for appending. Whatever else holds its name (a
    link, a FIFO, a folder) is replaced by a new file: never written
    through, never waited on."""
    folder = open_folder(cdir)
    try:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open("log", flags, 0o600, dir_fd=folder)
        except OSError as e:
            # ELOOP: a link; ENXIO: a FIFO no one reads; EISDIR: a folder.
            if e.errno not in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
                raise HiveError(f"cannot open the log in {cdir}: {e.strerror}") from None
        else:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                return fd
            os.close(fd)
        log.warning("the log in %s was not a regular file: replaced by a new one", cdir)
        remove_entry(folder, "log")
        return os.open("log", flags | os.O_EXCL, 0o600, dir_fd=folder)
    finally:
        os.close(folder)


def _agent(cdir: Path) -> tuple[int, int | None] | None:
    """The recorded agent's pid and start ticks; None when run.json is
    missing or does not hold a pid this runtime could have recorded, so a
    mangled record reads as "not running" instead of failing every status."""
    info = read_json(cdir / "run.json")
    if info is None:
        return None
    pid, ticks = info.get("pid"), info.get("ticks")
    if type(pid) is not int or pid <= 1:
        return None
    return pid, ticks if type(ticks) is int else None
