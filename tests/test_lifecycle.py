"""Lifecycle actions on the local runtime, with real processes: start, stop,
restart, rebuild, destroy, purge, pause, logs, and the transient state each
one shows while it runs."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from contextlib import aclosing
from pathlib import Path

import pytest

from hive_tui.host import gitrepo
from hive_tui.client.embedded import EmbeddedClient
from hive_tui.host.engine import Engine
from hive_tui.errors import BuildFailed, Conflict, InvalidName, NotFound
from hive_tui.models import AgentStatus, Approval, Transient

from .helpers import GATED_BUILD, Gate, agent_files, applied_repo, main_sha, propose, tree_snapshot, wait_for
from .invariants import processes_in

TERM_TRAP = ["sh", "-c", 'trap "" TERM; echo trapped; while :; do sleep 0.1; done']


def supervisor_pid(engine: Engine, name: str) -> int:
    return json.loads((engine.state.container(name) / "run.json").read_text())["pid"]


def meta_state(engine: Engine) -> tuple:
    """The meta repo as a deploy log sees it: commits, and the working files against the last one."""
    repo = gitrepo.open_repo(engine.state.meta)
    committed = tuple(gitrepo.blob_at(repo, f) for f in ("flake.nix", "flake.lock"))
    working = tuple((engine.state.meta / f).read_bytes() for f in ("flake.nix", "flake.lock"))
    return [c.sha for c in engine.meta_log()], committed, working


def files_but_the_db(root: Path) -> dict:
    """Every file under `root` but the database, which records each action's transient."""
    return {k: v for k, v in tree_snapshot(root).items() if ".db" not in Path(k).name}


def in_thread(fn, *args) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def run() -> None:
        try:
            result["value"] = fn(*args)
        except Exception as e:
            result["error"] = e

    t = threading.Thread(target=run)
    t.start()
    return t, result


@pytest.fixture
def alpha(engine: Engine) -> Engine:
    engine.install_agent("alpha", agent_files(build=GATED_BUILD))
    return engine


def test_stop_start_restart_drive_the_real_process(alpha):
    engine = alpha
    first = supervisor_pid(engine, "alpha")
    assert engine.agent_status("alpha").running

    engine.stop("alpha")
    row = engine.agent_status("alpha")
    assert (row.running, row.failed) == (False, False)
    assert not processes_in(engine.state.container("alpha"))

    engine.start("alpha")
    second = supervisor_pid(engine, "alpha")
    assert second != first and engine.agent_status("alpha").running

    engine.restart("alpha")
    assert supervisor_pid(engine, "alpha") not in (first, second)
    assert engine.agent_status("alpha").running
    assert engine.transients_in_flight() == [] and engine.agent_status("alpha").transient is None


def test_a_crashed_agent_is_failed_until_started_again(engine):
    engine.install_agent("alpha", agent_files(run=["sh", "-c", "echo going down; exit 3"]))
    wait_for(lambda: engine.agent_status("alpha").failed, what="the crash to show")
    assert not engine.agent_status("alpha").running
    assert "sh exited with code 3" in "\n".join(engine.logs("alpha"))


def test_a_stop_the_agent_ignores_turns_forceful(engine):
    engine.install_agent("alpha", agent_files(run=TERM_TRAP))
    wait_for(lambda: "trapped" in "\n".join(engine.logs("alpha")), what="the trap to be set")
    engine.stop("alpha")
    # The supervisor recorded the SIGKILL.
    assert json.loads((engine.state.container("alpha") / "exit.json").read_text())["code"] == -signal.SIGKILL
    assert not processes_in(engine.state.container("alpha"))
    assert not engine.agent_status("alpha").failed


def test_stop_without_grace_kills_at_once(alpha):
    alpha.stop("alpha", graceful=False)
    assert json.loads((alpha.state.container("alpha") / "exit.json").read_text())["code"] == -signal.SIGKILL
    assert not processes_in(alpha.state.container("alpha"))


def test_rebuild_of_the_deployed_sha_restarts_without_a_meta_commit(alpha):
    engine = alpha
    before, pid = meta_state(engine), supervisor_pid(engine, "alpha")
    assert engine.rebuild("alpha") is None
    assert supervisor_pid(engine, "alpha") != pid
    assert meta_state(engine) == before
    assert engine.events()[-1].kind == "Rebuilt" and engine.events()[-1].status == "rebuilt"


