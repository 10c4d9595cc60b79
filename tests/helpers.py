"""Helpers for tests: agent configs, the manager's commits, reading repos back."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pygit2
import pytest

from hive_tui.host import gitrepo
from hive_tui.host.engine import Engine
from hive_tui.models import Approval
from hive_tui.host.template import agent_yaml

# A test that needs a system program the machine may lack (nix, sshd) calls
# `require_program`: it skips with a reason on a bare machine, and fails
# instead when HIVE_TUI_REQUIRE_PROGRAMS=1, as CI sets it.
REQUIRE_VAR = "HIVE_TUI_REQUIRE_PROGRAMS"


def require_program(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (Debian: apt-get install {_PACKAGES.get(name, name)})"
        if os.environ.get(REQUIRE_VAR) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_VAR}=1 forbids skipping")
        pytest.skip(reason)
    return path


_PACKAGES = {"nix": "nix-bin", "sshd": "openssh-server"}


def wait_for(condition, timeout: float = 10.0, what: str = "condition"):
    """Poll `condition` until it returns a true value, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def engine_holder(root: Path) -> subprocess.Popen:
    """Another process that owns an engine on `root` until its stdin closes."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from hive_tui.host.engine import Engine; e = Engine(sys.argv[1], locker='builtin');"
         " print('ready', flush=True); sys.stdin.read()", str(root)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline() == "ready\n"
    return holder


def stop_all(engine: Engine) -> None:
    for name in engine.runtime.containers():
        engine.runtime.stop(name)


IDLE = ["sh", "-c", 'echo "$HIVE_AGENT started in $PWD"; while [ -d "$HIVE_AGENT_STATE" ]; do sleep 1; done']


# The build waits at a FIFO in the agent's state folder, when there is one,
# for the test to say "ok" (build passes) or anything else (build fails).
GATED_BUILD = ["sh", "-c", 'g="$HIVE_AGENT_STATE/gate"; if [ -p "$g" ]; then read v < "$g"; test "$v" = ok; fi']


class Gate:
    """A FIFO a gated build blocks on until the test opens it."""

    def __init__(self, agent_state: Path):
        agent_state.mkdir(mode=0o700, exist_ok=True)
        self.path = agent_state / "gate"
        os.mkfifo(self.path)

    def open(self, answer: str) -> None:
        with open(self.path, "w") as f:
            f.write(answer + "\n")
        self.path.unlink()


def agent_files(build: list[str] | None = None, run: list[str] | None = None, **extra: bytes) -> dict[str, bytes]:
    """An agent config: agent.yaml plus any other files."""
    return {"agent.yaml": agent_yaml(run or IDLE, build), **extra}


def manager_commit(engine: Engine, name: str, files: dict[str, bytes], message: str = "change") -> str:
    """Commit on the proposed repo's main, as the manager would."""
    repo = gitrepo.open_repo(engine.state.proposed(name))
    return str(gitrepo.commit_files(repo, files, message))


def manager_rebase(engine: Engine, name: str) -> None:
    """Point the proposed repo's main back at the applied main, as a manager does after a failure."""
    repo = gitrepo.open_repo(engine.state.proposed(name))
    target = pygit2.Oid(hex=main_sha(engine, name))
    repo.references[gitrepo.MAIN].set_target(target)
    gitrepo.sync_worktree(repo, target)


def propose(engine: Engine, name: str, files: dict[str, bytes], description: str | None = None) -> Approval:
    manager_commit(engine, name, files, description or "change")
    return engine.request_apply_commit(name, "main", description)


def applied_repo(engine: Engine, name: str) -> pygit2.Repository:
    return gitrepo.open_repo(engine.state.applied(name))


def main_sha(engine: Engine, name: str) -> str:
    return str(applied_repo(engine, name).references[gitrepo.MAIN].target)


def tag_sha(engine: Engine, name: str, tag: str) -> str | None:
    oid = gitrepo.tag_commit(applied_repo(engine, name), tag)
    return str(oid) if oid is not None else None


def tag_message(engine: Engine, name: str, tag: str) -> str:
    repo = applied_repo(engine, name)
    return repo[repo.references[f"refs/tags/{tag}"].target].message


def tree_snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path under `root` with its content (or link target), .git folders excluded."""
    snap: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if ".git" in rel.parts:
            continue
        if path.is_symlink():
            snap[str(rel)] = "-> " + os.readlink(path)
        elif path.is_file():
            snap[str(rel)] = path.read_bytes()
        else:
            snap[str(rel)] = "dir"
    return snap


async def until(pilot, condition, timeout: float = 60.0, what: str = "condition") -> None:
    """Let the app under `pilot` run until `condition()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def write_stamped_log(path: Path, count: int, start: str = "2026-01-01T00:00:00Z", every_ms: int = 1,
                      text=lambda i: f"line {i}", first: int = 0) -> None:
    """Write `count` lines to `path` as the local runtime's supervisor writes
    them (`<RFC 3339 UTC ms> <text>`), the first at `start` and each `every_ms`
    later; line i's text is text(first + i). Appends; about a second per
    million lines."""
    import datetime

    base = datetime.datetime.fromisoformat(start).astimezone(datetime.timezone.utc)
    base_ms = int(base.timestamp() * 1000)
    seconds: dict[int, str] = {}
    out = []
    for i in range(count):
        at = base_ms + i * every_ms
        second = seconds.get(at // 1000)
        if second is None:
            seconds.clear()
            second = seconds[at // 1000] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at // 1000))
        out.append(f"{second}.{at % 1000:03d}Z {text(first + i)}\n")
    with open(path, "a", encoding="utf-8") as f:
        f.writelines(out)
