"""Container runtimes: what the engine calls to build, run and stop an agent.

`local` runs each agent as a supervised process, the embedded default;
the lifecycle work adds `nixos` for real hosts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import HiveError
from ..layout import StateRoot

OutputSink = Callable[[str], None]


@dataclass(frozen=True)
class RunState:
    running: bool = False
    failed: bool = False


class Runtime(Protocol):
    name: str

    def containers(self) -> list[str]:
        """Names of the agents that have a container."""

    def create(self, name: str) -> None: ...

    def rebuild(self, name: str, repo: Path, sha: str, on_output: OutputSink) -> None:
        """Build `sha` of the agent's applied repo and (re)start it on the result.

        Raises BuildFailed with the error to record; the container keeps
        running what it ran before.
        """

    def stop(self, name: str) -> None: ...

    def run_state(self, name: str) -> RunState: ...

    def log_path(self, name: str) -> Path: ...


def make_runtime(kind: str, state: StateRoot, **options) -> Runtime:
    if kind == "local":
        from .local import LocalRuntime

        return LocalRuntime(state, **options)
    raise HiveError(f"unknown runtime {kind!r}: use local")