def test_rebuild_picks_up_an_applied_main_the_lock_lags_behind(alpha):
    engine = alpha
    repo = applied_repo(engine, "alpha")
    sha = str(gitrepo.commit_files(repo, {"extra.txt": b"x"}, "moved outside a deploy"))
    assert engine.agent_status("alpha").needs_update

    commit = engine.rebuild("alpha")

    assert engine.meta_log()[0].sha == commit
    assert engine.meta_log()[0].message == f"rebuild alpha {sha[:12]}"
    row = engine.agent_status("alpha")
    assert not row.needs_update and row.deployed_sha == sha[:12]


def test_a_failed_rebuild_leaves_the_meta_log_and_the_agent_as_they_were(alpha):
    engine = alpha
    gitrepo.commit_files(applied_repo(engine, "alpha"), {"extra.txt": b"x"}, "moved outside a deploy")
    before, pid = meta_state(engine), supervisor_pid(engine, "alpha")
    gate = Gate(engine.state.agent_state("alpha"))
    thread, result = in_thread(engine.rebuild, "alpha")
    wait_for(lambda: engine.agent_status("alpha").transient == "Rebuilding", what="the transient")
    gate.open("no")
    thread.join(30)

    assert isinstance(result["error"], BuildFailed)
    assert meta_state(engine) == before
    assert supervisor_pid(engine, "alpha") == pid and engine.agent_status("alpha").running
    assert engine.agent_status("alpha").needs_update
    last = engine.events()[-1]
    assert (last.kind, last.status) == ("Rebuilt", "failed") and "build exited with code 1" in last.error
    assert engine.agent_status("alpha").transient is None and engine.transients_in_flight() == []


@pytest.mark.parametrize("answer", ["ok", "no"])
def test_a_transient_shows_while_the_action_runs_and_refuses_a_second(alpha, answer):
    engine = alpha
    seen: list[object] = []
    engine.subscribe(seen.append)
    gate = Gate(engine.state.agent_state("alpha"))
    thread, result = in_thread(engine.rebuild, "alpha")
    wait_for(lambda: engine.transients_in_flight(), what="the transient")

    [held] = engine.transients_in_flight()
    assert (held.agent, held.kind) == ("alpha", "Rebuilding")
    assert engine.agent_status("alpha").transient == "Rebuilding"
    assert [r.transient for r in engine.status()] == ["Rebuilding"]
    for action in (engine.restart, engine.start, engine.stop, engine.destroy, engine.rebuild):
        with pytest.raises(Conflict, match="alpha is rebuilding already"):
            action("alpha")
    gate.open(answer)
    thread.join(30)

    assert ("error" in result) == (answer == "no")
    assert engine.transients_in_flight() == [] and engine.agent_status("alpha").transient is None
    pushed = [(i.kind, i.ended) for i in seen if isinstance(i, Transient)]
    assert pushed == [("Rebuilding", False), ("Rebuilding", True)]
    rows = [i.transient for i in seen if isinstance(i, AgentStatus)]
    assert rows[0] == "Rebuilding" and rows[-1] is None


def test_a_spawning_name_is_listed_before_it_has_a_row(engine):
    gate = Gate(engine.state.agent_state("beta"))
    thread, result = in_thread(engine.install_agent, "beta", agent_files(build=GATED_BUILD))
    wait_for(lambda: engine.transients_in_flight(), what="the transient")
    assert [(t.agent, t.kind) for t in engine.transients_in_flight()] == [("beta", "Spawning")]
    with pytest.raises(Conflict, match="beta is spawning already"):
        engine.request_spawn("beta")
    gate.open("ok")
    thread.join(30)
    assert "error" not in result
    assert engine.agents() == ["beta"] and engine.transients_in_flight() == []


def test_a_failed_spawn_leaves_nothing_behind(engine, tmp_path):
    engine.install_agent("alpha", agent_files())
    engine.stop("alpha")
    before, meta = files_but_the_db(tmp_path), meta_state(engine)
    with pytest.raises(BuildFailed):
        engine.install_agent("beta", agent_files(build=["false"]))
    for area in ("applied", "proposed", "agents", "containers"):
        assert not (engine.state.root / area / "beta").exists()
    assert meta_state(engine) == meta
    assert files_but_the_db(tmp_path) == before
    assert engine.transients_in_flight() == []


