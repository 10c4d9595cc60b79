"""The nixos runtime, against stand-ins for nixos-container, systemctl,
nix-env and journalctl: what each action runs, and what it makes of the
answers, above all of a rebuild that fails after moving the profile."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from hive_tui.errors import BuildFailed, HiveError, InvalidName
from hive_tui.layout import StateRoot
from hive_tui.runtime import RunState
from hive_tui.runtime.nixos import NixosRuntime

PROGRAMS = ("nixos-container", "systemctl", "nix-env", "journalctl")
STANDIN = Path(__file__).with_name("standin.py")


class Host:
    """The stand-ins' folder: what the test tells them, and what they recorded."""

    def __init__(self, root: Path):
        self.root = root

    def write(self, rel: str, text: str = "") -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def calls(self) -> list[list[str]]:
        path = self.root / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def containers(self) -> list[str]:
        path = self.root / "containers"
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Host:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "standin"
    script.write_text(f"#!{sys.executable}\n" + STANDIN.read_text())
    script.chmod(0o755)
    for program in PROGRAMS:
        (bin_dir / program).symlink_to("standin")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    root = tmp_path / "standin"
    root.mkdir()
    monkeypatch.setenv("STANDIN_DIR", str(root))
    return Host(root)


@pytest.fixture
def state(tmp_path: Path) -> StateRoot:
    s = StateRoot.at(tmp_path / "hive")
    s.create()
    return s


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    return tmp_path / "profiles"


@pytest.fixture
def rt(state: StateRoot, profiles: Path) -> NixosRuntime:
    return NixosRuntime(state, profiles_dir=profiles, command_timeout=5.0,
                        build_timeout=5.0)


def flake(state: StateRoot, name: str) -> str:
    return f"{state.meta}#{name}"


def create_argv(state: StateRoot, name: str) -> list[str]:
    return ["nixos-container", "create", f"h-{name}", "--flake", flake(state, name)]


def update_argv(state: StateRoot, name: str) -> list[str]:
    return ["nixos-container", "update", f"h-{name}", "--flake", flake(state, name)]


def show_argv(name: str) -> list[str]:
    unit = f"container@h-{name}.service"
    return ["systemctl", "show", "--property=ActiveState", "--value", unit]


def ignore(line: str) -> None:
    pass


def make_profile(profiles: Path, container: str, generation: int) -> Path:
    """A container's system profile at `generation`, as nix lays it out."""
    folder = profiles / container
    folder.mkdir(parents=True)
    store_path = f"/nix/store/standin-system-{generation}"
    (folder / f"system-{generation}-link").symlink_to(store_path)
    (folder / "system").symlink_to(f"system-{generation}-link")
    return folder / "system"


def test_name_and_meta_inputs(state):
    rt = NixosRuntime(state, nixpkgs="github:NixOS/nixpkgs/nixos-24.11")
    assert rt.name == "nixos"
    assert rt.meta_inputs == {"nixpkgs": "github:NixOS/nixpkgs/nixos-24.11"}
    assert NixosRuntime(state).meta_inputs == {"nixpkgs": "nixpkgs"}


def test_containers_lists_only_hive_containers(host, rt):
    host.write("containers", "h-beta\nwebserver\nh-alpha\nh-Bad\nh-../x\nh-\nalpha\n")
    assert rt.containers() == ["alpha", "beta"]
    assert host.calls() == [["nixos-container", "list"]]


def test_create_builds_then_starts(host, rt, state):
    output: list[str] = []
    rt.create("alpha", state.applied("alpha"), "0" * 40, output.append)
    assert host.calls() == [
        create_argv(state, "alpha"),
        ["nixos-container", "start", "h-alpha"],
    ]
    assert output == [
        "building the system configuration for h-alpha...",
        f"these 2 derivations will be built: {flake(state, 'alpha')}",
    ]
    assert host.containers() == ["h-alpha"]


