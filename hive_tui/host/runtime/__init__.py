"""Container runtimes: what the engine calls to build, run and stop an agent.

`local` runs each agent as a supervised process, the embedded default;
`nixos` drives nixos-container on a real NixOS host. The engine owns the
meta flake and the repos; a runtime owns only containers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Protocol

from ...errors import HiveError
from ...runtimes import RUNTIMES
from ..stateroot import StateRoot

OutputSink = Callable[[str], None]


@dataclass(frozen=True)
class RunState:
    running: bool = False
    failed: bool = False


class Runtime(Protocol):
    name: str
    # Inputs the meta flake needs besides the agents' (name -> flake URL).
    meta_inputs: dict[str, str]

    def containers(self) -> list[str]:
        """Names (without any container prefix) of the agents that have a container."""

    def create(self, name: str, repo: Path, sha: str, on_output: OutputSink) -> None:
        """Create the agent's container built from `sha` of its applied repo, and start it.

        The meta flake already holds the agent's input, locked at `sha`.
        Raises BuildFailed if it cannot be built; no container is left then.
        """

    def rebuild(self, name: str, repo: Path, sha: str, on_output: OutputSink) -> None:
        """Build `sha` and switch the container to it.

        The meta flake's working flake.lock holds `sha` for the agent, not yet
        committed. A running agent runs the new build afterwards; one stopped
        on purpose stays stopped. Raises BuildFailed with the error to record,
        and the container then runs what it ran before; if that cannot be
        restored, the error says how the container diverged.
        """

    def start(self, name: str) -> None: ...

    def stop(self, name: str, graceful: bool = True) -> None:
        """Stop the agent: a signal and a grace period first when graceful, then by force."""

    def destroy(self, name: str) -> None:
        """Stop the agent and remove its container; its repos and state folder stay."""

    def run_state(self, name: str) -> RunState: ...

    def log_argv(self, name: str, lines: int, follow: bool) -> list[str]:
        """The command that prints the agent's last `lines` log lines (and follows them)."""

    def log_file(self, name: str) -> Path | None:
        """The file the agent's log is in, followed in-process; None where only log_argv reads it."""


def run_states(runtime: Runtime, names: list[str]) -> dict[str, RunState]:
    """Each agent's run state: in one call where the runtime can read them
    all at once (`run_states`), else one `run_state` each."""
    batched = getattr(runtime, "run_states", None)
    if batched is not None:
        return batched(names)
    return {name: runtime.run_state(name) for name in names}


def make_runtime(kind: str, state: StateRoot, **options) -> Runtime:
    if kind not in RUNTIMES:
        raise HiveError(f"unknown runtime {kind!r}: use {' or '.join(RUNTIMES)}")
    module, cls, _ = RUNTIMES[kind]
    # Imported on demand: a host without nixos-container never loads its runtime.
    runtime: Runtime = getattr(import_module(module, __name__), cls)(state, **options)
    return runtime