def test_a_denied_spawn_leaves_nothing_behind(engine, tmp_path):
    approval = engine.request_spawn("dune", "a helper")
    before, meta = tree_snapshot(engine.state.root), meta_state(engine)
    engine.deny(approval.id, "not now")
    assert meta_state(engine) == meta
    changed = {k for k in set(before) | set(tree_snapshot(engine.state.root)) if "dune" in k}
    assert changed == set()
    with pytest.raises(NotFound):
        engine.history("dune")


@pytest.mark.parametrize("locker", ["builtin", "nix"])
def test_destroy_keeps_the_history_a_recreation_reuses(engine, locker):
    engine.install_agent("alpha", agent_files())
    deployed = engine.approve(propose(engine, "alpha", {"notes.txt": b"v2"}, "v2").id)
    assert deployed.terminal_tag == f"deployed/{deployed.id}"
    (engine.state.agent_state("alpha") / "credentials").write_text("secret")
    sha = main_sha(engine, "alpha")

    assert engine.destroy("alpha") is None

    assert engine.agents() == [] and not engine.state.container("alpha").exists()
    assert engine.state.applied("alpha").is_dir() and engine.state.agent_state("alpha").is_dir()
    flake = (engine.state.meta / "flake.nix").read_text()
    assert "agent-alpha" not in flake and "alpha = agent" not in flake
    assert "agent-alpha" not in json.loads(gitrepo.blob_at(gitrepo.open_repo(engine.state.meta), "flake.lock"))["nodes"]
    assert engine.meta_log()[0].message == "destroy alpha"
    assert (engine.events()[-1].kind, engine.events()[-1].status) == ("Destroyed", "kept")
    with pytest.raises(NotFound):
        engine.start("alpha")

    spawn = engine.approve(engine.request_spawn("alpha").id)

    assert spawn.status == "approved" and engine.agents() == ["alpha"]
    assert main_sha(engine, "alpha") == sha
    assert engine.meta.locked_rev("alpha") == sha
    assert f"deployed/{deployed.id}" in [t.tag for t in engine.history("alpha")]
    assert (engine.state.agent_state("alpha") / "credentials").read_text() == "secret"
    assert engine.agent_status("alpha").running


def test_purge_removes_the_agents_folders_and_nothing_else(engine, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not the hive's")
    engine.install_agent("alpha", agent_files())
    engine.install_agent("beta", agent_files())
    engine.stop("beta")
    mine = ("applied/alpha", "proposed/alpha", "agents/alpha", "containers/alpha", "meta", "hive.")

    def others() -> dict:
        return {k: v for k, v in tree_snapshot(tmp_path).items()
                if not any(k.startswith(f"hive/{m}") for m in mine)}

    before = others()
    assert engine.destroy("alpha", purge=True) is None
    for area in ("applied", "proposed", "agents", "containers"):
        assert not (engine.state.root / area / "alpha").exists()
    assert others() == before
    assert engine.agents() == ["beta"] and engine.meta.agents() == ["beta"]
    assert (engine.events()[-1].kind, engine.events()[-1].status) == ("Destroyed", "purged")


def test_purge_finishes_off_an_agent_destroyed_without_it(engine):
    engine.install_agent("alpha", agent_files())
    engine.destroy("alpha")
    engine.destroy("alpha", purge=True)
    assert not engine.state.applied("alpha").exists() and not engine.state.agent_state("alpha").exists()
    with pytest.raises(NotFound):
        engine.destroy("alpha", purge=True)


def test_a_destroy_stands_when_the_meta_rerender_fails(engine):
    engine.install_agent("alpha", agent_files())
    head = engine.meta_log()[0].sha
    # A lock on the meta repo's main, as a crashed git process leaves one.
    stale = engine.state.meta / ".git" / "refs" / "heads" / "main.lock"
    stale.write_text("")
    try:
        warning = engine.destroy("alpha")
    finally:
        stale.unlink()
    assert "could not be rendered again after destroying alpha" in warning and "main.lock" in warning
    assert engine.agents() == [] and not engine.state.container("alpha").exists()
    assert engine.meta_log()[0].sha == head
    assert engine.events()[-1].error == warning
    # The next meta operation renders the flake from the agents there are.
    engine.install_agent("beta", agent_files())
    assert engine.meta.agents() == ["beta"]
    assert [c.message for c in engine.meta_log()[:2]] == [
        f"spawn beta {main_sha(engine, 'beta')[:12]}", "render the agents the hive has"]


def test_pause_and_resume_are_idempotent_markers(alpha):
    engine = alpha
    marker = engine.state.agent_state("alpha") / "paused"
    for _ in range(2):
        assert engine.set_paused("alpha", True).paused and marker.exists()
    for _ in range(2):
        assert not engine.set_paused("alpha", False).paused and not marker.exists()


def test_logs_print_and_follow(alpha):
    engine = alpha
    wait_for(lambda: any("alpha started" in line for line in engine.logs("alpha")), what="the agent's log")
    # Not closed: closing the client would close the fixture's engine.
    client = EmbeddedClient(engine)

    async def follow() -> list[str]:
        lines = []
        async with aclosing(client.follow_logs("alpha", 5)) as followed:
            async for line in followed:
                lines.append(line)
                if "alpha started" in line:
                    break
        return lines

    assert any("alpha started" in line for line in asyncio.run(follow()))
    log = str(engine.runtime.log_path("alpha")).encode()
    followers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline_has(p, log)]
    assert followers == [], "the follower outlived its reader"
    assert asyncio.run(client.logs("alpha", 1)) == engine.logs("alpha", 1)


