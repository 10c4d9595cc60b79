"""What "true" means for an idle hive: the invariants that crash recovery, a
fault mid-action and concurrent clients must all leave standing."""

from __future__ import annotations

from hive_tui import gitrepo
from hive_tui.engine import Engine


def version(engine: Engine, name: str, rev: str = "refs/heads/main") -> bytes:
    return gitrepo.blob_at(gitrepo.open_repo(engine.state.applied(name)), "version.txt", rev)


def check_invariants(engine: Engine) -> None:
    events = [e for e in engine.events() if e.kind == "ApprovalResolved"]
    resolved = [e.id for e in events]
    assert len(resolved) == len(set(resolved)), f"an approval resolved twice: {resolved}"
    meta_deploys = [c.message.split()[2] for c in engine.meta_log() if c.message.startswith("deploy ")]
    assert len(meta_deploys) == len(set(meta_deploys))
    for a in engine.approvals():
        repo_path = engine.state.applied(a.agent)
        tags = [t.tag for t in engine.history(a.agent) if t.id == a.id] if (repo_path / ".git").is_dir() else []
        terminal = [t for t in tags if t.split("/")[0] in ("deployed", "failed", "denied")]
        if a.status == "pending":
            assert terminal == [], f"approval {a.id} is pending but has {terminal}"
            assert a.id not in resolved
            continue
        assert a.id in resolved, f"approval {a.id} is {a.status} with no ApprovalResolved"
        if a.kind == "apply_commit" and tags:
            assert len(terminal) == 1 and terminal == [a.terminal_tag], (a, tags)
            assert (f"deployed/{a.id}" in meta_deploys) == (a.terminal_tag == f"deployed/{a.id}")
    for name in engine.agents():
        history = engine.history(name)
        states = {(t.id, t.state) for t in history}
        for t in history:
            if t.state == "building":
                assert (t.id, "deployed") in states or (t.id, "failed") in states, f"{t.tag} never ended"
        deployed = [t for t in history if t.state == "deployed"]
        repo = gitrepo.open_repo(engine.state.applied(name))
        main = str(repo.references[gitrepo.MAIN].target)
        if deployed:
            assert main == deployed[-1].sha
        assert engine.meta.locked_rev(name) == main, f"{name}: main and the meta lock disagree"
        # The container runs what the meta lock says is deployed.
        locked = engine.meta.locked_rev(name)
        expected = version(engine, name, locked)
        if expected is not None:  # a spawned agent's template has no version
            running = (engine.state.container(name) / "current" / "version.txt").read_bytes()
            assert running == expected, f"{name} runs {running!r}, not what is locked"
    committed = gitrepo.blob_at(gitrepo.open_repo(engine.state.meta), "flake.lock")
    assert (engine.state.meta / "flake.lock").read_bytes() == committed
    assert sorted(engine.meta.agents()) == sorted(engine.agents())
    assert engine.transients_in_flight() == []
    assert engine.db.transients() == [], "a transient is left in the database"
    assert engine.db.broken() == {}, f"agents left broken: {engine.db.broken()}"
