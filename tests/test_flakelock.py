"""The two lockers write the same flake.lock, byte for byte, with the real Nix."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pygit2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pygit2.enums import FileMode

from hive_tui.host import gitrepo
from hive_tui.errors import HiveError
from hive_tui.host.flakelock import BuiltinLocker, NixLocker, dump_lock, empty_lock, locked_rev, make_locker
from hive_tui.host.stateroot import StateRoot
from hive_tui.host.meta import input_name, render_flake


def tricky_repo(path: Path) -> None:
    """A repo whose tree exercises every corner of the NAR encoding."""
    gitrepo.init_repo(path, {
        "a-b": b"dash sorts before slash in git, after in NAR\n",
        "a/c": b"in a folder\n",
        "deep/er/still/file.txt": b"nested\n",
        "empty": b"",
        "big.bin": bytes(range(256)) * 4096,
    }, "first")
    repo = gitrepo.open_repo(path)
    head = repo.references[gitrepo.MAIN].peel(pygit2.Commit)
    builder = repo.TreeBuilder(head.tree)
    builder.insert("run.sh", repo.create_blob(b"#!/bin/sh\necho hi\n"), FileMode.BLOB_EXECUTABLE)
    builder.insert("link", repo.create_blob(b"a-b"), FileMode.LINK)
    builder.insert("vendored", head.id, FileMode.COMMIT)  # a submodule's gitlink
    sig = gitrepo.signature()
    repo.create_commit(gitrepo.MAIN, sig, sig, "second", builder.write(), [head.id])


def make_meta(state: StateRoot, agents: list[str]) -> Path:
    """A meta repo holding the rendered flake.nix, staged as Nix needs it."""
    meta = state.meta
    if not (meta / ".git").exists():
        pygit2.init_repository(str(meta), initial_head="main")
    (meta / "flake.nix").write_text(render_flake(state, agents, "x86_64-linux"))
    gitrepo.stage(gitrepo.open_repo(meta), ["flake.nix"])
    return meta


def lock_both(meta: Path, inputs: dict[str, Path], update: str | None = None) -> tuple[bytes, bytes]:
    """Lock from the same starting flake.lock with each locker; return both results."""
    lock = meta / "flake.lock"
    start = lock.read_bytes() if lock.exists() else None
    NixLocker().lock(meta, inputs, update)
    by_nix = lock.read_bytes()
    if start is None:
        lock.unlink()
    else:
        lock.write_bytes(start)
    BuiltinLocker().lock(meta, inputs, update)
    return by_nix, lock.read_bytes()


@pytest.fixture
def state(tmp_path: Path) -> StateRoot:
    s = StateRoot(tmp_path / "state")
    s.create()
    s.meta.mkdir()
    return s


def test_lockers_agree_byte_for_byte_through_a_hive_s_life(nix_env, state):
    tricky_repo(state.applied("alpha"))
    gitrepo.init_repo(state.applied("beta"), {"agent.yaml": b"run: [x]\n"}, "beta")
    inputs = {input_name(a): state.applied(a) for a in ("alpha", "beta")}
    meta = make_meta(state, ["alpha", "beta"])

    nix, builtin = lock_both(meta, inputs)
    assert nix == builtin
    assert b'"revCount": 2' in builtin and b'"flake": false' in builtin

    # New commits on both repos; only alpha is updated, beta's node is kept as it was.
    for name in ("alpha", "beta"):
        gitrepo.commit_files(gitrepo.open_repo(state.applied(name)), {"more.txt": name.encode()}, "more")
    nix, builtin = lock_both(meta, inputs, update="agent-alpha")
    assert nix == builtin
    lock = json.loads(builtin)
    assert locked_rev(lock, "agent-alpha") == str(gitrepo.open_repo(state.applied("alpha")).head.target)
    assert locked_rev(lock, "agent-beta") != str(gitrepo.open_repo(state.applied("beta")).head.target)

    # An input dropped from the flake loses its node; a new one gains one.
    del inputs["agent-beta"]
    meta = make_meta(state, ["alpha"])
    assert lock_both(meta, inputs)[0] == lock_both(meta, inputs)[1]
    gitrepo.init_repo(state.applied("gamma"), {"agent.yaml": b"run: [y]\n"}, "gamma")
    inputs["agent-gamma"] = state.applied("gamma")
    meta = make_meta(state, ["alpha", "gamma"])
    nix, builtin = lock_both(meta, inputs)
    assert nix == builtin and b"agent-gamma" in builtin and b"agent-beta" not in builtin


def test_lockers_agree_on_a_repo_path_with_a_space(nix_env, tmp_path):
    spaced = StateRoot(tmp_path / "with space" / "state")
    spaced.create()
    tricky_repo(spaced.applied("alpha"))
    meta_state = StateRoot(tmp_path / "meta-root")  # Nix refuses a flake folder with a space
    meta_state.create()
    meta = meta_state.meta
    pygit2.init_repository(str(meta), initial_head="main")
    (meta / "flake.nix").write_text(render_flake(spaced, ["alpha"], "x86_64-linux"))
    gitrepo.stage(gitrepo.open_repo(meta), ["flake.nix"])
    nix, builtin = lock_both(meta, {"agent-alpha": spaced.applied("alpha")})
    assert nix == builtin and b"with%20space" in builtin


def test_a_flake_with_no_agents_keeps_the_empty_lock(nix_env, state):
    meta = make_meta(state, [])
    (meta / "flake.lock").write_text(dump_lock(empty_lock()))
    nix, builtin = lock_both(meta, {})
    assert nix == builtin == dump_lock(empty_lock()).encode()


def fake_nix(tmp_path: Path, version: str, body: str = "") -> Path:
    """A stand-in `nix` that records its argv, answers --version, and runs `body`."""
    script = tmp_path / "bin" / "nix"
    script.parent.mkdir(exist_ok=True)
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> "{tmp_path}/argv"\n'
        f'if [ "$1" = --version ]; then echo "nix (Nix) {version}"; exit 0; fi\n'
        f"{body}\n"
    )
    script.chmod(0o755)
    return script


def recorded(tmp_path: Path) -> list[str]:
    return (tmp_path / "argv").read_text().splitlines()


def test_nix_2_19_and_later_spell_an_update_flake_update(tmp_path):
    nix = fake_nix(tmp_path, "2.24.3")
    NixLocker(nix=str(nix)).lock(tmp_path, {}, "agent-alpha")
    NixLocker(nix=str(nix)).lock(tmp_path, {})
    assert recorded(tmp_path) == [
        "--version",
        "--extra-experimental-features nix-command flakes flake update agent-alpha",
        "--extra-experimental-features nix-command flakes flake lock",
    ]


def test_older_nix_updates_with_update_input(tmp_path):
    nix = fake_nix(tmp_path, "2.8.0")
    NixLocker(nix=str(nix)).lock(tmp_path, {}, "agent-alpha")
    assert recorded(tmp_path)[1] == "--extra-experimental-features nix-command flakes flake lock --update-input agent-alpha"


def test_the_installed_nix_is_asked_the_right_way(nix_env):
    locker = NixLocker()
    expected = ["flake", "update"] if locker.version() >= (2, 19) else ["flake", "lock", "--update-input"]
    assert locker.argv("agent-x") == ["--extra-experimental-features", "nix-command flakes", *expected, "agent-x"]


def test_a_failing_nix_reports_its_stderr(tmp_path):
    nix = fake_nix(tmp_path, "2.8.0", 'echo "error: cannot fetch input" >&2; exit 1')
    with pytest.raises(HiveError, match=r"failed \(exit 1\):\nerror: cannot fetch input"):
        NixLocker(nix=str(nix)).lock(tmp_path, {}, "agent-alpha")


def test_a_hanging_nix_is_bounded(tmp_path):
    nix = fake_nix(tmp_path, "2.8.0", "exec sleep 600")
    with pytest.raises(HiveError, match="timed out after 1s"):
        NixLocker(nix=str(nix), timeout=1).lock(tmp_path, {}, "agent-alpha")


def test_make_locker_picks_by_name_and_by_path(tmp_path, monkeypatch):
    assert make_locker("builtin").name == "builtin"
    assert make_locker("nix").name == "nix"
    monkeypatch.setenv("PATH", str(tmp_path))
    assert make_locker("auto").name == "builtin"
    fake_nix(tmp_path, "2.8.0").rename(tmp_path / "nix")
    assert make_locker("auto").name == "nix"
    with pytest.raises(HiveError, match="unknown locker 'guix'"):
        make_locker("guix")
    assert os.environ["PATH"] == str(tmp_path)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), _JSON, max_size=6), st.dictionaries(st.text(), _JSON, max_size=3))
def test_dump_lock_is_json_dumps_byte_for_byte(nodes, top):
    lock = {**top, "nodes": nodes}
    expected = json.dumps(lock, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    # Twice: the second dump reuses the nodes' texts.
    assert dump_lock(lock) == expected and dump_lock(lock) == expected


def test_an_input_locked_alone_is_the_node_the_whole_flake_locks(nix_env, state):
    tricky_repo(state.applied("alpha"))
    gitrepo.init_repo(state.applied("beta"), {"agent.yaml": b"run: [x]\n"}, "beta")
    inputs = {input_name(a): state.applied(a) for a in ("alpha", "beta")}
    meta = make_meta(state, ["alpha", "beta"])
    nix, builtin = lock_both(meta, inputs)
    whole = json.loads(nix)["nodes"]
    for name, repo in inputs.items():
        assert NixLocker().lock_alone(name, repo) == BuiltinLocker().lock_alone(name, repo) == whole[name]
    # Nothing of the meta folder is touched.
    assert (meta / "flake.lock").read_bytes() == builtin
