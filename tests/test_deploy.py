"""The deploy state machine against real repos: tags, main, the working tree,
flake.lock and the meta log, on success and on a failed build."""

from __future__ import annotations

import subprocess
import threading

import pygit2
import pytest

from hive_tui.host import gitrepo
from hive_tui.host.engine import Engine
from hive_tui.errors import Conflict, HiveError, InvalidName, NotFound
from hive_tui.host.flakelock import read_lock
from hive_tui.models import DeployStep

from .helpers import (
    agent_files,
    applied_repo,
    main_sha,
    manager_rebase,
    propose,
    stop_all,
    tag_message,
    tag_sha,
    tree_snapshot,
)

FAILING_BUILD = ["sh", "-c", "echo compiling; echo 'error: attribute model missing' >&2; exit 3"]


@pytest.fixture
def alpha(engine):
    engine.install_agent("alpha", agent_files(build=["sh", "-c", "echo built $HIVE_AGENT"], **{"notes.txt": b"one\n"}))
    return engine


def meta_state(engine):
    return {
        "head": engine.meta_log()[0].sha,
        "log": [c.message for c in engine.meta_log()],
        "working": (engine.state.meta / "flake.lock").read_bytes(),
    }


BOTH_LOCKERS = pytest.mark.parametrize("locker", ["builtin", "nix"])


@BOTH_LOCKERS
def test_successful_deploy_walks_every_step(alpha, locker):
    engine = alpha
    assert engine.locker.name == locker
    seen = []
    engine.subscribe(seen.append)
    before = main_sha(engine, "alpha")
    a = propose(engine, "alpha", {"notes.txt": b"two\n"}, "bump notes")
    target = a.fetched_sha

    done = engine.approve(a.id)

    assert done.status == "approved" and done.terminal_tag == f"deployed/{a.id}"
    for state in ("proposal", "approved", "building", "deployed"):
        assert tag_sha(engine, "alpha", f"{state}/{a.id}") == target
    assert tag_sha(engine, "alpha", f"failed/{a.id}") is None
    assert main_sha(engine, "alpha") == target != before
    # The working tree is exactly the deployed commit, and clean.
    assert (engine.state.applied("alpha") / "notes.txt").read_bytes() == b"two\n"
    assert applied_repo(engine, "alpha").status() == {}
    # Meta: one new commit, locking the new sha, and nothing left staged.
    log = engine.meta_log()
    assert log[0].message == f"deploy alpha deployed/{a.id} {target[:12]}"
    assert engine.meta.locked_rev("alpha") == target
    assert read_lock(engine.state.meta) == engine.meta.committed_lock()
    # The steps, in order, as a watcher saw them.
    steps = [s.step for s in seen if isinstance(s, DeployStep) and s.step != "output"]
    assert steps == ["captured", "tagging", "fast-forward", "meta-prepare", "rebuild", "finalize", "deployed"]
    assert any(s.step == "output" and s.detail == "built alpha" for s in seen if isinstance(s, DeployStep))
    # The manager hears of it once, with the sha and the terminal tag.
    events = [(e.kind, e.id, e.sha, e.tag, e.status) for e in engine.events()]
    assert events == [
        ("Rebuilt", a.id, target, f"deployed/{a.id}", "deployed"),
        ("ApprovalResolved", a.id, target, f"deployed/{a.id}", "approved"),
    ]
    journal = engine.db.deploy_journal(a.id)
    assert journal["step"] == "approved" and journal["finished_at"] and journal["prev_sha"] == before
    # The agent runs from the new checkout.
    row = engine.agent_status("alpha")
    assert row.running and not row.needs_update and row.deployed_sha == target[:12]
    current = engine.state.container("alpha") / "current" / "notes.txt"
    assert current.read_bytes() == b"two\n"


