"""Working trees the engine writes (applied/<name> and the containers'
checkouts) never write through a symlink, whatever the trees hold, and a
tree that cannot be written safely is refused as a failed deploy."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pygit2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pygit2.enums import ObjectType

from hive_tui.host import gitrepo
from hive_tui.host.engine import Engine
from hive_tui.errors import HiveError
from hive_tui.host.template import agent_yaml

from .helpers import IDLE, applied_repo, main_sha, stop_all, tag_sha, tree_snapshot

FAILING_BUILD = ["sh", "-c", "exit 3"]

# A tree spec: name -> bytes (a file), Link(target), or a nested spec (a directory).


class Link(str):
    """A symlink entry in a tree spec; the string is its target, where `{up}`
    stands for one `../` per folder the link sits below the tree's top."""

    def at(self, depth: int) -> str:
        return self.replace("{up}", "../" * depth)


def write_spec(repo: pygit2.Repository, spec: dict, depth: int = 0) -> pygit2.Oid:
    """The tree of `spec`, written as raw bytes so that it may hold names
    libgit2's tree builder refuses (`.git`)."""
    entries = []
    for name, value in spec.items():
        if isinstance(value, dict):
            entries.append((0o40000, name.encode(), write_spec(repo, value, depth + 1)))
        elif isinstance(value, Link):
            entries.append((0o120000, name.encode(), repo.create_blob(os.fsencode(value.at(depth)))))
        elif isinstance(value, pygit2.Oid):
            entries.append((0o100644, name.encode(), value))
        else:
            entries.append((0o100644, name.encode(), repo.create_blob(value)))
    # git's order: a tree sorts as if its name ended in '/'.
    entries.sort(key=lambda e: e[1] + (b"/" if e[0] == 0o40000 else b""))
    return raw_tree(repo, entries)


def raw_tree(repo: pygit2.Repository, entries: list[tuple[int, bytes, pygit2.Oid]]) -> pygit2.Oid:
    """A tree object written byte for byte, as a hostile repo could hold it."""
    body = b"".join(b"%o %s\0" % (mode, name) + oid.raw for mode, name, oid in entries)
    return repo.odb.write(ObjectType.TREE, body)


def propose_tree(engine: Engine, name: str, tree_of, build: list[str] | None) -> int:
    """Commit a whole tree on top of the applied main in the proposed repo, as
    the manager would, and ask for it; `tree_of(repo)` writes the tree and
    gets the agent.yaml blob to put at its top."""
    repo = gitrepo.open_repo(engine.state.proposed(name))
    conf = repo.create_blob(agent_yaml(IDLE, build))
    tree = tree_of(repo, conf)
    parent = pygit2.Oid(hex=main_sha(engine, name))
    sig = gitrepo.signature()
    oid = repo.create_commit(None, sig, sig, "change", tree, [parent])
    # The manager moves its own main; its working tree does not matter here.
    repo.references.create(gitrepo.MAIN, oid, force=True)
    return engine.request_apply_commit(name, "main", "change").id


def propose_spec(engine: Engine, name: str, spec: dict, build: list[str] | None = None) -> int:
    return propose_tree(engine, name, lambda repo, conf: write_spec(repo, {**spec, "agent.yaml": conf}), build)


def spec_snapshot(spec: dict, prefix: str = "", depth: int = 0) -> dict:
    """What tree_snapshot shows of a checkout of `spec`: as with git, a
    directory that holds no file or link is not written."""
    snap: dict = {}
    for name, value in spec.items():
        path = prefix + name
        if isinstance(value, dict):
            inner = spec_snapshot(value, path + "/", depth + 1)
            if inner:
                snap[path] = "dir"
                snap.update(inner)
        elif isinstance(value, Link):
            snap[path] = "-> " + value.at(depth)
        else:
            snap[path] = value
    return snap


