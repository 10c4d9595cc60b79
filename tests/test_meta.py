"""The meta flake: one input per agent, and prepare / finalize / abort that
touch only the deploying agent's lock node."""

from __future__ import annotations

import json

import pytest

from hive_tui.host import gitrepo
from hive_tui.host.engine import Engine
from hive_tui.errors import HiveError
from hive_tui.host.flakelock import dump_lock

from .helpers import agent_files, applied_repo, main_sha, stop_all


def committed_lock_bytes(engine: Engine) -> bytes:
    return gitrepo.blob_at(gitrepo.open_repo(engine.state.meta), "flake.lock")


def working_lock_bytes(engine: Engine) -> bytes:
    return (engine.state.meta / "flake.lock").read_bytes()


def new_commit(engine: Engine, name: str, content: bytes) -> str:
    return str(gitrepo.commit_files(applied_repo(engine, name), {"more.txt": content}, "more"))


@pytest.fixture
def two(engine):
    engine.install_agent("alpha", agent_files())
    engine.install_agent("beta", agent_files())
    return engine


@pytest.mark.parametrize("locker", ["builtin", "nix"])
def test_one_input_and_one_configuration_per_agent(two, locker):
    engine = two
    flake = (engine.state.meta / "flake.nix").read_text()
    for name in ("alpha", "beta"):
        url = f'git+file://{engine.state.applied(name)}?ref=main'
        assert flake.count(f'agent-{name} = {{ url = "{url}"; flake = false; }};') == 1
        assert flake.count(f'{name} = agent "{name}" inputs.agent-{name};') == 1
        assert engine.meta.locked_rev(name) == main_sha(engine, name)
    assert [c.message for c in engine.meta_log()] == [
        f"spawn beta {main_sha(engine, 'beta')[:12]}",
        f"spawn alpha {main_sha(engine, 'alpha')[:12]}",
        "init meta flake",
    ]
    assert working_lock_bytes(engine) == committed_lock_bytes(engine)
    assert gitrepo.open_repo(engine.state.meta).status() == {}


@pytest.mark.parametrize("locker", ["builtin", "nix"])
def test_prepare_stages_finalize_commits_abort_restores(two, locker):
    engine = two
    head = engine.meta_log()[0].sha
    before = committed_lock_bytes(engine)
    sha = new_commit(engine, "alpha", b"1")

    node = engine.meta.prepare_deploy("alpha")

    assert node["locked"]["rev"] == sha
    assert engine.meta_log()[0].sha == head and committed_lock_bytes(engine) == before
    assert json.loads(working_lock_bytes(engine))["nodes"]["agent-alpha"] == node

    engine.meta.abort_deploy("alpha")
    assert working_lock_bytes(engine) == before

    node = engine.meta.prepare_deploy("alpha")
    engine.meta.finalize_deploy("alpha", node, "deploy alpha deployed/1 x")
    after = json.loads(committed_lock_bytes(engine))
    old = json.loads(before)
    assert after["nodes"]["agent-alpha"] == node
    assert {k: v for k, v in after["nodes"].items() if k != "agent-alpha"} == {
        k: v for k, v in old["nodes"].items() if k != "agent-alpha"}
    assert engine.meta_log()[0].message == "deploy alpha deployed/1 x"
    assert working_lock_bytes(engine) == committed_lock_bytes(engine)
    assert gitrepo.open_repo(engine.state.meta).status() == {}


def test_two_staged_deploys_resolve_independently(two):
    engine = two
    old = json.loads(committed_lock_bytes(engine))
    new_commit(engine, "alpha", b"a")
    new_commit(engine, "beta", b"b")
    alpha_node = engine.meta.prepare_deploy("alpha")
    engine.meta.prepare_deploy("beta")

    engine.meta.finalize_deploy("alpha", alpha_node, "deploy alpha")
    committed = json.loads(committed_lock_bytes(engine))
    assert committed["nodes"]["agent-alpha"] == alpha_node
    assert committed["nodes"]["agent-beta"] == old["nodes"]["agent-beta"]
    # beta is still staged in the working file, and only beta.
    working = json.loads(working_lock_bytes(engine))
    assert working["nodes"]["agent-alpha"] == alpha_node
    assert working["nodes"]["agent-beta"] != old["nodes"]["agent-beta"]
    assert set(gitrepo.open_repo(engine.state.meta).status()) == {"flake.lock"}

    engine.meta.abort_deploy("beta")
    assert working_lock_bytes(engine) == committed_lock_bytes(engine) == dump_lock(committed).encode()
    assert gitrepo.open_repo(engine.state.meta).status() == {}


def test_prepare_refuses_an_agent_the_flake_does_not_have(engine):
    with pytest.raises(HiveError, match="agent ghost has no input in the meta flake"):
        engine.meta.prepare_deploy("ghost")


def test_nix_cannot_own_a_state_root_with_a_space(tmp_path, nix_env):
    root = tmp_path / "with space" / "hive"
    with pytest.raises(HiveError, match="Nix cannot lock a flake whose path has a space"):
        Engine(root, locker="nix")
    assert not root.exists()
    with Engine(root, locker="builtin") as engine:
        try:
            engine.install_agent("alpha", agent_files())
            assert engine.meta.locked_rev("alpha") == main_sha(engine, "alpha")
        finally:
            stop_all(engine)