def test_create_whose_build_fails_starts_nothing(host, rt, state):
    host.write("fail/nixos-container create", "error: attribute 'alpha' missing")
    with pytest.raises(BuildFailed) as failed:
        rt.create("alpha", state.applied("alpha"), "0" * 40, ignore)
    assert "error: attribute 'alpha' missing" in str(failed.value)
    assert "nixos-container create h-alpha" in str(failed.value)
    assert host.calls() == [create_argv(state, "alpha")]


def test_create_whose_build_hangs_times_out(host, state, profiles):
    rt = NixosRuntime(state, profiles_dir=profiles, build_timeout=0.5)
    host.write("hang/nixos-container create")
    with pytest.raises(BuildFailed, match="timed out after 0.5s"):
        rt.create("alpha", state.applied("alpha"), "0" * 40, ignore)
    assert host.calls() == [create_argv(state, "alpha")]


def test_create_whose_start_fails_destroys_the_container(host, rt, state):
    host.write("fail/nixos-container start", "Job for container@h-alpha failed.")
    with pytest.raises(BuildFailed) as failed:
        rt.create("alpha", state.applied("alpha"), "0" * 40, ignore)
    assert "did not start" in str(failed.value)
    assert "Job for container@h-alpha failed." in str(failed.value)
    assert host.calls() == [
        create_argv(state, "alpha"),
        ["nixos-container", "start", "h-alpha"],
        ["nixos-container", "destroy", "h-alpha"],
    ]
    assert host.containers() == []


def test_create_refuses_a_name_too_long_for_a_container(host, rt, state):
    with pytest.raises(HiveError, match="at most 9") as refused:
        rt.create("abcdefghij", state.applied("abcdefghij"), "0" * 40, ignore)
    assert "'h-abcdefghij'" in str(refused.value)
    assert host.calls() == []


def test_create_accepts_the_longest_name(host, rt, state):
    rt.create("abcdefghi", state.applied("abcdefghi"), "0" * 40, ignore)
    assert host.containers() == ["h-abcdefghi"]


def test_start(host, rt):
    rt.start("alpha")
    assert host.calls() == [["nixos-container", "start", "h-alpha"]]


def test_start_failure_names_the_command_and_its_output(host, rt):
    host.write("fail/nixos-container start", "line one\nline two\n")
    with pytest.raises(HiveError) as failed:
        rt.start("alpha")
    assert str(failed.value) == (
        "`nixos-container start h-alpha` exited with 1\nline one\nline two"
    )


def test_stop_graceful(host, rt):
    rt.stop("alpha")
    assert host.calls() == [["nixos-container", "stop", "h-alpha"]]


def test_stop_not_graceful_terminates(host, rt):
    rt.stop("alpha", graceful=False)
    assert host.calls() == [["nixos-container", "terminate", "h-alpha"]]


def test_stop_whose_graceful_stop_fails_terminates(host, rt):
    host.write("fail/nixos-container stop", "Job for container@h-alpha canceled.")
    rt.stop("alpha")
    assert host.calls() == [
        ["nixos-container", "stop", "h-alpha"],
        ["nixos-container", "terminate", "h-alpha"],
    ]


def test_stop_whose_graceful_stop_hangs_terminates(host, state, profiles):
    rt = NixosRuntime(state, profiles_dir=profiles, command_timeout=0.5)
    host.write("hang/nixos-container stop")
    rt.stop("alpha")
    assert host.calls() == [
        ["nixos-container", "stop", "h-alpha"],
        ["nixos-container", "terminate", "h-alpha"],
    ]


def test_stop_whose_terminate_fails_too_raises(host, rt):
    host.write("fail/nixos-container stop", "stuck")
    host.write("fail/nixos-container terminate", "no such machine")
    with pytest.raises(HiveError, match="no such machine"):
        rt.stop("alpha")


def test_destroy(host, rt):
    host.write("containers", "h-alpha\nh-beta\n")
    rt.destroy("alpha")
    assert host.calls() == [["nixos-container", "destroy", "h-alpha"]]
    assert host.containers() == ["h-beta"]