def applied_snapshot(engine: Engine, name: str) -> dict:
    snap = tree_snapshot(engine.state.applied(name))
    snap.pop("agent.yaml")
    return snap


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the state root that no checkout may write into."""
    canary = tmp_path / "outside"
    (canary / "sub").mkdir(parents=True)
    (canary / "keep.txt").write_bytes(b"keep\n")
    (canary / "sub" / "f.txt").write_bytes(b"canary\n")
    return canary


@pytest.fixture
def alpha(engine: Engine) -> Engine:
    engine.install_agent("alpha", {"agent.yaml": agent_yaml(IDLE)})
    return engine


def test_directory_turned_symlink_is_never_written_through(alpha, outside):
    engine = alpha
    before = tree_snapshot(outside)
    first = propose_spec(engine, "alpha", {"d": {"f.txt": b"inside\n"}})
    assert engine.approve(first).status == "approved"

    second = propose_spec(engine, "alpha", {"d": Link(str(outside))}, build=FAILING_BUILD)
    done = engine.approve(second)

    assert done.status == "failed" and "build exited with code 3" in done.error
    assert tree_snapshot(outside) == before
    # Rolled back: the applied tree and its index are the first commit's again.
    assert applied_snapshot(engine, "alpha") == {"d": "dir", "d/f.txt": b"inside\n"}
    assert applied_repo(engine, "alpha").status() == {}
    assert not (engine.state.applied("alpha") / "d").is_symlink()


def test_symlink_turned_directory_is_never_written_through(alpha, outside):
    engine = alpha
    before = tree_snapshot(outside)
    first = propose_spec(engine, "alpha", {"d": Link(str(outside))})
    assert engine.approve(first).status == "approved"
    assert os.readlink(engine.state.applied("alpha") / "d") == str(outside)

    second = propose_spec(engine, "alpha", {"d": {"f.txt": b"inside\n", "sub": {"f.txt": b"x"}}},
                          build=FAILING_BUILD)
    done = engine.approve(second)

    assert done.status == "failed" and "build exited with code 3" in done.error
    assert tree_snapshot(outside) == before
    assert applied_snapshot(engine, "alpha") == {"d": "-> " + str(outside)}
    assert applied_repo(engine, "alpha").status() == {}

    # The same change that builds replaces the link by a real directory.
    third = propose_spec(engine, "alpha", {"d": {"f.txt": b"inside\n"}})
    assert engine.approve(third).status == "approved"
    assert tree_snapshot(outside) == before
    assert applied_snapshot(engine, "alpha") == {"d": "dir", "d/f.txt": b"inside\n"}
    current = engine.state.container("alpha") / "current"
    assert (current / "d" / "f.txt").read_bytes() == b"inside\n" and not (current / "d").is_symlink()


@pytest.mark.parametrize("spec, reason", [
    ({"d": {".git": {"config": b"[core]\n"}}}, "d/.git"),
    ({".GIT": {"hooks": {"post-checkout": b"#!/bin/sh\n"}}}, ".GIT"),
    ({".git": b"gitdir: /elsewhere\n"}, ".git"),
    ({"d": {"e": {".Git": Link("/")}}}, "d/e/.Git"),
    ({"d": {"GIT~1": {"config": b""}}}, "d/GIT~1"),
    ({"d": {".git. ": {"config": b""}}}, "d/.git. "),
])
def test_a_tree_holding_git_is_refused_as_a_failed_deploy(alpha, outside, spec, reason):
    engine = alpha
    before_outside = tree_snapshot(outside)
    before_applied = tree_snapshot(engine.state.applied("alpha"))
    before_main = main_sha(engine, "alpha")
    gitdir = tree_snapshot(engine.state.applied("alpha") / ".git" / "refs" / "heads")

    id = propose_spec(engine, "alpha", {**spec, "d2": Link(str(outside))})
    done = engine.approve(id)

    assert done.status == "failed" and done.terminal_tag == f"failed/{id}"
    assert f"refusing to write {reason!r}" in done.error and "git" in done.error.lower()
    assert tag_sha(engine, "alpha", f"deployed/{id}") is None
    assert main_sha(engine, "alpha") == before_main
    assert tree_snapshot(engine.state.applied("alpha")) == before_applied
    assert applied_repo(engine, "alpha").status() == {}
    assert tree_snapshot(engine.state.applied("alpha") / ".git" / "refs" / "heads") == gitdir
    assert tree_snapshot(outside) == before_outside


def _deep(repo: pygit2.Repository, blob: pygit2.Oid, levels: int) -> list:
    tree = raw_tree(repo, [(0o100644, b"x", blob)])
    for _ in range(levels - 1):
        tree = raw_tree(repo, [(0o40000, b"d", tree)])
    return [(0o40000, b"d", tree)]


# Trees git itself never writes, as a crafted object can hold them; each with
# the words its refusal must hold.
HOSTILE = {
    "a symlink and a directory": lambda repo, blob, link, sub: [(0o120000, b"d", link), (0o40000, b"d", sub)],
    "twice": lambda repo, blob, link, sub: [(0o100644, b"d", blob), (0o100644, b"d", blob)],
    "differs only by case": lambda repo, blob, link, sub: [(0o100644, b"README", blob), (0o100644, b"readme", blob)],
    "'/'": lambda repo, blob, link, sub: [(0o100644, b"d/x", blob)],
    "'..'": lambda repo, blob, link, sub: [(0o40000, b"..", sub)],
    "'.'": lambda repo, blob, link, sub: [(0o40000, b".", sub)],
    "symlink's target": lambda repo, blob, link, sub: [(0o120000, b"e", repo.create_blob(b""))],
    "nest deeper": lambda repo, blob, link, sub: _deep(repo, blob, 70),
    "is a tree, not": lambda repo, blob, link, sub: [(0o100644, b"f", sub)],
}


@pytest.mark.parametrize("what", HOSTILE)
def test_a_tree_that_cannot_be_written_safely_is_refused_whole(tmp_path, outside, what):
    """Nothing of such a tree reaches the disk, and the index is left as it was."""
    repo = pygit2.init_repository(str(tmp_path / "r"), initial_head="main")
    sig = gitrepo.signature()
    base = repo.create_commit(gitrepo.MAIN, sig, sig, "base", gitrepo.write_tree(repo, {"keep.txt": b"kept\n"}), [])
    gitrepo.sync_worktree(repo, base)
    blob = repo.create_blob(b"x\n")
    entries = HOSTILE[what](repo, blob, repo.create_blob(b"/"), raw_tree(repo, [(0o100644, b"x", blob)]))
    # A link to the outside first, so a writer that went on would follow it.
    tree = raw_tree(repo, [(0o120000, b"a", repo.create_blob(os.fsencode(outside))), *entries])
    commit = repo.create_commit(None, sig, sig, "hostile", tree, [base])
    before = tree_snapshot(tmp_path / "r"), tree_snapshot(outside)
    index_before = (tmp_path / "r" / ".git" / "index").read_bytes()

    with pytest.raises(HiveError, match="refusing to write .*" + re.escape(what)):
        gitrepo.sync_worktree(repo, commit)
    with pytest.raises(HiveError, match="refusing to write .*" + re.escape(what)):
        gitrepo.export_tree(repo, commit, tmp_path / "export")

    assert (tree_snapshot(tmp_path / "r"), tree_snapshot(outside)) == before
    assert (tmp_path / "r" / ".git" / "index").read_bytes() == index_before
    assert not (tmp_path / "export").exists()


def test_a_submodule_is_an_empty_folder_as_git_writes_it(tmp_path):
    repo = pygit2.init_repository(str(tmp_path / "r"), initial_head="main")
    sig = gitrepo.signature()
    first = repo.create_commit(gitrepo.MAIN, sig, sig, "c", gitrepo.write_tree(repo, {"a.txt": b"a\n"}), [])
    (tmp_path / "r" / "m").symlink_to(tmp_path)
    tree = raw_tree(repo, [(0o100644, b"a.txt", repo.create_blob(b"a\n")), (0o160000, b"m", first)])
    second = repo.create_commit(gitrepo.MAIN, sig, sig, "c", tree, [first])

    gitrepo.sync_worktree(repo, second)

    assert tree_snapshot(tmp_path / "r") == {"a.txt": b"a\n", "m": "dir"}
    assert repo.status() == {}
    assert repo.index["m"].mode == 0o160000


def test_stale_entries_are_removed_without_following_links(tmp_path, outside):
    """Untracked leftovers are removed as what they are: a link is unlinked,
    never the folder it points at."""
    repo = pygit2.init_repository(str(tmp_path / "r"), initial_head="main")
    sig = gitrepo.signature()
    commit = repo.create_commit(gitrepo.MAIN, sig, sig, "c", gitrepo.write_tree(repo, {"a.txt": b"a\n"}), [])
    work = tmp_path / "r"
    (work / "sub").symlink_to(outside / "sub")
    (work / "top").symlink_to(outside)
    (work / "dir" / "deeper").mkdir(parents=True)
    (work / "dir" / "deeper" / "link").symlink_to(outside)
    (work / "dir" / "deeper" / "file").write_bytes(b"stale")
    before = tree_snapshot(outside)

    gitrepo.sync_worktree(repo, commit)

    assert tree_snapshot(work) == {"a.txt": b"a\n"}
    assert repo.status() == {}
    assert tree_snapshot(outside) == before


# -- the property: no sequence of trees writes outside the state root -------

# Few names, so that a link in one tree often meets a folder of the same
# name in the next, and a write through it would land on the canary's own.
NAMES = ["d", "sub", "f.txt"]


def link_targets(canary: Path) -> list[str]:
    # Absolute links, and relative ones that climb from where they sit to the
    # folder holding the canary and the state root, counted for applied/<name>/
    # (3 levels down) and for containers/<name>/next/ (4). A climb counted for
    # the wrong one ends one level higher, still inside the test's folder,
    # so that even a checkout that follows links writes nowhere else.
    absolute = [str(canary), str(canary / "sub"), str(canary / "d")]
    relative = [f"{{up}}{'../' * n}{canary.name}{rest}" for n in (3, 4) for rest in ("", "/d")]
    return [*absolute, *relative, ".", "..", "sub"]


def specs(targets: list[str]):
    leaf = st.one_of(st.binary(max_size=4), st.sampled_from(targets).map(Link))
    return st.recursive(
        leaf, lambda children: st.dictionaries(st.sampled_from(NAMES), children, min_size=1, max_size=3),
        max_leaves=6,
    ).filter(lambda t: isinstance(t, dict))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_no_sequence_of_deploys_writes_outside_the_state_root(tmp_path, data):
    canary = tmp_path / "jail" / "canary"
    if not canary.exists():
        (canary / "sub" / "d").mkdir(parents=True)
        (canary / "d" / "sub").mkdir(parents=True)
        (canary / "f.txt").write_bytes(b"canary\n")
        (canary / "sub" / "f.txt").write_bytes(b"canary sub\n")
        (canary / "sub" / "d" / "keep.txt").write_bytes(b"deep\n")
    before = tree_snapshot(canary)
    root = tmp_path / "jail" / "hive"
    shutil.rmtree(root, ignore_errors=True)
    engine = Engine(root, locker="builtin", runtime_options={"stop_grace": 2.0})
    try:
        engine.install_agent("alpha", {"agent.yaml": agent_yaml(IDLE)})
        steps = data.draw(st.lists(st.tuples(specs(link_targets(canary)), st.booleans()), min_size=1, max_size=5))
        deployed = {}
        for spec, builds in steps:
            done = engine.approve(propose_spec(engine, "alpha", spec, None if builds else FAILING_BUILD))
            assert done.status == ("approved" if builds else "failed"), done.error
            if builds:
                deployed = spec
            # The applied tree and its index are exactly the deployed commit.
            assert applied_snapshot(engine, "alpha") == spec_snapshot(deployed)
            assert applied_repo(engine, "alpha").status() == {}
            assert tree_snapshot(canary) == before
    finally:
        stop_all(engine)
        engine.close()