@BOTH_LOCKERS
def test_failed_build_leaves_no_trace_but_its_tag(alpha, locker):
    engine = alpha
    before_main = main_sha(engine, "alpha")
    before_tree = tree_snapshot(engine.state.applied("alpha"))
    before_meta = meta_state(engine)
    pid_before = engine.runtime.run_state("alpha"), (engine.state.container("alpha") / "run.json").read_text()

    a = propose(engine, "alpha", agent_files(build=FAILING_BUILD, **{"notes.txt": b"broken\n", "extra.txt": b"x"}))
    done = engine.approve(a.id)

    assert done.status == "failed" and done.terminal_tag == f"failed/{a.id}"
    assert "build exited with code 3" in done.error and "error: attribute model missing" in done.error
    # failed/<id> at the proposal, annotated with the build error; no deployed tag.
    assert tag_sha(engine, "alpha", f"failed/{a.id}") == a.fetched_sha
    assert tag_message(engine, "alpha", f"failed/{a.id}") == done.error
    assert tag_sha(engine, "alpha", f"deployed/{a.id}") is None
    assert tag_sha(engine, "alpha", f"building/{a.id}") == a.fetched_sha
    # main, the working tree and flake.lock are as they were; the meta log has no new commit.
    assert main_sha(engine, "alpha") == before_main
    assert tree_snapshot(engine.state.applied("alpha")) == before_tree
    assert applied_repo(engine, "alpha").status() == {}
    assert meta_state(engine) == before_meta
    # The old agent keeps running, untouched.
    assert engine.runtime.run_state("alpha").running
    assert (engine.state.container("alpha") / "run.json").read_text() == pid_before[1]
    assert [(e.kind, e.status, e.tag, e.error) for e in engine.events()] == [
        ("Rebuilt", "failed", f"failed/{a.id}", done.error),
        ("ApprovalResolved", "failed", f"failed/{a.id}", done.error),
    ]


@BOTH_LOCKERS
def test_failed_deploy_leaves_agent_evaluable_for_the_next(alpha, locker):
    engine = alpha
    bad = propose(engine, "alpha", agent_files(build=FAILING_BUILD))
    assert engine.approve(bad.id).status == "failed"
    # The manager proposes again on top of main: it deploys.
    manager_rebase(engine, "alpha")
    good = propose(engine, "alpha", {"notes.txt": b"fixed\n"})
    assert engine.approve(good.id).status == "approved"
    assert [c.message.split()[0] for c in engine.meta_log()][:2] == ["deploy", "spawn"]


def test_proposal_that_does_not_descend_from_main_fails_cleanly(alpha):
    engine = alpha
    first = propose(engine, "alpha", {"notes.txt": b"first\n"})
    # A second proposal built on the same base, not on the first.
    repo = gitrepo.open_repo(engine.state.proposed("alpha"))
    repo.create_branch("side", repo[main_sha(engine, "alpha")].peel(pygit2.Commit))
    side_parent = repo.references["refs/heads/side"]
    sig = gitrepo.signature()
    tree = gitrepo.write_tree(repo, {"notes.txt": b"side\n"}, repo[side_parent.target].peel(pygit2.Tree))
    repo.create_commit("refs/heads/side", sig, sig, "side", tree, [side_parent.target])
    second = engine.request_apply_commit("alpha", "side")
    assert engine.approve(first.id).status == "approved"
    before = meta_state(engine)

    done = engine.approve(second.id)

    assert done.status == "failed" and "does not descend from main" in done.error
    assert main_sha(engine, "alpha") == first.fetched_sha
    assert meta_state(engine) == before