@pytest.mark.parametrize("active, expected", [
    ("active", RunState(running=True)),
    ("reloading", RunState(running=True)),
    ("activating", RunState(running=True)),
    ("deactivating", RunState(running=True)),
    ("failed", RunState(failed=True)),
    ("inactive", RunState()),
    (None, RunState()),
])
def test_run_state(host, rt, active, expected):
    if active is not None:
        host.write("active/container@h-alpha.service", active + "\n")
    assert rt.run_state("alpha") == expected
    assert host.calls() == [show_argv("alpha")]


def test_run_state_raises_when_systemctl_fails(host, rt):
    host.write("fail/systemctl show", "Failed to connect to bus")
    with pytest.raises(HiveError, match="Failed to connect to bus"):
        rt.run_state("alpha")


def test_log_argv(host, rt):
    journalctl = ["journalctl", "--machine=h-alpha", "--no-pager", "--output=short-iso"]
    assert rt.log_argv("alpha", 50, follow=False) == [*journalctl, "--lines", "50"]
    assert rt.log_argv("alpha", 200, follow=True) == [
        *journalctl, "--lines", "200", "--follow",
    ]
    assert host.calls() == []


def test_rebuild(host, rt, state, profiles):
    make_profile(profiles, "h-alpha", 7)
    output: list[str] = []
    rt.rebuild("alpha", state.applied("alpha"), "1" * 40, output.append)
    assert host.calls() == [update_argv(state, "alpha")]
    assert output[0] == "building the system configuration for h-alpha..."


def test_rebuild_failure_without_a_profile_move(host, rt, state, profiles):
    profile = make_profile(profiles, "h-alpha", 7)
    host.write("fail/nixos-container update", "error: builder for 'x.drv' failed")
    with pytest.raises(BuildFailed) as failed:
        rt.rebuild("alpha", state.applied("alpha"), "1" * 40, ignore)
    assert "error: builder for 'x.drv' failed" in str(failed.value)
    assert "rolled back" not in str(failed.value)
    assert host.calls() == [update_argv(state, "alpha")]
    assert os.readlink(profile) == "system-7-link"


def test_rebuild_failure_without_any_profile(host, rt, state):
    host.write("fail/nixos-container update", "error: build failed")
    with pytest.raises(BuildFailed, match="error: build failed"):
        rt.rebuild("alpha", state.applied("alpha"), "1" * 40, ignore)
    assert host.calls() == [update_argv(state, "alpha")]


@pytest.mark.parametrize("running", [True, False])
def test_rebuild_failure_with_a_profile_move_rolls_back(
        host, rt, state, profiles, running):
    profile = make_profile(profiles, "h-alpha", 7)
    host.write("move-profile", str(profile))
    if running:
        host.write("active/container@h-alpha.service", "active")
    with pytest.raises(BuildFailed) as failed:
        rt.rebuild("alpha", state.applied("alpha"), "1" * 40, ignore)
    message = str(failed.value)
    assert "error: reloading container failed" in message
    assert ("moved h-alpha's system profile to generation 8; "
            "it was rolled back to generation 7") in message
    assert "DIVERGED" not in message
    reload = [["systemctl", "reload", "container@h-alpha.service"]] if running else []
    assert host.calls() == [
        update_argv(state, "alpha"),
        ["nix-env", "-p", str(profile), "--switch-generation", "7"],
        show_argv("alpha"),
        *reload,
    ]
    assert os.readlink(profile) == "system-7-link"


def test_rebuild_whose_rollback_fails_says_diverged(host, rt, state, profiles):
    profile = make_profile(profiles, "h-alpha", 7)
    host.write("move-profile", str(profile))
    host.write("fail/nix-env", "error: opening lock file: Permission denied")
    with pytest.raises(BuildFailed) as failed:
        rt.rebuild("alpha", state.applied("alpha"), "1" * 40, ignore)
    message = str(failed.value)
    assert "error: reloading container failed" in message
    assert "DIVERGED" in message
    assert "is at generation 8 while the hive expected generation 7" in message
    assert "Permission denied" in message
    assert "operator must fix it" in message
    assert host.calls() == [
        update_argv(state, "alpha"),
        ["nix-env", "-p", str(profile), "--switch-generation", "7"],
    ]
    assert os.readlink(profile) == "system-8-link"