def _cmdline_has(proc: Path, arg: bytes) -> bool:
    try:
        return arg in (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False


BAD_NAMES = ["..", "../x", "a/b", "", "x" * 33, "Alpha", "-a", "a\x00b", ".", "a b"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused_before_any_disk_access(engine, tmp_path, name):
    before = tree_snapshot(tmp_path)
    actions = [
        engine.start, engine.stop, engine.restart, engine.rebuild, engine.destroy,
        lambda n: engine.destroy(n, purge=True), lambda n: engine.set_paused(n, True),
        engine.logs, engine.request_spawn, engine.install_agent, engine.history, engine.agent_status,
    ]
    for action in actions:
        with pytest.raises(InvalidName):
            action(name)
    assert tree_snapshot(tmp_path) == before


def test_an_interrupted_action_is_cleared_and_reported_on_start(hive_root):
    with Engine(hive_root, locker="builtin", runtime_options={"stop_grace": 2.0}) as engine:
        engine.install_agent("alpha", agent_files())
        # What a crash in the middle of a restart leaves: the row, and no one holding it.
        with engine.db.write() as t:
            t.set_transient(Transient(agent="alpha", kind="Restarting", since="2026-11-26T09:00:00Z"))
        engine.runtime.stop("alpha")
    with Engine(hive_root, locker="builtin", runtime_options={"stop_grace": 2.0}) as engine:
        try:
            assert [(t.agent, t.kind) for t in engine.interrupted] == [("alpha", "Restarting")]
            assert engine.transients_in_flight() == [] and engine.agent_status("alpha").transient is None
            event = engine.events()[-1]
            assert (event.kind, event.agent, event.status) == ("Interrupted", "alpha", "Restarting")
            engine.restart("alpha")
        finally:
            engine.runtime.stop("alpha")
    with Engine(hive_root, locker="builtin") as engine:
        assert engine.interrupted == []


@pytest.mark.parametrize("outcome", ["deployed", "failed", "spawned"])
def test_an_outcome_is_never_seen_with_its_action_still_in_flight(engine, outcome):
    """Whoever hears an approval resolved finds the agent free: a client that
    acts on it at once is not refused as busy, and no row shows it running."""
    engine.install_agent("alpha", agent_files(build=["sh", "-c", 'test ! -e "$HIVE_AGENT_STATE/fail"']))
    if outcome == "failed":
        (engine.state.agent_state("alpha") / "fail").touch()
    approval = (engine.request_spawn("beta") if outcome == "spawned"
                else propose(engine, "alpha", {"notes.txt": b"more\n"}))
    seen = []

    def listener(item: object) -> None:
        if isinstance(item, Approval) and item.id == approval.id and item.resolved_at is not None:
            seen.append((engine.transients_in_flight(), engine.agent_status(approval.agent).transient))

    engine.subscribe(listener)
    done = engine.approve(approval.id)
    assert done.status == ("failed" if outcome == "failed" else "approved")
    assert seen and all(s == ([], None) for s in seen), seen