@BOTH_LOCKERS
def test_deny_with_note_tags_the_rejected_tree_with_the_reason(alpha, locker):
    engine = alpha
    note = "too risky \x1b]0;pwned\x07 [bold]not markup[/]"
    a = propose(engine, "alpha", {"notes.txt": b"rejected\n"}, "risky change")
    before_main = main_sha(engine, "alpha")

    done = engine.deny(a.id, note)

    assert done.status == "denied" and done.note == note and done.terminal_tag == f"denied/{a.id}"
    assert tag_sha(engine, "alpha", f"denied/{a.id}") == a.fetched_sha
    assert tag_message(engine, "alpha", f"denied/{a.id}") == note
    assert main_sha(engine, "alpha") == before_main
    # `git show denied/<id>` gives the rejected tree and the reason.
    shown = subprocess.run(
        ["git", "-C", str(engine.state.applied("alpha")), "show", f"denied/{a.id}", "--", "notes.txt"],
        capture_output=True, check=True,
    ).stdout
    assert b"too risky" in shown and b"+rejected" in shown
    [event] = engine.events()
    assert (event.kind, event.status, event.tag, event.note, event.sha) == (
        "ApprovalResolved", "denied", f"denied/{a.id}", note, a.fetched_sha)


def test_deny_without_note_leaves_an_empty_annotation(alpha):
    engine = alpha
    a = propose(engine, "alpha", {"notes.txt": b"meh\n"})
    done = engine.deny(a.id)
    assert done.note is None
    assert tag_message(engine, "alpha", f"denied/{a.id}") == ""
    assert engine.events()[0].note is None


def test_spawn_denial_leaves_nothing_behind(engine):
    before = tree_snapshot(engine.state.root)
    a = engine.request_spawn("newbie", "a new agent")
    assert [p.id for p in engine.pending()] == [a.id]

    done = engine.deny(a.id, "not now")

    assert done.status == "denied" and done.terminal_tag is None and done.note == "not now"
    for area in ("applied", "proposed", "agents", "containers"):
        assert not (engine.state.root / area / "newbie").exists()
    assert {k: v for k, v in tree_snapshot(engine.state.root).items() if not k.startswith("hive.db")} == {
        k: v for k, v in before.items() if not k.startswith("hive.db")}
    [event] = engine.events()
    assert (event.kind, event.agent, event.tag, event.note) == ("ApprovalResolved", "newbie", None, "not now")
    assert engine.pending() == []


@BOTH_LOCKERS
def test_spawn_approval_brings_the_agent_in(engine, locker):
    a = engine.request_spawn("newbie")
    done = engine.approve(a.id)
    assert done.status == "approved"
    assert engine.agents() == ["newbie"]
    assert engine.agent_status("newbie").running
    assert engine.meta.locked_rev("newbie") == main_sha(engine, "newbie")
    assert [e.kind for e in engine.events()] == ["Spawned", "ApprovalResolved"]


def test_an_approval_is_resolved_once(alpha):
    engine = alpha
    a = propose(engine, "alpha", {"notes.txt": b"two\n"})
    engine.approve(a.id)
    snapshot = (tree_snapshot(engine.state.applied("alpha")), meta_state(engine), engine.events(),
                sorted(applied_repo(engine, "alpha").references))

    with pytest.raises(Conflict, match="already approved"):
        engine.approve(a.id)
    with pytest.raises(Conflict, match="already approved"):
        engine.deny(a.id, "too late")

    assert snapshot == (tree_snapshot(engine.state.applied("alpha")), meta_state(engine), engine.events(),
                        sorted(applied_repo(engine, "alpha").references))
    b = propose(engine, "alpha", {"notes.txt": b"three\n"})
    engine.deny(b.id)
    with pytest.raises(Conflict, match="already denied"):
        engine.approve(b.id)
    assert engine.approval(b.id).status == "denied"