class RecordingLocker:
    """The engine's locker, with every input it is asked to lock recorded."""

    def __init__(self, locker):
        self.inner = locker
        self.name = locker.name
        self.asked: list[list[str]] = []

    def lock(self, meta, inputs, update=None):
        self.asked.append(sorted(inputs))
        return self.inner.lock(meta, inputs, update)

    def lock_input(self, meta, input_name, repo):
        self.asked.append([input_name])
        return self.inner.lock_input(meta, input_name, repo)

    def lock_alone(self, input_name, repo):
        self.asked.append([input_name])
        return self.inner.lock_alone(input_name, repo)


@pytest.mark.parametrize("locker", ["builtin", "nix"])
def test_a_spawn_and_a_deploy_lock_their_own_agent_alone(two, locker):
    engine = two
    recording = engine.meta.locker = RecordingLocker(engine.meta.locker)
    engine.install_agent("gamma", agent_files())
    assert recording.asked == [["agent-gamma"]]
    flake = (engine.state.meta / "flake.nix").read_text()
    assert all(f'{a} = agent "{a}" inputs.agent-{a};' in flake for a in ("alpha", "beta", "gamma"))
    assert engine.meta.agents() == ["alpha", "beta", "gamma"]

    recording.asked.clear()
    sha = new_commit(engine, "beta", b"b")
    node = engine.meta.prepare_deploy("beta")
    engine.meta.finalize_deploy("beta", node, "deploy beta")
    assert recording.asked == [["agent-beta"]]
    assert engine.meta.locked_rev("beta") == sha
    assert working_lock_bytes(engine) == committed_lock_bytes(engine)
    assert gitrepo.open_repo(engine.state.meta).status() == {}


def test_the_committed_lock_is_parsed_once_per_commit(two):
    engine = two
    first = engine.meta.committed_lock()
    again = engine.meta.committed_lock()
    # Parsed once: the very same nodes, in a copy the caller may change.
    assert again["nodes"]["agent-alpha"] is first["nodes"]["agent-alpha"]
    again["nodes"].pop("agent-alpha")
    assert "agent-alpha" in engine.meta.committed_lock()["nodes"]
    sha = new_commit(engine, "alpha", b"1")
    engine.meta.finalize_deploy("alpha", engine.meta.prepare_deploy("alpha"), "deploy alpha")
    after = engine.meta.committed_lock()
    assert engine.meta.locked_rev("alpha") == sha
    assert after["nodes"]["agent-beta"] is first["nodes"]["agent-beta"]
    assert after == json.loads(committed_lock_bytes(engine))


@pytest.mark.parametrize("locker", ["builtin", "nix"])
def test_one_agent_s_locking_holds_up_no_other_agent_s_deploy(two, locker):
    """Locking an input hashes the agent's whole tree, or runs Nix: outside the
    meta flake's lock, so a slow one does not stall the other agents' deploys."""
    import threading

    engine = two
    inner = engine.meta.locker
    hashing, release = threading.Event(), threading.Event()

    class SlowForAlpha(RecordingLocker):
        def lock_alone(self, input_name, repo):
            if input_name == "agent-alpha":
                hashing.set()
                assert release.wait(60), "never released"
            return super().lock_alone(input_name, repo)

    engine.meta.locker = SlowForAlpha(inner)
    alpha_sha, beta_sha = new_commit(engine, "alpha", b"a"), new_commit(engine, "beta", b"b")
    result = {}
    alpha = threading.Thread(target=lambda: result.setdefault("alpha", engine.meta.prepare_deploy("alpha")))
    alpha.start()
    try:
        assert hashing.wait(30)
        done = threading.Event()

        def deploy_beta():
            node = engine.meta.prepare_deploy("beta")
            engine.meta.finalize_deploy("beta", node, "deploy beta")
            done.set()

        threading.Thread(target=deploy_beta, daemon=True).start()
        assert done.wait(30), "beta's deploy waited for alpha's locking"
        assert engine.meta.locked_rev("beta") == beta_sha
    finally:
        release.set()
        alpha.join(60)
    engine.meta.finalize_deploy("alpha", result["alpha"], "deploy alpha")
    assert engine.meta.locked_rev("alpha") == alpha_sha
    assert working_lock_bytes(engine) == committed_lock_bytes(engine)


def test_a_spawn_reads_no_other_agent_s_repo(two, monkeypatch):
    """Once the flake is rendered, a spawn costs the same in a hive of any size:
    it lists no other agent's applied repo."""
    engine = two
    listed = []
    real = type(engine.state).with_applied_repo
    monkeypatch.setattr(type(engine.state), "with_applied_repo",
                        lambda self, names: listed.append(list(names)) or real(self, names))
    engine.install_agent("gamma", agent_files())
    assert listed == []
    assert engine.agents() == ["alpha", "beta", "gamma"] and engine.meta.agents() == ["alpha", "beta", "gamma"]
