"""Destroy and purge against links planted in the state root: a purge removes
the agent's own entries and never follows a link to anything else, and a
purge it refuses changes nothing at all."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from hive_tui.errors import HiveError, NotFound

from .helpers import agent_files, propose, wait_for


def full_snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes | str]:
    """Every entry under `root`, .git folders included, links read and never followed."""
    snap: dict[str, bytes | str] = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(top) / name
            rel = str(path.relative_to(root))
            if any(rel == s or rel.startswith(s + "/") for s in skip):
                continue
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                snap[rel] = "-> " + os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                snap[rel] = path.read_bytes()
            else:
                snap[rel] = f"mode {stat.S_IFMT(st.st_mode):o}"
        dirs[:] = [d for d in dirs if not (Path(top) / d).is_symlink()]
    return snap


# What a purge of alpha may change: alpha's own entries, the meta flake it
# renders again and the database that records the event.
ALPHAS = tuple(f"hive/{area}/alpha" for area in ("applied", "proposed", "agents", "containers"))
MAY_CHANGE = (*ALPHAS, "hive/meta", "hive/hive.db", "hive/hive.db-wal", "hive/hive.db-shm", "hive/hive.lock")


@pytest.fixture
def two_agents(engine):
    engine.install_agent("alpha", agent_files())
    engine.install_agent("beta", agent_files())
    engine.approve(propose(engine, "beta", {"notes.txt": b"beta's history"}, "v2").id)
    (engine.state.agent_state("beta") / "credentials").write_text("beta's secret")
    engine.stop("alpha")
    engine.stop("beta")
    return engine


def _start(engine, name: str) -> None:
    """Start a stopped agent, and wait for its first line so its log is still when snapshotted."""
    log = engine.state.container(name) / "log"
    started = log.read_text().count(f"{name} started")
    engine.start(name)
    wait_for(lambda: log.read_text().count(f"{name} started") > started, what=f"{name}'s first line")


def _plant(engine, tmp_path: Path, area: str, where: str) -> Path:
    """Move alpha's entry in `area` aside and put a link to `where` in its place."""
    target = {"inside": engine.state.root / area / "beta", "outside": tmp_path / "outside"}[where]
    target.mkdir(exist_ok=True)
    (tmp_path / "outside" / "keep.txt").write_text("not the hive's")
    entry = engine.state.root / area / "alpha"
    shutil.move(entry, tmp_path / f"moved-{area}")
    entry.symlink_to(target)
    return entry


@pytest.mark.parametrize("where", ["inside", "outside"])
@pytest.mark.parametrize("area", ["applied", "proposed", "agents", "containers"])
def test_purge_removes_a_linked_entry_and_never_what_it_points_to(two_agents, tmp_path, area, where):
    engine = two_agents
    (tmp_path / "outside").mkdir()
    entry = _plant(engine, tmp_path, area, where)
    before = full_snapshot(tmp_path, skip=MAY_CHANGE)

    engine.destroy("alpha", purge=True)

    assert not os.path.lexists(entry), "the link itself goes"
    for other in ALPHAS:
        assert not os.path.lexists(tmp_path / other)
    assert full_snapshot(tmp_path, skip=MAY_CHANGE) == before
    assert engine.agents() == ["beta"] and engine.meta.agents() == ["beta"]
    assert [t.tag for t in engine.history("beta")][-1].startswith("deployed/")
    assert (engine.events()[-1].kind, engine.events()[-1].status) == ("Destroyed", "purged")


@pytest.mark.parametrize("where", ["inside", "outside"])
def test_a_destroy_never_acts_on_a_container_reached_through_a_link(two_agents, tmp_path, where):
    engine = two_agents
    _start(engine, "beta")
    (tmp_path / "outside").mkdir()
    _plant(engine, tmp_path, "containers", where)
    before = full_snapshot(tmp_path, skip=("hive/hive.db", "hive/hive.db-wal", "hive/hive.db-shm"))
    events = engine.events()

    with pytest.raises(NotFound):
        engine.destroy("alpha")

    assert engine.agent_status("beta").running
    assert full_snapshot(tmp_path, skip=("hive/hive.db", "hive/hive.db-wal", "hive/hive.db-shm")) == before
    assert engine.events() == events


@pytest.mark.parametrize("area, target", [
    ("proposed", "outside"),   # the area itself leads out of the root
    ("agents", "applied"),     # or to another area inside it
])
def test_a_refused_purge_changes_nothing(two_agents, tmp_path, area, target):
    engine = two_agents
    _start(engine, "alpha")
    folder = engine.state.root / area
    if target == "outside":
        shutil.move(folder, tmp_path / "outside")
        folder.symlink_to(tmp_path / "outside")
    else:
        shutil.move(folder, tmp_path / f"moved-{area}")
        folder.symlink_to(engine.state.root / target)
    db = ("hive/hive.db", "hive/hive.db-wal", "hive/hive.db-shm")
    before = full_snapshot(tmp_path, skip=db)
    events = engine.events()

    with pytest.raises(HiveError, match=f"{area}.*symbolic link.*nothing was destroyed"):
        engine.destroy("alpha", purge=True)

    assert full_snapshot(tmp_path, skip=db) == before
    assert engine.events() == events
    assert engine.agents() == ["alpha", "beta"] and engine.runtime.run_state("alpha").running
