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
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

from ..errors import BuildFailed, HiveError
from ..layout import StateRoot
from ..names import check_name, is_valid_name
from . import OutputSink, RunState
from .procs import run_streaming, signal_group

PREFIX = "h-"
# nixos-container refuses longer container names (they become interface names).
MAX_CONTAINER_NAME = 11
TAIL_LINES = 20
_RUNNING_STATES = {"active", "reloading", "activating", "deactivating"}
_GENERATION_RE = re.compile(r"system-(\d+)-link")


class NixosRuntime:
    name = "nixos"

    def __init__(
        self,
        state: StateRoot,
        profiles_dir: str | Path = "/nix/var/nix/profiles/per-container",
        build_timeout: float = 1800.0,
        command_timeout: float = 120.0,
        nixpkgs: str = "nixpkgs",
    ):
        self.state = state
        self.profiles_dir = Path(profiles_dir)
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
        build = ["nixos-container", "create", container, "--flake", self._flake(name)]
        self._build(build, on_output)
        try:
            self._run(["nixos-container", "start", container])
        except HiveError as e:
            message = f"container {container} was built but did not start: {e}"
            try:
                self._run(["nixos-container", "destroy", container])
            except HiveError as e2:
                message += f"\nremoving it failed too, so it is left behind: {e2}"
            raise BuildFailed(message) from None

    def rebuild(self, name: str, repo: Path, sha: str, on_output: OutputSink) -> None:
        container = _container(name)
        profile = self.profiles_dir / container / "system"
        before = _link(profile)
        build = ["nixos-container", "update", container, "--flake", self._flake(name)]
        try:
            self._build(build, on_output)
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
        self._run(["nixos-container", "start", _container(name)])

    def stop(self, name: str, graceful: bool = True) -> None:
        container = _container(name)
        if graceful:
            try:
                # systemd signals the container, waits its grace period, then kills.
                self._run(["nixos-container", "stop", container])
                return
            except HiveError:
                pass
        self._run(["nixos-container", "terminate", container])

    def destroy(self, name: str) -> None:
        self._run(["nixos-container", "destroy", _container(name)])

    def run_state(self, name: str) -> RunState:
        unit = _unit(_container(name))
        show = ["systemctl", "show", "--property=ActiveState", "--value", unit]
        state = self._run(show).strip()
        if state in _RUNNING_STATES:
            return RunState(running=True)
        if state == "failed":
            return RunState(failed=True)
        return RunState()

    def log_file(self, name: str) -> None:
        return None  # the journal is read through journalctl

    def log_argv(self, name: str, lines: int, follow: bool) -> list[str]:
        argv = ["journalctl", f"--machine={_container(name)}", "--no-pager",
                "--output=short-iso", "--lines", str(int(lines))]
        return argv + ["--follow"] if follow else argv

    # -- running commands

    def _flake(self, name: str) -> str:
        return f"{self.state.meta}#{check_name(name)}"

    def _build(self, argv: list[str], on_output: OutputSink) -> None:
        """Run a build, streaming its output; BuildFailed with its tail if it fails."""
        resolved = _resolve(argv)
        try:
            out = run_streaming(resolved, on_output, self.build_timeout,
                                tail_lines=TAIL_LINES)
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
