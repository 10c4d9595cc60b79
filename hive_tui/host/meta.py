"""The meta flake: one input and one nixosConfiguration per agent, and a git
log that records only successful deploys.

A deploy walks it in three steps: `prepare_deploy` locks the agent's input
afresh in the working flake.lock without committing, then either
`finalize_deploy` commits that node, or `abort_deploy` puts the node back as
the last commit has it. Both touch only the agent's own node, so deploys of
different agents may be staged side by side.

A spawn walks it the same way (`prepare_spawn`, `finalize_spawn`,
`abort_spawn`): the new agent's input is rendered and locked in the working
files while its container is built, and committed only once it is up. A
destroy renders the flake again from the agents that remain (`rerender`).
Every commit is built from the last commit plus the nodes that change, never
from the working files, so one agent's staged work never leaks into
another's commit.
"""

from __future__ import annotations

import json
import platform
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pygit2

from ..errors import HiveError
from . import gitrepo
from .flakelock import Locker, dump_lock, empty_lock, input_url, locked_ref, locked_rev, read_lock
from .fsutil import write_atomic
from .stateroot import StateRoot

_SYSTEMS = {"x86_64": "x86_64-linux", "aarch64": "aarch64-linux", "arm64": "aarch64-linux"}


def input_name(agent: str) -> str:
    return f"agent-{agent}"


