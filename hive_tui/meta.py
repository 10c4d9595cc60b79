"""The meta flake: one input and one nixosConfiguration per agent, and a git
log that records only successful deploys.

A deploy walks it in three steps: `prepare_deploy` locks the agent's input
afresh in the working flake.lock without committing, then either
`finalize_deploy` commits that node, or `abort_deploy` puts the node back as
the last commit has it. Both touch only the agent's own node, so deploys of
different agents may be staged side by side.
"""

from __future__ import annotations

import json
import platform
import threading
from dataclasses import dataclass
from pathlib import Path

import pygit2

from . import gitrepo
from .errors import HiveError
from .flakelock import Locker, dump_lock, empty_lock, input_url, locked_rev, read_lock
from .fsutil import write_atomic
from .layout import StateRoot

_SYSTEMS = {"x86_64": "x86_64-linux", "aarch64": "aarch64-linux", "arm64": "aarch64-linux"}


def input_name(agent: str) -> str:
    return f"agent-{agent}"


def render_flake(state: StateRoot, agents: list[str], system: str) -> str:
    inputs = "".join(
        f'    {input_name(a)} = {{ url = "git+{input_url(state.applied(a))}?ref=main"; flake = false; }};\n'
        for a in agents
    )
    configs = "".join(f'        {a} = agent "{a}" inputs.{input_name(a)};\n' for a in agents)
    return f"""# Written by hive-tui from the agents it runs; edits here are overwritten.
{{
  description = "hive-tui meta flake";

  inputs = {{
{inputs}  }};

  outputs = inputs:
    let
      nixpkgs = inputs.nixpkgs or (throw "the meta flake has no nixpkgs input; the nixos runtime adds one");
      # Each agent's applied repo holds its container's NixOS module.
      agent = name: src: nixpkgs.lib.nixosSystem {{
        system = "{system}";
        specialArgs = {{ agentName = name; }};
        modules = [
          "${{src}}/configuration.nix"
          {{ boot.isContainer = true; networking.hostName = "h-${{name}}"; }}
        ];
      }};
    in {{
      nixosConfigurations = {{
{configs}      }};
    }};
}}
"""


@dataclass(frozen=True)
class MetaCommit:
    sha: str
    message: str
    at: int


class MetaFlake:
    def __init__(self, state: StateRoot, locker: Locker, system: str | None = None):
        self.state = state
        self.dir = state.meta
        self.locker = locker
        self.system = system or _SYSTEMS.get(platform.machine(), f"{platform.machine()}-linux")
        # One meta operation at a time: a lock run rewrites the whole file.
        self._lock = threading.RLock()

    def _repo(self) -> pygit2.Repository:
        return gitrepo.open_repo(self.dir)

    def _inputs(self, agents: list[str]) -> dict[str, Path]:
        return {input_name(a): self.state.applied(a) for a in agents}

    def agents(self) -> list[str]:
        """The agents the committed flake.lock holds a node for."""
        lock = self.committed_lock()
        return sorted(n[len("agent-"):] for n in lock.get("nodes", {}) if n.startswith("agent-"))

    def ensure(self) -> None:
        """Create the meta repo, with no agents, if it is not there yet."""
        if (self.dir / ".git").exists():
            return
        self.dir.mkdir(mode=0o700, exist_ok=True)
        flake = render_flake(self.state, [], self.system).encode()
        lock = dump_lock(empty_lock()).encode()
        gitrepo.init_repo(self.dir, {"flake.nix": flake, "flake.lock": lock}, "init meta flake")

    def committed_lock(self) -> dict:
        data = gitrepo.blob_at(self._repo(), "flake.lock")
        return json.loads(data) if data else {}

    def locked_rev(self, agent: str) -> str | None:
        """The applied sha the last successful deploy locked for `agent`."""
        return locked_rev(self.committed_lock(), input_name(agent))

    def sync(self, agents: list[str], message: str) -> str:
        """Render flake.nix for `agents`, lock what is new, commit both (one phase)."""
        with self._lock:
            repo = self._repo()
            flake = render_flake(self.state, agents, self.system)
            (self.dir / "flake.nix").write_text(flake)
            # Nix reads a git flake's tracked files only: stage flake.nix first.
            gitrepo.stage(repo, ["flake.nix"])
            self.locker.lock(self.dir, self._inputs(agents))
            files = {"flake.nix": flake.encode(), "flake.lock": (self.dir / "flake.lock").read_bytes()}
            return str(gitrepo.commit_files(repo, files, message, checkout=False))

    def prepare_deploy(self, agent: str) -> dict:
        """Lock `agent`'s input at its applied main in the working flake.lock, uncommitted."""
        with self._lock:
            agents = self.agents()
            if agent not in agents:
                raise HiveError(f"agent {agent} has no input in the meta flake")
            self.locker.lock(self.dir, self._inputs(agents), update=input_name(agent))
            node = read_lock(self.dir).get("nodes", {}).get(input_name(agent))
            if node is None:
                raise HiveError(f"locking left no node for {input_name(agent)} in flake.lock")
            return node

    def finalize_deploy(self, agent: str, node: dict, message: str) -> str:
        """Commit the last commit's flake.lock with only `agent`'s node replaced by `node`."""
        with self._lock:
            committed = self.committed_lock()
            committed["nodes"][input_name(agent)] = node
            text = dump_lock(committed).encode()
            return str(gitrepo.commit_files(self._repo(), {"flake.lock": text}, message, checkout=False))

    def abort_deploy(self, agent: str) -> None:
        """Put `agent`'s node in the working flake.lock back as the last commit has it."""
        with self._lock:
            committed = self.committed_lock()
            working = read_lock(self.dir)
            name = input_name(agent)
            if name in committed["nodes"]:
                working["nodes"][name] = committed["nodes"][name]
            else:
                working["nodes"].pop(name, None)
            write_atomic(self.dir / "flake.lock", dump_lock(working))

    def log(self) -> list[MetaCommit]:
        repo = self._repo()
        head = repo.references[gitrepo.MAIN].target
        return [
            MetaCommit(str(c.id), c.message.strip(), c.commit_time)
            for c in repo.walk(head, pygit2.enums.SortMode.TOPOLOGICAL)
        ]
