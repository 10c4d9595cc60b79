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

A spawn or a deploy locks its own agent's input alone, and the parsed
committed and working locks are kept between calls (keyed by the blob and
by the file's identity), so what one costs does not grow with the number of
agents beyond writing the files themselves.
"""

from __future__ import annotations

import json
import os
import platform
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pygit2

from ..errors import HiveError
from ..names import check_name
from . import gitrepo
from .flakelock import Locker, dump_lock, empty_lock, input_url, locked_ref, locked_rev, read_lock
from .fsutil import write_atomic
from .stateroot import StateRoot

_SYSTEMS = {"x86_64": "x86_64-linux", "aarch64": "aarch64-linux", "arm64": "aarch64-linux"}


def input_name(agent: str) -> str:
    return f"agent-{agent}"


def render_flake(state: StateRoot, agents: list[str], system: str, extra_inputs: dict[str, str] | None = None) -> str:
    inputs = "".join(f'    {name} = {{ url = "{url}"; }};\n' for name, url in sorted((extra_inputs or {}).items()))
    # The applied area is resolved once: a valid name needs no quoting, and
    # resolving each agent's path made every render cost a stat per agent.
    applied = input_url(state.root.resolve() / "applied")
    inputs += "".join(
        f'    {input_name(a)} = {{ url = "git+{applied}/{check_name(a)}?ref=main"; flake = false; }};\n'
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
        # Whether the committed flake may differ from the agents the hive has:
        # until a render succeeds, as after a destroy whose render failed.
        self._owed = True
        # The parsed committed flake.lock, by its blob id; the parsed working
        # flake.lock, by the file's identity, and the working flake.nix's text.
        # Only this engine writes the meta folder (it owns the state root).
        self._committed: tuple[pygit2.Oid, dict] | None = None
        self._working: tuple[tuple[int, int, int], dict] | None = None
        self._working_flake: str | None = None

    def _render(self, agents) -> str:
        return render_flake(self.state, sorted(set(agents)), self.system, self.extra_inputs)

    def _repo(self) -> pygit2.Repository:
        return gitrepo.open_repo(self.dir)

    def _inputs(self, agents: list[str]) -> dict[str, Path]:
        return {input_name(a): self.state.applied(a) for a in agents}

    def agents(self) -> list[str]:
        """The agents the committed flake.lock holds a node for."""
        return _agents_of(self.committed_lock())

    def ensure(self) -> None:
        """Create the meta repo, with no agents, if it is not there yet."""
        if (self.dir / ".git").exists():
            return
        self.dir.mkdir(mode=0o700, exist_ok=True)
        flake = self._render([]).encode()
        lock = dump_lock(empty_lock()).encode()
        gitrepo.init_repo(self.dir, {"flake.nix": flake, "flake.lock": lock}, "init meta flake")

    def committed_lock(self) -> dict:
        """The last commit's flake.lock, parsed; the caller may change the
        returned dict and its `nodes`, never a node itself."""
        repo = self._repo()
        tree = repo[repo.references[gitrepo.MAIN].target].peel(pygit2.Tree)
        try:
            blob_id = tree["flake.lock"].id
        except KeyError:
            return {}
        cached = self._committed
        if cached is not None and cached[0] == blob_id:
            lock = cached[1]
        else:
            lock = _same_nodes(json.loads(repo[blob_id].data), cached[1] if cached else None)
            self._committed = (blob_id, lock)
        return _copy_lock(lock)

    def _commit_lock(self, lock: dict, files: dict[str, bytes], message: str) -> str:
        """Commit `files`, whose flake.lock is `lock` dumped; its parse is kept."""
        sha = str(gitrepo.commit_files(self._repo(), files, message, checkout=False))
        self._committed = (pygit2.hash(files["flake.lock"]), _copy_lock(lock))
        return sha

    def locked_rev(self, agent: str) -> str | None:
        """The applied sha the last successful deploy locked for `agent`."""
        return locked_rev(self.committed_lock(), input_name(agent))

    def _read_working(self) -> dict:
        """The working flake.lock, parsed; reparsed only when the file changed."""
        path = self.dir / "flake.lock"
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return empty_lock()
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._working
        if cached is None or cached[0] != key:
            cached = (key, _same_nodes(read_lock(self.dir), self._committed[1] if self._committed else None))
            self._working = cached
        return _copy_lock(cached[1])

    def _write_working(self, lock: dict) -> None:
        write_atomic(self.dir / "flake.lock", dump_lock(lock))
        st = os.stat(self.dir / "flake.lock")
        self._working = ((st.st_ino, st.st_size, st.st_mtime_ns), _copy_lock(lock))

    def _write_flake(self, agents, stage: bool = False) -> None:
        """The working flake.nix for `agents`. Nix reads a git flake's tracked
        files as the working tree has them; flake.nix is tracked from the
        meta repo's first commit, so it is staged only where the index must
        match it (after a reset)."""
        text = self._render(agents)
        if text != self._working_flake or not (self.dir / "flake.nix").exists():
            write_atomic(self.dir / "flake.nix", text)
            self._working_flake = text
        if stage:
            gitrepo.stage(self._repo(), ["flake.nix"])

    def _put_working(self, agent: str, node: dict) -> None:
        """The working flake.lock with `agent`'s node set to `node`, the rest as it is."""
        working = self._read_working()
        name = input_name(agent)
        if working["nodes"].get(name) == node and name in working["nodes"].get("root", {}).get("inputs", {}):
            return
        root = dict(working["nodes"].get("root", {}))
        root["inputs"] = {**root.get("inputs", {}), name: name}
        working["nodes"][name] = node
        working["nodes"]["root"] = root
        self._write_working(working)

    def _lock_one(self, agent: str) -> dict:
        """Lock `agent`'s input afresh at its applied main, in the working flake.lock.

        Once the meta flake's other inputs (nixpkgs) are locked, the input is
        locked alone (hashing the agent's whole tree, or a run of Nix) before
        the meta flake's lock is taken, so that deploys of other agents are
        not held up behind it; the repo is the agent's own action's, which
        holds the agent's turn throughout. Until then Nix locks it in the
        meta folder, where it locks those inputs too.
        """
        with self._lock:
            inputs = self._read_working()["nodes"].get("root", {}).get("inputs", {})
            alone = all(name in inputs for name in self.extra_inputs)
        node = self.locker.lock_alone(input_name(agent), self.state.applied(agent)) if alone else None
        with self._lock:
            if node is None:
                node = self.locker.lock_input(self.dir, input_name(agent), self.state.applied(agent))
                self._working = None  # rewritten by the locker: parsed afresh
            self._put_working(agent, node)
            return node

    def _lock_working(self, agents: set[str]) -> dict:
        """Render and lock `agents` in the working files; returns the working lock's nodes."""
        self._write_flake(agents, stage=True)
        self.locker.lock(self.dir, self._inputs(sorted(agents)))
        self._working = None
        return self._read_working().get("nodes", {})

    def _commit(self, nodes: dict[str, dict], message: str) -> str:
        """Commit flake.nix for exactly the agents in `nodes` (agent -> lock node),
        and the last commit's flake.lock with its agent nodes replaced by those."""
        lock = _with_agent_nodes(_with_other_nodes(self.committed_lock() or empty_lock(), self._read_working()),
                                 {input_name(a): node for a, node in nodes.items()})
        files = {"flake.nix": self._render(nodes).encode(), "flake.lock": dump_lock(lock).encode()}
        return self._commit_lock(lock, files, message)

    def _committed_nodes(self) -> dict[str, dict]:
        nodes = self.committed_lock().get("nodes", {})
        return {n[len("agent-"):]: node for n, node in nodes.items() if n.startswith("agent-")}

    def _tidy_working(self) -> None:
        """Working files for the committed agents plus those being spawned, and no one else."""
        keep = {*self.agents(), *self._staging}
        self._write_flake(keep, stage=True)
        working = self._read_working()
        names = {input_name(a) for a in keep}
        kept = {k: v for k, v in working["nodes"].items() if k in names}
        self._write_working(_with_agent_nodes(working, kept))

    def reset_working(self) -> None:
        """Working files exactly as the last commit has them: after a restart
        nothing is staged, so anything else there is a crash's leftover."""
        with self._lock:
            self._staging = frozenset()
            self._working = None
            self._working_flake = None
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
        """Render the new agent's input and lock it alone in the working files, uncommitted."""
        with self._lock:
            if agent in _agents_of(self.committed_lock()):
                raise HiveError(f"agent {agent} already has an input in the meta flake")
            if agent in self._staging:
                raise HiveError(f"agent {agent} is being spawned already")
            self._staging = self._staging | {agent}
        try:
            with self._lock:
                # Read again under the lock: a spawn may have committed meanwhile.
                self._write_flake({*_agents_of(self.committed_lock()), *self._staging})
            return self._lock_one(agent)
        except BaseException:
            with self._lock:
                self._staging = self._staging - {agent}
                self._tidy_working()
            raise

    def finalize_spawn(self, agent: str, node: dict, message: str) -> str:
        with self._lock:
            sha = self._commit({**self._committed_nodes(), agent: node}, message)
            # The working files held the agent while it was staged, and hold it
            # now it is committed: they need no tidying.
            self._staging = self._staging - {agent}
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

    def render_owed(self, agents: Callable[[], list[str]], message: str) -> str | None:
        """`rerender` if the flake may not match the agents the hive has (an
        earlier render failed, or none has run since the engine started);
        None, and nothing read, when every change since went through here."""
        with self._lock:
            if not self._owed:
                return None
            return self.rerender(agents, message)

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
            self._owed = True
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
            self._owed = False
            return sha

    def prepare_deploy(self, agent: str) -> dict:
        """Lock `agent`'s input at its applied main in the working flake.lock, uncommitted."""
        if agent not in _agents_of(self.committed_lock()):
            raise HiveError(f"agent {agent} has no input in the meta flake")
        return self._lock_one(agent)

    def finalize_deploy(self, agent: str, node: dict, message: str, skip_unchanged: bool = False) -> str | None:
        """Commit the last commit's flake.lock with only `agent`'s node replaced by `node`.

        With `skip_unchanged`, a node equal to the committed one makes no
        commit (a rebuild of what is already deployed) and returns None.
        """
        with self._lock:
            committed = _with_other_nodes(self.committed_lock(), self._read_working())
            if skip_unchanged and committed["nodes"].get(input_name(agent)) == node:
                return None
            committed["nodes"][input_name(agent)] = node
            return self._commit_lock(committed, {"flake.lock": dump_lock(committed).encode()}, message)

    def abort_deploy(self, agent: str) -> None:
        """Put `agent`'s node in the working flake.lock back as the last commit has it."""
        with self._lock:
            committed = self.committed_lock()
            working = self._read_working()
            name = input_name(agent)
            if name in committed["nodes"]:
                working["nodes"][name] = committed["nodes"][name]
            else:
                working["nodes"].pop(name, None)
            self._write_working(working)

    def log(self) -> list[MetaCommit]:
        repo = self._repo()
        head = repo.references[gitrepo.MAIN].target
        return [
            MetaCommit(str(c.id), c.message.strip(), c.commit_time, _nixpkgs_at(c))
            for c in repo.walk(head, pygit2.enums.SortMode.TOPOLOGICAL)
        ]


def _copy_lock(lock: dict) -> dict:
    """A lock whose top level and `nodes` may be changed without touching `lock`."""
    return {**lock, "nodes": dict(lock["nodes"])} if isinstance(lock.get("nodes"), dict) else dict(lock)


def _same_nodes(lock: dict, old: dict | None) -> dict:
    """`lock` with each node equal to one of `old` replaced by that very object,
    so a dump reuses its text (see flakelock.dump_lock)."""
    nodes, old_nodes = lock.get("nodes"), (old or {}).get("nodes")
    if isinstance(nodes, dict) and isinstance(old_nodes, dict):
        for name, node in nodes.items():
            prev = old_nodes.get(name)
            if prev is not None and prev == node:
                nodes[name] = prev
    return lock


def _agents_of(lock: dict) -> list[str]:
    return sorted(n[len("agent-"):] for n in lock.get("nodes", {}) if n.startswith("agent-"))


def _nixpkgs_at(commit: pygit2.Commit) -> str | None:
    try:
        return locked_ref(json.loads(commit.tree["flake.lock"].data), "nixpkgs")
    except (KeyError, ValueError, AttributeError):
        return None