def test_rebuild_whose_reload_after_rollback_fails_says_diverged(
        host, rt, state, profiles):
    profile = make_profile(profiles, "h-alpha", 7)
    host.write("move-profile", str(profile))
    host.write("active/container@h-alpha.service", "active")
    host.write("fail/systemctl reload", "Job for container@h-alpha.service failed.")
    with pytest.raises(BuildFailed) as failed:
        rt.rebuild("alpha", state.applied("alpha"), "1" * 40, ignore)
    message = str(failed.value)
    assert "rolled back to generation 7, but re-activating it failed" in message
    assert "DIVERGED" in message
    assert host.calls()[-1] == ["systemctl", "reload", "container@h-alpha.service"]
    assert os.readlink(profile) == "system-7-link"


def test_rebuild_that_moves_a_missing_profile_says_diverged(host, rt, state, profiles):
    # No generation before the update: there is nothing to roll back to.
    profile = profiles / "h-alpha" / "system"
    profile.parent.mkdir(parents=True)
    host.write("move-profile", str(profile))
    with pytest.raises(BuildFailed) as failed:
        rt.rebuild("alpha", state.applied("alpha"), "1" * 40, ignore)
    message = str(failed.value)
    assert "DIVERGED" in message
    assert "no previous generation" in message
    assert host.calls() == [update_argv(state, "alpha")]
    assert os.readlink(profile) == "system-1-link"


@pytest.mark.parametrize("action", [
    lambda rt, name: rt.containers(),
    lambda rt, name: rt.create(name, Path("/nonexistent"), "0" * 40, ignore),
    lambda rt, name: rt.start(name),
    lambda rt, name: rt.stop(name),
    lambda rt, name: rt.destroy(name),
], ids=["containers", "create", "start", "stop", "destroy"])
def test_a_missing_program_is_named(host, rt, tmp_path, monkeypatch, action):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(HiveError) as missing:
        action(rt, "alpha")
    assert str(missing.value) == "nixos-container is not installed or not on PATH"
    assert host.calls() == []


