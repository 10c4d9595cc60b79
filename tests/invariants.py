"""What "true" means for an idle hive: the invariants that crash recovery, a
fault mid-action and concurrent clients must all leave standing."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from hive_tui.host import gitrepo
from hive_tui.host.fsutil import read_json
from hive_tui.host.engine import Engine


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
    check_meta_names_the_hive(engine)
    check_working_meta_is_committed(engine)
    check_no_orphaned_process(engine)


def check_meta_names_the_hive(engine: Engine) -> None:
    """The committed flake.nix and flake.lock name exactly the hive's agents,
    each locked at the applied main it deployed."""
    repo = gitrepo.open_repo(engine.state.meta)
    agents = sorted(engine.agents())
    nodes = json.loads(gitrepo.blob_at(repo, "flake.lock"))["nodes"]
    assert sorted(n[len("agent-"):] for n in nodes if n.startswith("agent-")) == agents, \
        f"the committed lock names {sorted(nodes)}, the hive has {agents}"
    flake = gitrepo.blob_at(repo, "flake.nix").decode()
    assert sorted(re.findall(r"^    agent-(\S+) = \{", flake, re.M)) == agents, "flake.nix names other agents"
    for name in agents:
        main = str(gitrepo.open_repo(engine.state.applied(name)).references[gitrepo.MAIN].target)
        assert nodes[f"agent-{name}"]["locked"]["rev"] == main, f"{name} is locked at another sha than its main"


def check_working_meta_is_committed(engine: Engine) -> None:
    """Nothing is staged in the meta flake once the hive is idle."""
    repo = gitrepo.open_repo(engine.state.meta)
    for name in ("flake.nix", "flake.lock"):
        assert (engine.state.meta / name).read_bytes() == gitrepo.blob_at(repo, name), f"working {name} differs"


def check_no_orphaned_process(engine: Engine) -> None:
    """Every process working in the hive's folders is a running agent's, in the
    session of the supervisor its run.json records, in its current checkout."""
    root = engine.state.root.resolve()
    agents = set(engine.agents())
    for pid, cwd, session in processes_in(root):
        rel = cwd.relative_to(root).parts if cwd.is_relative_to(root) else ("?",)
        owner = rel[1] if len(rel) >= 2 and rel[0] == "containers" else None
        run = read_json(engine.state.container(owner) / "run.json") if owner in agents else None
        assert rel[2:3] == ("current",) and run is not None and run.get("pid") == session, \
            f"process {pid} in {cwd} belongs to no running agent"


def processes_in(root: Path) -> list[tuple[int, Path, int]]:
    """(pid, working folder, session id) of each process working under `root`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            # The session is the 6th field; the command name before it may hold spaces.
            session = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3])
        except (OSError, ValueError, IndexError):
            continue
        if cwd == root or root in cwd.parents:
            found.append((int(entry.name), cwd, session))
    return found
