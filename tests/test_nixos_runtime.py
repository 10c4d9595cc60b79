"""The nixos runtime, against stand-ins for nixos-container, systemctl,
nix-env and journalctl that fail the way nixpkgs' own script does: what each
action runs, what it makes of the answers (above all of a rebuild that fails
after moving the profile), and what it leaves on the host. Then the NixOS
module's rendered unit, the command line, the nixpkgs lock, and the VM check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hive_tui.errors import BuildFailed, HiveError, InvalidName
from hive_tui.host.stateroot import StateRoot
from hive_tui.names import check_name, is_valid_name
from hive_tui.host.runtime import RunState
from hive_tui.host.runtime.nixos import NixosRuntime

from .helpers import require_program

PROGRAMS = ("nixos-container", "systemctl", "nix-env", "journalctl")
STANDIN = Path(__file__).with_name("standin.py")


class Host:
    """The stand-ins' folders: what the test tells them, what they recorded,
    and the files nixos-container leaves on the host."""

    def __init__(self, root: Path, etc: Path, var: Path, profiles: Path, cwd: Path):
        self.root = root
        self.etc = etc
        self.var = var
        self.profiles = profiles
        self.cwd = cwd

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
        """What `nixos-container list` would print: the .conf files on the host."""
        if not self.etc.exists():
            return []
        return sorted(p.name[: -len(".conf")] for p in self.etc.glob("*.conf"))

    def conf(self, container: str) -> Path:
        return self.etc / f"{container}.conf"

    def add_container(self, container: str, running: bool = False) -> None:
        """A container as `nixos-container create` leaves it, started or not."""
        self.etc.mkdir(parents=True, exist_ok=True)
        self.conf(container).write_text("PRIVATE_NETWORK=1\n")
        (self.profiles / container).mkdir(parents=True, exist_ok=True)
        if running:
            self.write(f"active/container@{container}.service", "active\n")


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, profiles: Path, etc: Path) -> Host:
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
    var = tmp_path / "var" / "nixos-containers"
    monkeypatch.setenv("STANDIN_DIR", str(root))
    monkeypatch.setenv("STANDIN_ETC", str(etc))
    monkeypatch.setenv("STANDIN_VAR", str(var))
    monkeypatch.setenv("STANDIN_PROFILES", str(profiles))
    # The engine's own working directory, as `/` is for a system service.
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return Host(root, etc, var, profiles, cwd)


@pytest.fixture
def state(tmp_path: Path) -> StateRoot:
    s = StateRoot.at(tmp_path / "hive")
    s.create()
    return s


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    return tmp_path / "profiles"


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    """What /etc/nixos-containers is on a host."""
    return tmp_path / "etc" / "nixos-containers"


@pytest.fixture
def rt(state: StateRoot, profiles: Path, etc: Path) -> NixosRuntime:
    return NixosRuntime(state, profiles_dir=profiles, container_config_dir=etc,
                        command_timeout=5.0, build_timeout=5.0)


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
    folder.mkdir(parents=True, exist_ok=True)
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
    for container in ("h-beta", "webserver", "h-alpha", "h-Bad", "h-", "h-x_y", "alpha"):
        host.add_container(container)
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
        "host IP is 10.233.1.1, container IP is 10.233.1.2",
        "building the system configuration for h-alpha...",
        f"these 2 derivations will be built: {flake(state, 'alpha')}",
    ]
    assert host.containers() == ["h-alpha"]


def test_create_whose_build_fails_leaves_no_container(host, rt, state):
    # nixos-container wrote the .conf and the profile folder before the build
    # failed, and died without removing them: left there, they would list the
    # agent and refuse every later create of the name.
    host.write("fail/nixos-container create", "error: attribute 'alpha' missing")
    with pytest.raises(BuildFailed) as failed:
        rt.create("alpha", state.applied("alpha"), "0" * 40, ignore)
    assert "error: attribute 'alpha' missing" in str(failed.value)
    assert "nixos-container create h-alpha" in str(failed.value)
    assert host.calls() == [create_argv(state, "alpha"),
                            ["nixos-container", "destroy", "h-alpha"]]
    assert host.containers() == [] and rt.containers() == []
    assert not (host.profiles / "h-alpha").exists()

    (host.root / "fail" / "nixos-container create").unlink()
    rt.create("alpha", state.applied("alpha"), "0" * 40, ignore)
    assert host.containers() == ["h-alpha"]


def test_create_whose_cleanup_fails_too_says_so(host, rt, state):
    host.write("fail/nixos-container create", "error: attribute 'alpha' missing")
    host.write("fail/nixos-container destroy", "rm: cannot remove: Device or resource busy")
    with pytest.raises(BuildFailed) as failed:
        rt.create("alpha", state.applied("alpha"), "0" * 40, ignore)
    message = str(failed.value)
    assert "error: attribute 'alpha' missing" in message
    assert "left behind" in message and "Device or resource busy" in message


def test_create_whose_build_hangs_times_out(host, state, profiles):
    rt = NixosRuntime(state, profiles_dir=profiles, build_timeout=0.5, command_timeout=5.0)
    host.write("hang/nixos-container create")
    with pytest.raises(BuildFailed, match="timed out after 0.5s"):
        rt.create("alpha", state.applied("alpha"), "0" * 40, ignore)
    # Killed at its build, or earlier on a loaded machine: either way it is
    # destroyed after, and nothing is left.
    assert host.calls()[-1] == ["nixos-container", "destroy", "h-alpha"]
    assert host.calls()[:-1] in ([], [create_argv(state, "alpha")])
    assert host.containers() == []


@pytest.mark.parametrize("action", ["create", "rebuild"])
def test_builds_at_once_each_set_their_own_system(host, state, profiles, etc, action):
    # Each build links its result as ./.tmp and reads it back; two of them in
    # one folder read each other's link. The barrier makes both write theirs
    # before either reads, the way two builds that end together interleave.
    # Long timeouts: each build waits at the barrier for the other to start.
    rt = NixosRuntime(state, profiles_dir=profiles, container_config_dir=etc,
                      command_timeout=60.0, build_timeout=60.0)
    names = ("alpha", "beta")
    if action == "rebuild":
        for name in names:
            host.add_container(f"h-{name}")
            make_profile(profiles, f"h-{name}", 1)
    host.write("build-barrier", "2")
    errors: dict[str, Exception] = {}

    def build(name: str) -> None:
        try:
            getattr(rt, action)(name, state.applied(name), "1" * 40, ignore)
        except Exception as e:
            errors[name] = e

    threads = [threading.Thread(target=build, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == {}
    generation = 2 if action == "rebuild" else 1
    for name in names:
        link = profiles / f"h-{name}" / f"system-{generation}-link"
        assert os.readlink(link) == f"/nix/store/standin-{name}-system"
    assert not os.path.lexists(host.cwd / ".tmp")


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


def bind_line(state: StateRoot, name: str) -> str:
    return f'EXTRA_NSPAWN_FLAGS="--bind={state.agent_state(name)}:/var/lib/hive-agent"'


def test_create_binds_the_agent_state_folder_into_the_container(host, rt, state):
    rt.create("alpha", state.applied("alpha"), "0" * 40, ignore)
    conf = host.conf("h-alpha").read_text().splitlines()
    assert conf.count(bind_line(state, "alpha")) == 1
    assert "PRIVATE_NETWORK=1" in conf and conf[-1] == bind_line(state, "alpha")
    assert state.agent_state("alpha").is_dir()
    assert host.conf("h-alpha").stat().st_mode & 0o777 == 0o644


def test_start_binds_the_state_of_a_container_made_without_it(host, rt, state):
    host.add_container("h-alpha")
    host.conf("h-alpha").write_text('PRIVATE_NETWORK=1\nEXTRA_NSPAWN_FLAGS="--bind=/elsewhere:/x"\n')
    rt.start("alpha")
    rt.stop("alpha")
    rt.start("alpha")
    assert host.conf("h-alpha").read_text().splitlines() == [
        "PRIVATE_NETWORK=1", bind_line(state, "alpha")]


@pytest.mark.parametrize("folder", ["with space", "with:colon", 'with"quote', "with$dollar"])
def test_a_state_root_nspawn_cannot_bind_is_refused(host, tmp_path, profiles, etc, folder):
    state = StateRoot.at(tmp_path / folder)
    state.create()
    rt = NixosRuntime(state, profiles_dir=profiles, container_config_dir=etc)
    with pytest.raises(HiveError, match="cannot be bound into a container"):
        rt.create("alpha", state.applied("alpha"), "0" * 40, ignore)
    assert host.calls() == []


@pytest.mark.parametrize("ref", ['x"; evil = "', "path:/a b", "a\\b", "${x}", ""])
def test_a_nixpkgs_reference_that_is_no_flake_reference_is_refused(state, ref):
    with pytest.raises(HiveError, match="nixpkgs"):
        NixosRuntime(state, nixpkgs=ref)


def test_create_refuses_a_name_too_long_for_a_container(host, rt, state):
    with pytest.raises(HiveError, match="at most 9") as refused:
        rt.create("abcdefghij", state.applied("abcdefghij"), "0" * 40, ignore)
    assert "'h-abcdefghij'" in str(refused.value)
    assert host.calls() == []


def test_create_accepts_the_longest_name(host, rt, state):
    rt.create("abcdefghi", state.applied("abcdefghi"), "0" * 40, ignore)
    assert host.containers() == ["h-abcdefghi"]


def test_start(host, rt):
    host.add_container("h-alpha")
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
    host.add_container("h-alpha", running=True)
    rt.stop("alpha")
    assert host.calls() == [["nixos-container", "stop", "h-alpha"]]


def test_stop_not_graceful_terminates(host, rt):
    host.add_container("h-alpha", running=True)
    rt.stop("alpha", graceful=False)
    assert host.calls() == [["nixos-container", "terminate", "h-alpha"]]


def test_stop_whose_graceful_stop_fails_terminates(host, rt):
    host.add_container("h-alpha", running=True)
    host.write("fail/nixos-container stop", "Job for container@h-alpha canceled.")
    rt.stop("alpha")
    assert host.calls() == [
        ["nixos-container", "stop", "h-alpha"],
        ["nixos-container", "terminate", "h-alpha"],
    ]


def test_stop_whose_graceful_stop_hangs_terminates(host, state, profiles):
    rt = NixosRuntime(state, profiles_dir=profiles, command_timeout=0.5)
    host.add_container("h-alpha", running=True)
    host.write("hang/nixos-container stop")
    rt.stop("alpha")
    assert host.calls() == [
        ["nixos-container", "stop", "h-alpha"],
        ["nixos-container", "terminate", "h-alpha"],
    ]


def test_stop_whose_terminate_fails_too_raises(host, rt):
    host.add_container("h-alpha", running=True)
    host.write("fail/nixos-container stop", "stuck")
    host.write("fail/nixos-container terminate", "no such machine")
    with pytest.raises(HiveError, match="no such machine"):
        rt.stop("alpha")


def test_terminate_of_a_stopped_container_is_not_an_error(host, rt):
    # nixos-container dies with "unable to get container's main PID" there.
    host.add_container("h-alpha")
    rt.stop("alpha", graceful=False)
    assert host.calls()[0] == ["nixos-container", "terminate", "h-alpha"]
    assert rt.run_state("alpha") == RunState()


def test_destroy_of_a_container_that_is_not_there(host, rt):
    rt.destroy("alpha")
    assert host.calls() == [["nixos-container", "destroy", "h-alpha"]]


def test_destroy(host, rt):
    host.add_container("h-alpha")
    host.add_container("h-beta")
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


def test_run_states_reads_every_unit_in_one_systemctl_call(host, rt):
    host.write("active/container@h-alpha.service", "active\n")
    host.write("active/container@h-gamma.service", "failed\n")
    states = rt.run_states(["alpha", "beta", "gamma"])
    assert states == {"alpha": RunState(running=True), "beta": RunState(), "gamma": RunState(failed=True)}
    assert host.calls() == [["systemctl", "show", "--property=Id,ActiveState", "container@h-alpha.service",
                             "container@h-beta.service", "container@h-gamma.service"]]


def test_run_states_of_no_agent_runs_nothing(host, rt):
    assert rt.run_states([]) == {} and host.calls() == []


def test_run_states_refuses_an_answer_without_a_unit_asked_for(host, rt, monkeypatch):
    monkeypatch.setattr(rt, "_run", lambda argv: "Id=container@h-alpha.service\nActiveState=active\n")
    with pytest.raises(HiveError, match="no state for container@h-beta.service"):
        rt.run_states(["alpha", "beta"])


def test_the_engine_reads_a_whole_hive_s_status_with_one_systemctl_call(host, state, profiles):
    from hive_tui.host.engine import Engine

    options = {"profiles_dir": profiles, "container_config_dir": host.etc,
               "command_timeout": 5.0, "build_timeout": 5.0}
    with Engine(state.root, runtime="nixos", locker="builtin", runtime_options=options) as engine:
        for name in ("alpha", "beta", "gamma"):
            engine.install_agent(name)
        engine.stop("beta")
        before = len(host.calls())
        rows = engine.status()
        shows = [c for c in host.calls()[before:] if c[:2] == ["systemctl", "show"]]
    assert [(r.name, r.running) for r in rows] == [("alpha", True), ("beta", False), ("gamma", True)]
    assert shows == [["systemctl", "show", "--property=Id,ActiveState",
                      *(f"container@h-{n}.service" for n in ("alpha", "beta", "gamma"))]]


def test_run_state_raises_when_systemctl_fails(host, rt):
    host.write("fail/systemctl show", "Failed to connect to bus")
    with pytest.raises(HiveError, match="Failed to connect to bus"):
        rt.run_state("alpha")


def test_log_argv_of_a_running_agent_reads_its_journal(host, rt):
    host.add_container("h-alpha", running=True)
    journalctl = ["journalctl", "--machine=h-alpha", "--no-pager", "--output=short-iso"]
    assert rt.log_argv("alpha", 50, follow=False) == [*journalctl, "--lines", "50"]
    assert rt.log_argv("alpha", 200, follow=True) == [
        *journalctl, "--lines", "200", "--follow",
    ]


@pytest.mark.parametrize("state_", ["inactive", "failed"])
def test_logs_of_a_stopped_agent_are_read_from_its_unit(host, rt, state_):
    # journalctl --machine= opens a running container's journal only, and the
    # logs of a crashed agent are the ones an operator needs most.
    host.add_container("h-alpha")
    host.write("active/container@h-alpha.service", state_)
    host.write("journal/h-alpha", "starting agent\nagent crashed\n")
    argv = rt.log_argv("alpha", 50, follow=False)
    assert argv == ["journalctl", "-u", "container@h-alpha.service", "--no-pager",
                    "--output=short-iso", "--lines", "50"]
    shown = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert (shown.returncode, shown.stdout) == (0, "starting agent\nagent crashed\n")
    assert rt.log_argv("alpha", 10, follow=True)[-1] == "--follow"


@pytest.mark.parametrize("name", ["alpha-", "a-", "x" * 31 + "-"])
def test_a_name_that_makes_no_host_name_is_refused(name):
    # h-<name> becomes networking.hostName, which must end in a letter or digit.
    assert not is_valid_name(name)
    with pytest.raises(InvalidName, match="letter or digit"):
        check_name(name)


def test_the_agent_config_may_set_its_own_host_name(state):
    from hive_tui.host.meta import render_flake

    text = render_flake(state, ["alpha"], "x86_64-linux", {"nixpkgs": "nixpkgs"})
    assert 'networking.hostName = nixpkgs.lib.mkDefault "h-${name}";' in text


def test_rebuild(host, rt, state, profiles):
    host.add_container("h-alpha")
    profile = make_profile(profiles, "h-alpha", 7)
    output: list[str] = []
    rt.rebuild("alpha", state.applied("alpha"), "1" * 40, output.append)
    assert host.calls() == [update_argv(state, "alpha")]
    assert output[0] == "building the system configuration for h-alpha..."
    assert os.readlink(profile) == "system-8-link"


def test_rebuild_failure_without_a_profile_move(host, rt, state, profiles):
    host.add_container("h-alpha")
    profile = make_profile(profiles, "h-alpha", 7)
    host.write("fail/nixos-container update", "error: builder for 'x.drv' failed")
    with pytest.raises(BuildFailed) as failed:
        rt.rebuild("alpha", state.applied("alpha"), "1" * 40, ignore)
    assert "error: builder for 'x.drv' failed" in str(failed.value)
    assert "failed to build container from flake" in str(failed.value)
    assert "rolled back" not in str(failed.value)
    assert host.calls() == [update_argv(state, "alpha")]
    assert os.readlink(profile) == "system-7-link"


def test_rebuild_failure_without_any_profile(host, rt, state):
    host.add_container("h-alpha")
    host.write("fail/nixos-container update", "error: build failed")
    with pytest.raises(BuildFailed, match="error: build failed"):
        rt.rebuild("alpha", state.applied("alpha"), "1" * 40, ignore)
    assert host.calls() == [update_argv(state, "alpha")]


def test_rebuild_failure_with_a_profile_move_rolls_back(host, rt, state, profiles):
    host.add_container("h-alpha", running=True)
    profile = make_profile(profiles, "h-alpha", 7)
    host.write("fail/reload")
    with pytest.raises(BuildFailed) as failed:
        rt.rebuild("alpha", state.applied("alpha"), "1" * 40, ignore)
    message = str(failed.value)
    assert "failed to reload container" in message
    assert ("moved h-alpha's system profile to generation 8; "
            "it was rolled back to generation 7") in message
    assert "DIVERGED" not in message
    assert host.calls() == [
        update_argv(state, "alpha"),
        ["nix-env", "-p", str(profile), "--switch-generation", "7"],
        show_argv("alpha"),
        ["systemctl", "reload", "container@h-alpha.service"],
    ]
    assert os.readlink(profile) == "system-7-link"


def test_rebuild_whose_rollback_fails_says_diverged(host, rt, state, profiles):
    host.add_container("h-alpha", running=True)
    profile = make_profile(profiles, "h-alpha", 7)
    host.write("fail/reload")
    host.write("fail/nix-env", "error: opening lock file: Permission denied")
    with pytest.raises(BuildFailed) as failed:
        rt.rebuild("alpha", state.applied("alpha"), "1" * 40, ignore)
    message = str(failed.value)
    assert "failed to reload container" in message
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
    host.add_container("h-alpha", running=True)
    profile = make_profile(profiles, "h-alpha", 7)
    host.write("fail/reload")
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
    host.add_container("h-alpha", running=True)
    profile = profiles / "h-alpha" / "system"
    host.write("fail/reload")
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
    from hive_tui.host.engine import Engine

    options = {"profiles_dir": profiles, "container_config_dir": host.etc,
               "command_timeout": 5.0, "build_timeout": 5.0}
    with Engine(state.root, runtime="nixos", locker="builtin", runtime_options=options) as engine:
        flake_nix = (state.meta / "flake.nix").read_text()
        assert 'nixpkgs = { url = "nixpkgs"; };' in flake_nix
        engine.install_agent("alpha")
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
    from hive_tui.host import gitrepo
    from hive_tui.host.engine import Engine

    options = {"profiles_dir": profiles, "container_config_dir": host.etc,
               "command_timeout": 5.0, "build_timeout": 5.0}
    with Engine(state.root, runtime="nixos", locker="builtin", runtime_options=options) as engine:
        engine.install_agent("alpha")
        # The spawn built generation 1 and started the container.
        profile = profiles / "h-alpha" / "system"
        assert os.readlink(profile) == "system-1-link"
        host.write("fail/reload")
        gitrepo.commit_files(gitrepo.open_repo(engine.state.proposed("alpha")), {"notes.txt": b"x\n"}, "notes")
        done = engine.approve(engine.request_apply_commit("alpha", "main").id)

        assert (done.status, done.terminal_tag) == ("failed", "failed/1")
        assert "failed to reload container" in done.error
        assert "had moved h-alpha's system profile to generation 2; it was rolled back to generation 1" in done.error
        assert os.readlink(profile) == "system-1-link"
        repo = gitrepo.open_repo(engine.state.applied("alpha"))
        assert "rolled back to generation 1" in repo[repo.references["refs/tags/failed/1"].target].message
        assert engine.meta_log()[0].message.startswith("spawn alpha")
    assert ["nix-env", "-p", str(profile), "--switch-generation", "1"] in host.calls()
    assert ["systemctl", "reload", "container@h-alpha.service"] in host.calls()


# -- the NixOS module's rendered unit

RENDER_MODULE = Path(__file__).with_name("render_module.nix")
FLAKE = Path(__file__).parent.parent / "flake.nix"


def render_module(settings: str = "{ }", state_version: str = "25.05") -> dict:
    """The hive-tui unit and NAT settings the module renders (see render_module.nix)."""
    require_program("nix-instantiate")
    argv = ["nix-instantiate", "--eval", "--strict", "--json", str(RENDER_MODULE),
            "--arg", "flake", str(FLAKE), "--arg", "settings", settings,
            "--argstr", "stateVersion", state_version]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def rendered(nix_env) -> dict:
    return render_module()


def test_stopping_the_service_signals_the_engine_alone(rendered):
    # The default KillMode signals the whole cgroup: every nixos-container,
    # nix build and nix-env of the deploys the engine promises to finish.
    config = rendered["service"]["serviceConfig"]
    assert config["KillMode"] == "mixed"
    assert config["KillSignal"] == "SIGTERM"


def test_the_unit_path_has_what_nixos_container_calls(rendered):
    path = rendered["service"]["path"]
    # destroy's chattr, mountpoint and umount
    assert "/nix/store/stub-e2fsprogs" in path and "/nix/store/stub-util-linux" in path
    assert "/nix/store/stub-nix" in path and "/nix/store/stub-systemd" in path
    # the tool the host's containers module builds, not the bare package
    assert "/nix/store/stub-nixos-container-nixos-containers" in path
    assert "/nix/store/stub-nixos-container" not in path


def test_the_unit_enables_flakes_for_nixos_container(rendered):
    config = rendered["service"]["environment"]["NIX_CONFIG"]
    features = config.split("=", 1)[1].split()
    assert config.startswith("extra-experimental-features")
    assert {"nix-command", "flakes"} <= set(features)


def test_an_old_host_gets_its_own_container_folders(nix_env):
    rendered = render_module(state_version="21.11")
    assert "/nix/store/stub-nixos-container-containers" in rendered["service"]["path"]
    assert "'--container-config-dir' '/etc/containers'" in rendered["service"]["serviceConfig"]["ExecStart"]


def test_the_engine_gets_the_host_nixpkgs_and_container_folder(rendered):
    start = rendered["service"]["serviceConfig"]["ExecStart"]
    assert "'--nixpkgs' 'path:/nix/store/stub-nixpkgs'" in start
    assert "'--container-config-dir' '/etc/nixos-containers'" in start
    assert start.index("'--nixpkgs'") < start.index("'serve'")


def test_the_local_runtime_gets_no_container_options(nix_env):
    start = render_module('{ runtime = "local"; }')["service"]["serviceConfig"]["ExecStart"]
    assert "--nixpkgs" not in start and "--container-config-dir" not in start


def test_nat_is_off_unless_asked_for(rendered):
    assert rendered["nat"] is None


def test_nat_lets_the_containers_out(nix_env):
    nat = render_module('{ nat = { enable = true; externalInterface = "eth0"; }; }')["nat"]
    assert nat == {"enable": True, "internalInterfaces": ["ve-+"], "externalInterface": "eth0"}


# -- the command line

def parse(*argv: str):
    from hive_tui import cli

    args = cli.build_parser().parse_args(list(argv))
    for option, default in cli.OPTION_DEFAULTS.items():
        setattr(args, option, getattr(args, option, default))
    return args


def test_the_command_line_configures_the_nixos_runtime(host, tmp_path, etc):
    from hive_tui import cli
    from hive_tui.client.connect import open_engine

    args = parse("--state", str(tmp_path / "hive"), "--runtime", "nixos", "--locker", "builtin",
                 "serve", "--socket", str(tmp_path / "s"),
                 "--nixpkgs", "path:/nix/store/abc-source", "--container-config-dir", str(etc))
    with open_engine(args.state, cli.engine_options(args)) as engine:
        assert engine.runtime.meta_inputs == {"nixpkgs": "path:/nix/store/abc-source"}
        assert engine.runtime.container_config_dir == etc
        assert 'nixpkgs = { url = "path:/nix/store/abc-source"; };' in (engine.state.meta / "flake.nix").read_text()


@pytest.mark.parametrize("argv, error", [
    (["--nixpkgs", "nixpkgs"], "--nixpkgs: only for --runtime nixos"),
    (["--runtime", "nixos", "--nixpkgs", 'x"; y = "'], "is not a flake reference"),
])
def test_the_command_line_refuses_bad_nixos_options(tmp_path, capsys, argv, error):
    from hive_tui import cli

    root = tmp_path / "hive"
    code = cli.main(["--state", str(root), "--locker", "builtin", *argv, "serve", "--socket", str(tmp_path / "s")])
    assert code == 1
    assert error in capsys.readouterr().err
    assert not root.exists()


# -- which nixpkgs the containers are built from

def point_registry(home: Path, nixpkgs: Path) -> None:
    """The flake registry's `nixpkgs`, as a host's pin or the global registry sets it."""
    registry = home / ".config" / "nix" / "registry.json"
    registry.parent.mkdir(parents=True, exist_ok=True)
    to = {"type": "path", "path": str(nixpkgs)}
    registry.write_text(json.dumps({"version": 2, "flakes": [
        {"from": {"type": "indirect", "id": "nixpkgs"}, "to": to}]}))


def test_nixpkgs_is_locked_once_and_kept(host, state, profiles, nix_env, tmp_path, monkeypatch):
    """The meta flake's indirect `nixpkgs` is resolved on the first lock and
    committed: a registry that moves later moves no agent, across restarts,
    spawns, deploys, rebuilds and destroys; meta-log shows which one it is."""
    from hive_tui.host import gitrepo
    from hive_tui.host.engine import Engine

    empty = tmp_path / "no-global-registry.json"
    empty.write_text('{"version": 2, "flakes": []}')
    monkeypatch.setenv("NIX_CONFIG", f"{os.environ['NIX_CONFIG']}\nflake-registry = {empty}")
    pins = {}
    for pin in ("first", "second"):
        pins[pin] = tmp_path / f"nixpkgs-{pin}"
        pins[pin].mkdir()
        (pins[pin] / "flake.nix").write_text(f'{{ outputs = _: {{ pin = "{pin}"; }}; }}\n')
    point_registry(Path(os.environ["HOME"]), pins["first"])

    def nixpkgs_path(engine) -> str:
        lock = engine.meta.committed_lock()
        return lock["nodes"][lock["nodes"]["root"]["inputs"]["nixpkgs"]]["locked"]["path"]

    options = {"profiles_dir": profiles, "container_config_dir": host.etc,
               "command_timeout": 30.0, "build_timeout": 30.0}
    with Engine(state.root, runtime="nixos", locker="nix", runtime_options=options) as engine:
        engine.install_agent("alpha")
        assert nixpkgs_path(engine) == str(pins["first"])
        assert engine.meta_log()[0].nixpkgs == f"path:{pins['first']}"

    point_registry(Path(os.environ["HOME"]), pins["second"])
    with Engine(state.root, runtime="nixos", locker="nix", runtime_options=options) as engine:
        gitrepo.commit_files(gitrepo.open_repo(engine.state.proposed("alpha")), {"notes.txt": b"x\n"}, "notes")
        done = engine.approve(engine.request_apply_commit("alpha", "main").id)
        assert done.status == "approved", done.error
        assert nixpkgs_path(engine) == str(pins["first"])
        engine.install_agent("beta")
        assert nixpkgs_path(engine) == str(pins["first"])
        engine.destroy("alpha")
        assert nixpkgs_path(engine) == str(pins["first"])
        log = engine.meta_log()
        assert len(log) == 5
        assert {c.nixpkgs for c in log[:4]} == {f"path:{pins['first']}"}
        assert log[-1].nixpkgs is None  # the empty meta flake locks nothing

    # The CLI shows it too, in the meta log and under the status table.
    common = ["--state", str(state.root), "--runtime", "nixos", "--locker", "nix",
              "--container-config-dir", str(host.etc)]
    for verb, shown in (("meta-log", f"destroy alpha  [nixpkgs path:{pins['first']}]"),
                        ("status", f"nixpkgs: path:{pins['first']}")):
        done = subprocess.run([sys.executable, "-m", "hive_tui", *common, verb],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert shown in done.stdout


@pytest.mark.parametrize("locked, ref", [
    ({"type": "github", "owner": "NixOS", "repo": "nixpkgs", "rev": "abc"}, "github:NixOS/nixpkgs/abc"),
    ({"type": "path", "path": "/nix/store/x-source", "narHash": "sha256-x"}, "path:/nix/store/x-source"),
    ({"type": "git", "url": "https://example.org/n.git", "rev": "abc"}, "git+https://example.org/n.git?rev=abc"),
])
def test_meta_log_names_the_locked_nixpkgs(locked, ref):
    from hive_tui.host.flakelock import locked_ref

    lock = {"nodes": {"root": {"inputs": {"nixpkgs": "nixpkgs_2"}},
                      "nixpkgs_2": {"locked": locked, "original": {"id": "nixpkgs", "type": "indirect"}}}}
    assert locked_ref(lock, "nixpkgs") == ref
    assert locked_ref({"nodes": {"root": {}}}, "nixpkgs") is None


# -- the VM check (it needs KVM; here it is evaluated, not run)

def test_the_flake_and_its_vm_test_parse():
    require_program("nix-instantiate")
    for path in (FLAKE, FLAKE.parent / "nix" / "vm-test.nix"):
        done = subprocess.run(["nix-instantiate", "--parse", str(path)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr


def test_the_vm_check_runs_the_module_through_a_whole_story(nix_env, tmp_path):
    vm = render_module()["vm"]
    assert vm["name"] == "hive-tui-vm"
    assert vm["imports"] == [{"_file": "the hive-tui module"}]
    assert vm["services"]["hive-tui"]["enable"] is True
    assert vm["boot"]["enableContainers"] is True
    script = tmp_path / "test_script.py"
    script.write_text(vm["testScript"])
    compiled = subprocess.run([sys.executable, "-m", "py_compile", str(script)],
                              capture_output=True, text=True, timeout=60)
    assert compiled.returncode == 0, compiled.stderr
    for step in ("spawn an agent", "deploy a change", "a failed build leaves the agent where it was",
                 "stopping the service lets the deploy in flight finish",
                 "after a restart the hive is whole"):
        assert f'subtest("{step}")' in vm["testScript"]
    assert "systemctl stop hive-tui.service" in vm["testScript"]


def test_a_followed_journal_ends_when_its_client_goes(host, state, profiles, tmp_path):
    """journalctl --follow is killed as the client hangs up, not at the journal's next line."""
    import asyncio

    from hive_tui.host.engine import Engine
    from hive_tui.host.server import Server

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