def test_missing_systemctl_is_named(host, rt, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(HiveError, match="^systemctl is not installed or not on PATH$"):
        rt.run_state("alpha")


@pytest.mark.parametrize("bad", ["../x", "h-alpha/..", "", "Alpha", "a b", "x" * 33])
@pytest.mark.parametrize("action", [
    lambda rt, name: rt.create(name, Path("/nonexistent"), "0" * 40, ignore),
    lambda rt, name: rt.rebuild(name, Path("/nonexistent"), "0" * 40, ignore),
    lambda rt, name: rt.start(name),
    lambda rt, name: rt.stop(name),
    lambda rt, name: rt.stop(name, graceful=False),
    lambda rt, name: rt.destroy(name),
    lambda rt, name: rt.run_state(name),
    lambda rt, name: rt.log_argv(name, 10, follow=True),
], ids=["create", "rebuild", "start", "stop", "terminate", "destroy", "run_state",
        "log_argv"])
def test_invalid_names_are_refused_before_any_command(host, rt, bad, action):
    with pytest.raises(InvalidName):
        action(rt, bad)
    assert host.calls() == []


def test_the_engine_drives_a_whole_life_through_the_runtime(host, state, profiles, tmp_path):
    """Spawn, stop, start, restart, rebuild and destroy of one agent on the nixos
    runtime: the commands that change a container, in order."""
    from hive_tui.engine import Engine

    options = {"profiles_dir": profiles, "command_timeout": 5.0, "build_timeout": 5.0}
    with Engine(state.root, runtime="nixos", locker="builtin", runtime_options=options) as engine:
        flake_nix = (state.meta / "flake.nix").read_text()
        assert 'nixpkgs = { url = "nixpkgs"; };' in flake_nix
        engine.install_agent("alpha")
        host.write("active/container@h-alpha.service", "active\n")
        assert engine.agent_status("alpha").running
        engine.stop("alpha")
        engine.start("alpha")
        engine.restart("alpha")
        engine.rebuild("alpha")
        assert engine.log_argv("alpha", 50, follow=True) == [
            "journalctl", "--machine=h-alpha", "--no-pager", "--output=short-iso", "--lines", "50", "--follow"]
        engine.destroy("alpha")
        assert engine.agents() == [] and engine.meta.agents() == []

    changes = [c for c in host.calls() if c[1:2] != ["list"] and c[1:2] != ["show"]]
    assert changes == [
        create_argv(state, "alpha"),
        ["nixos-container", "start", "h-alpha"],
        ["nixos-container", "stop", "h-alpha"],
        ["nixos-container", "start", "h-alpha"],
        ["nixos-container", "stop", "h-alpha"],
        ["nixos-container", "start", "h-alpha"],
        update_argv(state, "alpha"),
        ["nixos-container", "destroy", "h-alpha"],
    ]
    assert host.containers() == []


def test_a_deploy_whose_update_moved_the_profile_is_not_a_clean_failure(host, state, profiles):
    """The container switched before the update failed: the failed deploy says it
    was rolled back, and the profile is back where it was."""
    from hive_tui import gitrepo
    from hive_tui.engine import Engine

    options = {"profiles_dir": profiles, "command_timeout": 5.0, "build_timeout": 5.0}
    with Engine(state.root, runtime="nixos", locker="builtin", runtime_options=options) as engine:
        engine.install_agent("alpha")
        profile = make_profile(profiles, "h-alpha", 4)
        host.write("active/container@h-alpha.service", "active\n")
        host.write("move-profile", str(profile))
        gitrepo.commit_files(gitrepo.open_repo(engine.state.proposed("alpha")), {"notes.txt": b"x\n"}, "notes")
        done = engine.approve(engine.request_apply_commit("alpha", "main").id)

        assert (done.status, done.terminal_tag) == ("failed", "failed/1")
        assert "reloading container failed" in done.error
        assert "had moved h-alpha's system profile to generation 5; it was rolled back to generation 4" in done.error
        assert os.readlink(profile) == "system-4-link"
        repo = gitrepo.open_repo(engine.state.applied("alpha"))
        assert "rolled back to generation 4" in repo[repo.references["refs/tags/failed/1"].target].message
        assert engine.meta_log()[0].message.startswith("spawn alpha")
    assert ["nix-env", "-p", str(profile), "--switch-generation", "4"] in host.calls()
    assert ["systemctl", "reload", "container@h-alpha.service"] in host.calls()


def test_a_followed_journal_ends_when_its_client_goes(host, state, profiles, tmp_path):
    """journalctl --follow is killed as the client hangs up, not at the journal's next line."""
    import asyncio

    from hive_tui.engine import Engine
    from hive_tui.server import Server

    def journals() -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"--machine=h-alpha" in args and b"--follow" in args:
                found.append(int(entry.name))
        return found

    async def until(condition, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not condition():
            assert loop.time() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.02)

    options = {"profiles_dir": profiles, "command_timeout": 5.0, "build_timeout": 5.0}
    host.write("hang/journalctl --machine=h-alpha")  # follows, and never prints a line
    sock = tmp_path / "host.sock"
    with Engine(state.root, runtime="nixos", locker="builtin", runtime_options=options) as engine:
        engine.install_agent("alpha")

        async def scenario():
            server = Server(engine, sock)
            await server.start()
            try:
                reader, writer = await asyncio.open_unix_connection(str(sock))
                writer.write(b'{"cmd": "logs", "name": "alpha", "lines": 5, "follow": true}\n')
                assert json.loads(await reader.readline()) == {"version": 1, "ok": True}
                await until(journals, "journalctl to follow")
                writer.close()
                await until(lambda: not journals(), "journalctl to end with its client")
            finally:
                await server.close()

        asyncio.run(asyncio.wait_for(scenario(), 120))
    assert journals() == []