def render_flake(state: StateRoot, agents: list[str], system: str, extra_inputs: dict[str, str] | None = None) -> str:
    inputs = "".join(f'    {name} = {{ url = "{url}"; }};\n' for name, url in sorted((extra_inputs or {}).items()))
    inputs += "".join(
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
          # The agent's own config may name its host otherwise.
          {{ boot.isContainer = true; networking.hostName = nixpkgs.lib.mkDefault "h-${{name}}"; }}
        ];
      }};
    in {{
      nixosConfigurations = {{
{configs}      }};
    }};
}}
"""


def _with_agent_nodes(lock: dict, agent_nodes: dict[str, dict]) -> dict:
    """`lock` with exactly `agent_nodes` (input name -> node) as its agent
    nodes and root inputs; nodes of other inputs (nixpkgs) are kept."""
    nodes = {k: v for k, v in lock["nodes"].items() if not k.startswith("agent-")}
    root = dict(nodes.get("root", {}))
    inputs = {k: v for k, v in root.pop("inputs", {}).items() if not k.startswith("agent-")}
    inputs.update({name: name for name in agent_nodes})
    nodes["root"] = {**root, **({"inputs": inputs} if inputs else {})}
    return {**lock, "nodes": {**nodes, **agent_nodes}}


def _with_other_nodes(lock: dict, working: dict) -> dict:
    """`lock` with the nodes of other inputs (nixpkgs) the working lock holds.

    Nix resolves an indirect `nixpkgs` when it first locks the working file;
    a commit that left that node out would have every lock after a restart
    resolve it again, from wherever the registry points by then.
    """
    other = {k: v for k, v in working.get("nodes", {}).items()
             if k != "root" and not k.startswith("agent-")}
    if not other:
        return lock
    inputs = {k: v for k, v in working["nodes"].get("root", {}).get("inputs", {}).items()
              if not k.startswith("agent-")}
    nodes = {**lock["nodes"], **other}
    root = dict(nodes.get("root", {}))
    nodes["root"] = {**root, "inputs": {**root.get("inputs", {}), **inputs}}
    return {**lock, "nodes": nodes}


@dataclass(frozen=True)
class MetaCommit:
    sha: str
    message: str
    at: int
    # Where that commit's flake.lock has nixpkgs, what its containers build from.
    nixpkgs: str | None = None


class MetaFlake:
    def __init__(self, state: StateRoot, locker: Locker, system: str | None = None,
                 extra_inputs: dict[str, str] | None = None):
        self.state = state
        self.dir = state.meta
        self.locker = locker
        self.system = system or _SYSTEMS.get(platform.machine(), f"{platform.machine()}-linux")
        self.extra_inputs = dict(extra_inputs or {})
        # One meta operation at a time: a lock run rewrites the whole file.
        self._lock = threading.RLock()
        # Agents being spawned: in the working files, not yet committed. Changed
        # under the lock, always replaced whole: `spawning()` reads it without
        # waiting for a lock run.
        self._staging: frozenset[str] = frozenset()
        # Agents being destroyed: their nodes stay until their own destroy commits.
        self._leaving: set[str] = set()

    def _render(self, agents) -> str:
        return render_flake(self.state, sorted(set(agents)), self.system, self.extra_inputs)

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
        flake = self._render([]).encode()
        lock = dump_lock(empty_lock()).encode()
        gitrepo.init_repo(self.dir, {"flake.nix": flake, "flake.lock": lock}, "init meta flake")

    def committed_lock(self) -> dict:
        data = gitrepo.blob_at(self._repo(), "flake.lock")
        return json.loads(data) if data else {}

    def locked_rev(self, agent: str) -> str | None:
        """The applied sha the last successful deploy locked for `agent`."""
        return locked_rev(self.committed_lock(), input_name(agent))

    def _lock_working(self, agents: set[str]) -> dict:
        """Render and lock `agents` in the working files; returns the working lock's nodes."""
        repo = self._repo()
        (self.dir / "flake.nix").write_text(self._render(agents))
        # Nix reads a git flake's tracked files only: stage flake.nix first.
        gitrepo.stage(repo, ["flake.nix"])
        self.locker.lock(self.dir, self._inputs(sorted(agents)))
        return read_lock(self.dir).get("nodes", {})

    def _commit(self, nodes: dict[str, dict], message: str) -> str:
        """Commit flake.nix for exactly the agents in `nodes` (agent -> lock node),
        and the last commit's flake.lock with its agent nodes replaced by those."""
        lock = _with_agent_nodes(_with_other_nodes(self.committed_lock() or empty_lock(), read_lock(self.dir)),
                                 {input_name(a): node for a, node in nodes.items()})
        files = {"flake.nix": self._render(nodes).encode(), "flake.lock": dump_lock(lock).encode()}
        return str(gitrepo.commit_files(self._repo(), files, message, checkout=False))

    def _committed_nodes(self) -> dict[str, dict]:
        nodes = self.committed_lock().get("nodes", {})
        return {a: nodes[input_name(a)] for a in self.agents()}

    def _tidy_working(self) -> None:
        """Working files for the committed agents plus those being spawned, and no one else."""
        keep = {*self.agents(), *self._staging}
        (self.dir / "flake.nix").write_text(self._render(keep))
        gitrepo.stage(self._repo(), ["flake.nix"])
        working = read_lock(self.dir)
        names = {input_name(a) for a in keep}
        kept = {k: v for k, v in working["nodes"].items() if k in names}
        write_atomic(self.dir / "flake.lock", dump_lock(_with_agent_nodes(working, kept)))

    def reset_working(self) -> None:
        """Working files exactly as the last commit has them: after a restart
        nothing is staged, so anything else there is a crash's leftover."""
        with self._lock:
            self._staging = frozenset()
            repo = self._repo()
            for name in ("flake.nix", "flake.lock"):
                data = gitrepo.blob_at(repo, name) or b""
                if not (self.dir / name).exists() or (self.dir / name).read_bytes() != data:
                    write_atomic(self.dir / name, data.decode())
            gitrepo.stage(repo, ["flake.nix", "flake.lock"])

    def spawning(self) -> frozenset[str]:
        """Agents whose spawn is under way: they count once it has committed."""
        return self._staging

    def prepare_spawn(self, agent: str) -> dict:
        """Render and lock a new agent's input in the working files, uncommitted."""
        with self._lock:
            if agent in self.agents():
                raise HiveError(f"agent {agent} already has an input in the meta flake")
            if agent in self._staging:
                raise HiveError(f"agent {agent} is being spawned already")
            self._staging = self._staging | {agent}
            try:
                node = self._lock_working({*self.agents(), *self._staging}).get(input_name(agent))
                if node is None:
                    raise HiveError(f"locking left no node for {input_name(agent)} in flake.lock")
                return node
            except BaseException:
                self._staging = self._staging - {agent}
                self._tidy_working()
                raise

    def finalize_spawn(self, agent: str, node: dict, message: str) -> str:
        with self._lock:
            sha = self._commit({**self._committed_nodes(), agent: node}, message)
            self._staging = self._staging - {agent}
            self._tidy_working()
            return sha

    def abort_spawn(self, agent: str) -> None:
        with self._lock:
            self._staging = self._staging - {agent}
            self._tidy_working()

    @contextmanager
    def leaving(self, agent: str) -> Iterator[None]:
        """While `agent` is destroyed: a render by anyone else keeps its committed
        node, so that its own destroy is the one commit that drops it."""
        with self._lock:
            self._leaving.add(agent)
        try:
            yield
        finally:
            with self._lock:
                self._leaving.discard(agent)

    def rerender(self, agents: list[str] | Callable[[], list[str]], message: str,
                 dropping: str | None = None) -> str | None:
        """Commit the flake rendered from `agents` alone; None when nothing changed.

        Pass `agents` as a function to have the list read under the lock that
        commits it: read before, it may name an agent destroyed since, or one
        whose spawn has not succeeded. Agents keep their committed lock nodes;
        one without a node is locked. An agent being destroyed keeps its node,
        unless it is the one `dropping`.
        """
        with self._lock:
            listed = set(agents() if callable(agents) else agents) - self._staging
            nodes = self._committed_nodes()
            keep = {a for a in listed if a in nodes or a not in self._leaving}
            keep |= self._leaving & nodes.keys()
            keep.discard(dropping)
            if any(a not in nodes for a in keep):
                fresh = self._lock_working({*keep, *self._staging})
                nodes.update({a: fresh[input_name(a)] for a in keep if a not in nodes})
            wanted = {a: nodes[a] for a in sorted(keep)}
            sha = None
            if wanted != self._committed_nodes() or gitrepo.blob_at(self._repo(), "flake.nix") != self._render(keep).encode():
                sha = self._commit(wanted, message)
            self._tidy_working()
            return sha

    def prepare_deploy(self, agent: str) -> dict:
        """Lock `agent`'s input at its applied main in the working flake.lock, uncommitted."""
        with self._lock:
            agents = self.agents()
            if agent not in agents:
                raise HiveError(f"agent {agent} has no input in the meta flake")
            # Agents being spawned stay in the working lock beside this update.
            self.locker.lock(self.dir, self._inputs(sorted({*agents, *self._staging})), update=input_name(agent))
            node = read_lock(self.dir).get("nodes", {}).get(input_name(agent))
            if node is None:
                raise HiveError(f"locking left no node for {input_name(agent)} in flake.lock")
            return node

    def finalize_deploy(self, agent: str, node: dict, message: str, skip_unchanged: bool = False) -> str | None:
        """Commit the last commit's flake.lock with only `agent`'s node replaced by `node`.

        With `skip_unchanged`, a node equal to the committed one makes no
        commit (a rebuild of what is already deployed) and returns None.
        """
        with self._lock:
            committed = _with_other_nodes(self.committed_lock(), read_lock(self.dir))
            if skip_unchanged and committed["nodes"].get(input_name(agent)) == node:
                return None
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
            MetaCommit(str(c.id), c.message.strip(), c.commit_time, _nixpkgs_at(c))
            for c in repo.walk(head, pygit2.enums.SortMode.TOPOLOGICAL)
        ]


def _nixpkgs_at(commit: pygit2.Commit) -> str | None:
    try:
        return locked_ref(json.loads(commit.tree["flake.lock"].data), "nixpkgs")
    except (KeyError, ValueError, AttributeError):
        return None
