"""The nixos runtime: each agent is a NixOS container on this host.

Agent `n` runs in the container `h-n`, built from `nixosConfigurations.n` of
the meta flake, and driven with nixos-container, systemctl, nix-env and
journalctl. Each is run by its bare name, looked up on PATH at call time, as
an argv list (never through a shell) and with a timeout, so a hung tool
cannot hang the engine. A failed command is reported with its argv and the
last lines it printed, since that is all an operator has to go on.

The subtle part is a failed rebuild: `nixos-container update` switches the
container's system profile before it reloads the container, so a failure
in the reload leaves the profile on the new generation. Putting flake.lock
back does not undo that; the profile is switched back here, and when that
is impossible the error says the container diverged instead of looking
like an ordinary failed build.

The rest follows how nixpkgs' nixos-container script behaves: `create`
writes the container's .conf before it builds and dies without cleaning up,
so a failed create is destroyed here; each build links its result as
`./.tmp` in the caller's working directory, so each agent builds in its own
folder; `terminate` dies for a container that is not running; and
`journalctl --machine=` reads only a running container's journal.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

from ...errors import BuildFailed, HiveError
from ...names import check_name, is_valid_name
from ..stateroot import StateRoot
from . import OutputSink, RunState
from .procs import run_streaming, signal_group

PREFIX = "h-"
# nixos-container refuses longer container names (they become interface names).
MAX_CONTAINER_NAME = 11
TAIL_LINES = 20
# Units per `systemctl show`: one call for any hive that fits, a bounded argv beyond.
SHOW_BATCH = 512
_RUNNING_STATES = {"active", "reloading", "activating", "deactivating"}
_GENERATION_RE = re.compile(r"system-(\d+)-link")
# Where an agent finds its state folder inside its container.
STATE_MOUNT = "/var/lib/hive-agent"
# A path that passes unchanged through the .conf (a systemd EnvironmentFile),
# the unquoted shell expansion of EXTRA_NSPAWN_FLAGS and nspawn's --bind=SRC:DST.
_BINDABLE_RE = re.compile(r"/[A-Za-z0-9._/+@-]*")
# A flake reference goes into the meta flake as a Nix string: nothing that
# could end the string or start an interpolation.
_FLAKE_REF_RE = re.compile(r"[A-Za-z0-9._/:?&=+@%~,-]+")


class NixosRuntime:
    name = "nixos"

    def __init__(
        self,
        state: StateRoot,
        profiles_dir: str | Path = "/nix/var/nix/profiles/per-container",
        build_timeout: float = 1800.0,
        command_timeout: float = 120.0,
        nixpkgs: str = "nixpkgs",
        container_config_dir: str | Path = "/etc/nixos-containers",
    ):
        if not _FLAKE_REF_RE.fullmatch(nixpkgs):
            raise HiveError(f"nixpkgs {nixpkgs!r} is not a flake reference the meta flake can hold: "
                            f"use letters, digits and . _ / : ? & = + @ % ~ , -")
        self.state = state
        self.profiles_dir = Path(profiles_dir)
        self.container_config_dir = Path(container_config_dir)
        self.build_timeout = build_timeout
        self.command_timeout = command_timeout
        self.meta_inputs = {"nixpkgs": nixpkgs}

    # -- what each action runs

    def containers(self) -> list[str]:
        out = self._run(["nixos-container", "list"])
        names = (line.strip() for line in out.splitlines())
        return sorted(
            line[len(PREFIX):] for line in names
            if line.startswith(PREFIX) and is_valid_name(line[len(PREFIX):])
        )

    def create(self, name: str, repo: Path, sha: str, on_output: OutputSink) -> None:
        container = _container(name)
        if len(container) > MAX_CONTAINER_NAME:
            raise HiveError(
                f"agent name {name!r} is too long for the nixos runtime: its "
                f"container {container!r} would have {len(container)} characters, "
                f"and nixos-container allows {MAX_CONTAINER_NAME}; use at most "
                f"{MAX_CONTAINER_NAME - len(PREFIX)}"
            )
        bind = self._state_bind(name)
        build = ["nixos-container", "create", container, "--flake", self._flake(name)]
        try:
            self._build(name, build, on_output)
        except BuildFailed as e:
            # nixos-container writes the container's .conf and profile folder
            # before it builds, and leaves them when the build fails; they
            # would keep the name taken. destroy exits 0 when nothing is there.
            raise BuildFailed(self._remove_after_failure(container, str(e))) from None
        try:
            self._bind_state(container, bind)
            self._run(["nixos-container", "start", container])
        except HiveError as e:
            message = f"container {container} was built but did not start: {e}"
            raise BuildFailed(self._remove_after_failure(container, message)) from None

    def _remove_after_failure(self, container: str, message: str) -> str:
        try:
            self._run(["nixos-container", "destroy", container])
        except HiveError as e:
            message += f"\nremoving it failed too, so it is left behind: {e}"
        return message

    def rebuild(self, name: str, repo: Path, sha: str, on_output: OutputSink) -> None:
        container = _container(name)
        profile = self.profiles_dir / container / "system"
        before = _link(profile)
        build = ["nixos-container", "update", container, "--flake", self._flake(name)]
        try:
            self._build(name, build, on_output)
            return
        except BuildFailed as e:
            error = str(e)
        if _link(profile) == before:
            raise BuildFailed(error)
        raise BuildFailed(f"{error}\n{self._roll_back(name, profile, before)}")

    def _roll_back(self, name: str, profile: Path, before: str | None) -> str:
        """Put the profile back on `before` after a failed update moved it.

        Returns what was done, or how the container diverged.
        """
        container = _container(name)
        moved, expected = _generation(_link(profile)), _generation(before)
        if expected is None:
            return _diverged(container, profile, moved, expected,
                             "there was no previous generation to roll back to")
        switch = ["nix-env", "-p", str(profile), "--switch-generation", str(expected)]
        try:
            self._run(switch)
        except HiveError as e:
            now = _generation(_link(profile))
            return _diverged(container, profile, now, expected,
                             f"rolling back failed: {e}")
        done = (f"the failed update had moved {container}'s system profile to "
                f"generation {moved}; it was rolled back to generation {expected}")
        try:
            # The profile alone is not what runs: a running container re-activates it.
            if self.run_state(name).running:
                self._run(["systemctl", "reload", _unit(container)])
        except HiveError as e:
            return (f"{done}, but re-activating it failed, so container {container} "
                    f"DIVERGED: it may still run generation {moved}, or a mix; the "
                    f"operator must fix it (reload {_unit(container)} or rebuild the "
                    f"container): {e}")
        return done

    def start(self, name: str) -> None:
        container = _container(name)
        # A container made before its state was bound gets it now.
        self._bind_state(container, self._state_bind(name))
        self._run(["nixos-container", "start", container])

    def _state_bind(self, name: str) -> str:
        """The .conf line that binds the agent's state folder into its container."""
        folder = self.state.agent_state(name)
        if not _BINDABLE_RE.fullmatch(str(folder)):
            raise HiveError(
                f"the state folder {folder} cannot be bound into a container: its path "
                f"may hold only letters, digits and . _ / + @ -; move the hive's state root"
            )
        folder.mkdir(mode=0o700, exist_ok=True)
        return f'EXTRA_NSPAWN_FLAGS="--bind={folder}:{STATE_MOUNT}"'

    def _bind_state(self, container: str, line: str) -> None:
        """Put `line` in the container's .conf, which container@.service reads
        as its environment, in place of any other EXTRA_NSPAWN_FLAGS.

        A missing .conf is left missing: nixos-container reports that itself.
        """
        conf = self.container_config_dir / f"{container}.conf"
        try:
            old = conf.read_text()
            mode = conf.stat().st_mode & 0o777
        except FileNotFoundError:
            return
        except OSError as e:
            raise HiveError(f"cannot read {conf}: {e.strerror}") from None
        kept = [x for x in old.splitlines() if not x.startswith("EXTRA_NSPAWN_FLAGS=")]
        new = "".join(f"{x}\n" for x in [*kept, line])
        if new == old:
            return
        tmp = conf.with_name(f".{conf.name}.hive-tui")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
            with os.fdopen(fd, "w") as f:
                f.write(new)
            os.chmod(tmp, mode)
            os.replace(tmp, conf)
        except OSError as e:
            raise HiveError(f"cannot write {conf}: {e.strerror}") from None

    def stop(self, name: str, graceful: bool = True) -> None:
        container = _container(name)
        if graceful:
            try:
                # systemd signals the container, waits its grace period, then kills.
                self._run(["nixos-container", "stop", container])
                return
            except HiveError:
                pass
        try:
            self._run(["nixos-container", "terminate", container])
        except HiveError as e:
            # terminate dies ("unable to get container's main PID") when there
            # is no container process: a container that is not running is stopped.
            try:
                running = self.run_state(name).running
            except HiveError:
                raise e from None
            if running:
                raise

    def destroy(self, name: str) -> None:
        self._run(["nixos-container", "destroy", _container(name)])

    def run_state(self, name: str) -> RunState:
        unit = _unit(_container(name))
        show = ["systemctl", "show", "--property=ActiveState", "--value", unit]
        return _run_state(self._run(show).strip())

    def run_states(self, names: list[str]) -> dict[str, RunState]:
        """The run state of each agent in `names`, from one `systemctl show`
        for all their units (a few, for a hive too large for one argv)."""
        units = {_unit(_container(name)): name for name in names}
        states: dict[str, RunState] = {}
        listed = list(units)
        for start in range(0, len(listed), SHOW_BATCH):
            batch = listed[start:start + SHOW_BATCH]
            out = self._run(["systemctl", "show", "--property=Id,ActiveState", *batch])
            for unit, state in _show_records(out).items():
                if unit in units:
                    states[units[unit]] = _run_state(state)
        missing = [units[u] for u in listed if units[u] not in states]
        if missing:
            raise HiveError(f"systemctl show printed no state for {', '.join(_unit(_container(n)) for n in missing)}")
        return states

    def log_file(self, name: str) -> None:
        return None  # the journal is read through journalctl

    def log_argv(self, name: str, lines: int, follow: bool) -> list[str]:
        container = _container(name)
        # --machine= opens the journal of a running container only; a stopped
        # or crashed one's output is in its unit's journal on the host.
        if self.run_state(name).running:
            source = [f"--machine={container}"]
        else:
            source = ["-u", _unit(container)]
        argv = ["journalctl", *source, "--no-pager", "--output=short-iso",
                "--lines", str(int(lines))]
        return argv + ["--follow"] if follow else argv

    # -- running commands

    def _flake(self, name: str) -> str:
        return f"{self.state.meta}#{check_name(name)}"

    def _build(self, name: str, argv: list[str], on_output: OutputSink) -> None:
        """Run a build, streaming its output; BuildFailed with its tail if it fails.

        nixos-container links the build result as `./.tmp` in its working
        directory and reads it back: builds of two agents in one folder can
        read each other's result. Each agent's builds run in its own folder.
        """
        resolved = _resolve(argv)
        workdir = self.state.container(name)
        workdir.mkdir(mode=0o700, exist_ok=True)
        try:
            out = run_streaming(resolved, on_output, self.build_timeout,
                                cwd=workdir, tail_lines=TAIL_LINES)
        except OSError as e:
            raise HiveError(f"cannot run {argv[0]}: {e.strerror}") from None
        if out.timed_out:
            what = f"timed out after {self.build_timeout:g}s"
            raise BuildFailed(_failure(argv, what, out.tail))
        if out.code != 0:
            raise BuildFailed(_failure(argv, f"exited with {out.code}", out.tail))

    def _run(self, argv: list[str]) -> str:
        """Run a short command and return its stdout; HiveError if it fails."""
        proc = subprocess.Popen(
            _resolve(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
        )
        try:
            # A whole group is killed, since a grandchild holding the pipes
            # would keep communicate() waiting after the child itself is gone.
            try:
                stdout, stderr = proc.communicate(timeout=self.command_timeout)
            except subprocess.TimeoutExpired:
                signal_group(proc.pid, signal.SIGKILL)
                stdout, stderr = proc.communicate()
                what = f"timed out after {self.command_timeout:g}s"
                raise HiveError(_failure(argv, what, _lines(stderr + stdout))) from None
        finally:
            signal_group(proc.pid, signal.SIGKILL)
        if proc.returncode != 0:
            what = f"exited with {proc.returncode}"
            raise HiveError(_failure(argv, what, _lines(stderr + stdout)))
        return stdout.decode("utf-8", "replace")


def _run_state(active_state: str) -> RunState:
    if active_state in _RUNNING_STATES:
        return RunState(running=True)
    if active_state == "failed":
        return RunState(failed=True)
    return RunState()


def _show_records(out: str) -> dict[str, str]:
    """Unit id -> ActiveState, from `systemctl show -p Id,ActiveState` of
    several units: a block of KEY=value lines each, blank lines between."""
    records: dict[str, str] = {}
    for block in out.split("\n\n"):
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "Id" in fields:
            records[fields["Id"]] = fields.get("ActiveState", "")
    return records


def _container(name: str) -> str:
    return PREFIX + check_name(name)


def _unit(container: str) -> str:
    return f"container@{container}.service"


def _resolve(argv: list[str]) -> list[str]:
    path = shutil.which(argv[0])
    if path is None:
        raise HiveError(f"{argv[0]} is not installed or not on PATH")
    return [path, *argv[1:]]


def _lines(output: bytes) -> list[str]:
    return output.decode("utf-8", "replace").splitlines()[-TAIL_LINES:]


def _failure(argv: list[str], what: str, tail: list[str]) -> str:
    return "\n".join([f"`{shlex.join(argv)}` {what}", *tail])


def _link(profile: Path) -> str | None:
    try:
        return os.readlink(profile)
    except OSError:
        return None


def _generation(link: str | None) -> int | None:
    match = _GENERATION_RE.fullmatch(os.path.basename(link)) if link else None
    return int(match.group(1)) if match else None


def _diverged(container: str, profile: Path, now: int | None, expected: int | None,
              why: str) -> str:
    return (
        f"container {container} DIVERGED: its system profile {profile} is at "
        f"generation {_show(now)} while the hive expected generation "
        f"{_show(expected)}; {why}. The operator must fix it: switch the profile "
        f"back (nix-env -p {profile} --switch-generation <generation>) and reload "
        f"{_unit(container)}, or rebuild the container."
    )


def _show(generation: int | None) -> str:
    return "unknown" if generation is None else str(generation)