def test_concurrent_approvals_of_one_id_deploy_once(alpha):
    engine = alpha
    a = propose(engine, "alpha", {"notes.txt": b"race\n"})
    results, errors = [], []
    barrier = threading.Barrier(4)

    def approve():
        barrier.wait()
        try:
            results.append(engine.approve(a.id))
        except Conflict as e:
            errors.append(e)

    threads = [threading.Thread(target=approve) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(results) == 1 and len(errors) == 3
    assert sum(1 for c in engine.meta_log() if c.message.startswith("deploy")) == 1
    assert [e.kind for e in engine.events()] == ["Rebuilt", "ApprovalResolved"]


def test_unknown_approval_and_bad_ids(engine):
    with pytest.raises(NotFound, match="no approval with id 99"):
        engine.approve(99)
    for bad in (0, -1, True, "1"):
        with pytest.raises(HiveError, match="positive integer"):
            engine.deny(bad)


@pytest.mark.parametrize("name", ["..", "../x", "/etc", "a/b", "-rf", "agent1\n", "", "x" * 33, "Alpha", "ä"])
def test_bad_names_are_refused_before_the_disk(engine, name):
    before = tree_snapshot(engine.state.root)
    with pytest.raises(InvalidName):
        engine.request_apply_commit(name, "main")
    with pytest.raises(InvalidName):
        engine.request_spawn(name)
    with pytest.raises(InvalidName):
        engine.history(name)
    assert tree_snapshot(engine.state.root) == before


def test_proposal_refs_and_texts_are_checked(alpha):
    engine = alpha
    with pytest.raises(NotFound, match="no agent named ghost"):
        engine.request_apply_commit("ghost", "main")
    with pytest.raises(NotFound, match="does not name a commit"):
        engine.request_apply_commit("alpha", "no-such-branch")
    for ref in ("--upload-pack=evil", "main\n", "a b", "x" * 300):
        with pytest.raises(HiveError):
            engine.request_apply_commit("alpha", ref)
    for bad in ("nul\0byte", "\udcff", "x" * 70000):
        with pytest.raises(HiveError):
            engine.request_apply_commit("alpha", "main", bad)
    assert engine.approvals() == []
    assert not any(r.startswith("refs/tags/") for r in applied_repo(engine, "alpha").references)


def test_hostile_description_is_stored_verbatim(alpha):
    engine = alpha
    text = "[red]boom[/] \x1b[2J \u202egnirts\u202c\ttab\nsecond line"
    a = propose(engine, "alpha", {"notes.txt": b"x\n"}, text)
    assert engine.approval(a.id).description == text
    assert tag_message(engine, "alpha", f"proposal/{a.id}") == text


def test_stale_ref_lock_is_reported_with_the_file_to_remove(alpha):
    engine = alpha
    a = propose(engine, "alpha", {"notes.txt": b"locked\n"})
    lock = engine.state.applied("alpha") / ".git" / "refs" / "heads" / "main.lock"
    lock.write_text("")
    before = main_sha(engine, "alpha")

    done = engine.approve(a.id)

    assert done.status == "failed"
    assert str(lock) in done.error and "remove that file" in done.error
    assert main_sha(engine, "alpha") == before
    assert tag_sha(engine, "alpha", f"failed/{a.id}") == a.fetched_sha
    assert lock.exists()


def test_rollback_refuses_to_overwrite_a_main_moved_by_someone_else(alpha):
    engine = alpha
    path = engine.state.applied("alpha")
    root = main_sha(engine, "alpha")
    first = propose(engine, "alpha", {"notes.txt": b"two\n"})
    engine.approve(first.id)
    # A build that moves main behind the deploy's back (to the first commit), then fails.
    mover = ["git", "-C", str(path), "update-ref", "refs/heads/main", root]
    a = propose(engine, "alpha", agent_files(build=["sh", "-c", f"{' '.join(mover)} && exit 1"]))

    done = engine.approve(a.id)

    assert done.status == "failed" and done.terminal_tag == f"failed/{a.id}"
    assert "build exited with code 1" in done.error and "rolling back failed too" in done.error
    assert "moved under us" in done.error
    assert main_sha(engine, "alpha") == root


def test_a_hive_inside_a_git_checkout_never_touches_the_outer_repo(tmp_path):
    outer = pygit2.init_repository(str(tmp_path), initial_head="main")
    with Engine(tmp_path / "hive", locker="builtin") as engine:
        engine.state.applied("ghost").mkdir()  # a folder, not a repo
        with pytest.raises(NotFound, match="no applied repo for ghost"):
            engine.history("ghost")
        with pytest.raises(NotFound):
            gitrepo.open_repo(engine.state.applied("ghost"))
    assert list(outer.references) == []


def test_missing_proposal_tag_is_planted_again_from_the_fetched_sha(alpha):
    engine = alpha
    a = propose(engine, "alpha", {"notes.txt": b"two\n"})
    applied_repo(engine, "alpha").references.delete(f"refs/tags/proposal/{a.id}")
    assert engine.approve(a.id).status == "approved"
    assert tag_sha(engine, "alpha", f"proposal/{a.id}") == a.fetched_sha


def test_events_are_durable_and_ordered(hive_root):
    engine = Engine(hive_root, locker="builtin")
    try:
        engine.install_agent("alpha", agent_files())
        a = propose(engine, "alpha", {"notes.txt": b"two\n"})
        b = propose(engine, "alpha", {"notes.txt": b"three\n"})
        engine.deny(a.id, "no")
        engine.approve(b.id)
        seen = engine.events()
        assert [e.seq for e in seen] == sorted(e.seq for e in seen) and len(seen) == 3
        assert engine.events(since=seen[0].seq) == seen[1:]
    finally:
        stop_all(engine)
        engine.close()
    with Engine(hive_root, locker="builtin") as again:
        assert again.events() == seen


def test_status_rows_are_derived(alpha):
    engine = alpha
    agent_dir = engine.state.agent_state("alpha")
    (agent_dir / "status.json").write_text(
        '{"text": "thinking", "set_at": "2026-01-01T00:00:00Z", "model": "opus", "needs_login": true}')
    (agent_dir / "paused").touch()
    row = engine.agent_status("alpha")
    assert (row.running, row.needs_login, row.paused, row.status_text, row.active_model) == (
        True, True, True, "thinking", "opus")
    # A commit on main the meta lock does not hold yet: needs_update.
    gitrepo.commit_files(applied_repo(engine, "alpha"), {"new.txt": b"n"}, "out of band")
    assert engine.agent_status("alpha").needs_update
    # A stopped agent's status text is stale: not shown.
    engine.runtime.stop("alpha")
    row = engine.agent_status("alpha")
    assert not row.running and row.status_text is None and row.status_set_at is None
    for junk in ("{not json", "[" * 100000, '{"model": "' + "x" * 70000 + '"}', '{"model": 5}'):
        (agent_dir / "status.json").write_text(junk)
        assert engine.agent_status("alpha").active_model is None


def test_a_deploy_waits_for_the_disk_only_where_recovery_tells_steps_apart(alpha):
    engine = alpha
    a = propose(engine, "alpha", agent_files(**{"notes.txt": b"two\n"}))
    statements: list[str] = []
    engine.db._conn.set_trace_callback(statements.append)
    try:
        assert engine.approve(a.id).status == "approved"
    finally:
        engine.db._conn.set_trace_callback(None)
    # Each transaction, with whether its commit waited for the disk and what it wrote.
    transactions, durable, wrote = [], True, []
    for sql in statements:
        if sql == "PRAGMA synchronous=NORMAL":
            durable = False
        elif sql == "BEGIN IMMEDIATE":
            wrote = []
        elif sql == "COMMIT":
            transactions.append((durable, wrote))
            durable = True
        elif sql.split()[0] in ("INSERT", "UPDATE", "DELETE"):
            wrote.append(sql)
    assert len(transactions) <= 8
    # Claim, capture, rebuild, finalize, outcome: on disk before the next step.
    assert sum(d for d, _ in transactions) == 5
    lazy = [w for d, ws in transactions if not d for w in ws]
    assert lazy and all(w.startswith("UPDATE deploys SET step = ") or w.startswith("INSERT OR REPLACE INTO transients")
                        for w in lazy)
    # The transient row is made durable by the capture, the first durable commit after it.
    first_lazy = next(i for i, (d, _) in enumerate(transactions) if not d)
    assert any("INTO deploys" in w for w in transactions[first_lazy + 1][1]) and transactions[first_lazy + 1][0]
    assert not any("'rebuild'" in w or "'finalize'" in w for w in lazy)
