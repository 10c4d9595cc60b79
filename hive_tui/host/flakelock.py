"""Locking the meta flake's agent inputs: with the real Nix, or in pure Python.

Both lockers write the same flake.lock. The built-in one exists so the
embedded demo runs on a machine without Nix; a test locks the same inputs
both ways and compares the files byte for byte.

Every agent input is `git+file://<applied repo>?ref=main` with
`flake = false`: the meta flake imports the agent's config itself, so Nix
never recurses into an agent's own inputs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

import pygit2

from ..errors import HiveError
from .fsutil import write_atomic
from .gitrepo import open_repo
from .nar import tree_nar_hash

LOCK_VERSION = 7
NIX_TIMEOUT = 600.0
_FEATURES = ["--extra-experimental-features", "nix-command flakes"]


def input_url(repo: Path) -> str:
    """The `file://` URL of a local repo, as it appears in flake.nix and flake.lock."""
    return "file://" + quote(str(repo), safe="/")


def empty_lock() -> dict:
    return {"nodes": {"root": {}}, "root": "root", "version": LOCK_VERSION}


def read_lock(meta: Path) -> dict:
    path = meta / "flake.lock"
    if not path.exists():
        return empty_lock()
    return json.loads(path.read_text())


def _indented(value: object, level: int) -> str:
    """`value` as json.dumps(indent=2, sort_keys=True) writes it `level` deep.

    Objects of strings, integers, booleans and nulls (every node of a flake
    lock) are written here with the C string encoder: the indented dump is
    pure Python, and the root node lists every agent.
    """
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        if not value:
            return "{}"
        pad = "  " * (level + 1)
        items = ",\n".join(f"{pad}{_encode(k)}: {_indented(v, level + 1)}" for k, v in sorted(value.items()))
        return "{\n" + items + "\n" + "  " * level + "}"
    if isinstance(value, str):
        return _encode(value)
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if type(value) is int:
        return int.__repr__(value)
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    return text.replace("\n", "\n" + "  " * level) if level else text


_encode = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) writes a string with


class _NodeTexts:
    """Each lock node's text, kept while the very same node object is in use.

    An indented dump runs in pure Python, and a hive's flake.lock has a node
    per agent: dumping it whole on every spawn and deploy made each one cost
    more as the hive grew. Nodes are never changed in place (a new lock gets
    new node objects where it differs), so a node's text is reused for as
    long as the cache holds that node, which also keeps its id from being
    reused.
    """

    def __init__(self) -> None:
        self._texts: dict[int, tuple[object, str, str]] = {}
        self._lock = threading.Lock()

    def line(self, name: str, node: object) -> str:
        """The node's `"name": {...}` line in the lock's `nodes`."""
        cached = self._texts.get(id(node))
        if cached is not None and cached[0] is node and cached[1] == name:
            return cached[2]
        line = f"    {json.dumps(name, ensure_ascii=False)}: {_indented(node, 2)}"
        with self._lock:
            self._texts[id(node)] = (node, name, line)
        return line

    def keep_only(self, nodes: list[object], spare: int = 256) -> None:
        """Forget the texts of nodes no lock uses any more, once there are many."""
        if len(self._texts) <= 2 * len(nodes) + spare:
            return
        with self._lock:
            self._texts = {id(n): self._texts[id(n)] for n in nodes if id(n) in self._texts}


_NODE_TEXTS = _NodeTexts()


def dump_lock(lock: dict) -> str:
    """flake.lock's own formatting: two-space indent, sorted keys, final newline.

    Byte for byte what json.dumps(lock, indent=2, sort_keys=True) writes,
    with each node's text reused from the last dump that had that node.
    """
    nodes = lock.get("nodes")
    if not isinstance(nodes, dict) or not all(isinstance(k, str) for k in lock) \
            or not all(isinstance(k, str) for k in nodes):
        return json.dumps(lock, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if nodes:
        items = sorted(nodes.items())
        body = ",\n".join(_NODE_TEXTS.line(k, v) for k, v in items)
        nodes_text = "{\n" + body + "\n  }"
        _NODE_TEXTS.keep_only([v for _, v in items])
    else:
        nodes_text = "{}"
    fields = sorted((k, nodes_text if k == "nodes" else _indented(v, 1)) for k, v in lock.items())
    return "{\n" + ",\n".join(f"  {json.dumps(k, ensure_ascii=False)}: {text}" for k, text in fields) + "\n}\n"


def locked_rev(lock: dict, input_name: str) -> str | None:
    node = lock.get("nodes", {}).get(input_name)
    return node.get("locked", {}).get("rev") if node else None


def locked_ref(lock: dict, input_name: str) -> str | None:
    """Where the root input `input_name` is locked, as a flake reference
    (`github:NixOS/nixpkgs/<rev>`, `path:/nix/store/...`); None if it is not."""
    nodes = lock.get("nodes", {})
    node = nodes.get(nodes.get("root", {}).get("inputs", {}).get(input_name, ""))
    locked = node.get("locked") if isinstance(node, dict) else None
    if not isinstance(locked, dict):
        return None
    kind = locked.get("type")
    if kind in ("github", "gitlab", "sourcehut"):
        return f"{kind}:{locked.get('owner')}/{locked.get('repo')}/{locked.get('rev')}"
    if kind == "path":
        return f"path:{locked.get('path')}"
    if kind in ("git", "tarball", "file"):
        rev = f"?rev={locked['rev']}" if "rev" in locked else ""
        return f"{kind}+{locked.get('url')}{rev}"
    return f"{kind} {locked.get('narHash')}"


class Locker(Protocol):
    name: str

    def lock(self, meta: Path, inputs: dict[str, Path], update: str | None = None) -> None:
        """Bring meta/flake.lock in line with `inputs` (input name -> repo).

        Inputs already locked keep their lock, missing ones are locked, gone
        ones dropped; `update` names one input to lock afresh at its `main`.
        """

    def lock_input(self, meta: Path, input_name: str, repo: Path) -> dict:
        """The node that locks `input_name` afresh at `repo`'s `main`.

        meta/flake.nix names the input already. Every other node is left as
        it is; the caller puts the node in meta/flake.lock (Nix has by then).
        """

    def lock_alone(self, input_name: str, repo: Path) -> dict:
        """The same node, locked without the meta folder: it may run beside
        other locks, outside the meta flake's lock."""


class BuiltinLocker:
    name = "builtin"

    def lock(self, meta: Path, inputs: dict[str, Path], update: str | None = None) -> None:
        old = read_lock(meta)
        nodes: dict = {}
        for input_name, repo in sorted(inputs.items()):
            original = {"ref": "main", "type": "git", "url": input_url(repo)}
            prev = old["nodes"].get(input_name)
            if input_name != update and prev is not None and prev.get("original") == original:
                nodes[input_name] = prev
            else:
                nodes[input_name] = {"flake": False, "locked": _lock_git(repo), "original": original}
        root: dict = {"inputs": {n: n for n in nodes}} if nodes else {}
        nodes["root"] = root
        text = dump_lock({"nodes": nodes, "root": "root", "version": LOCK_VERSION})
        write_atomic(meta / "flake.lock", text)

    def lock_input(self, meta: Path, input_name: str, repo: Path) -> dict:
        return self.lock_alone(input_name, repo)

    def lock_alone(self, input_name: str, repo: Path) -> dict:
        original = {"ref": "main", "type": "git", "url": input_url(repo)}
        return {"flake": False, "locked": _lock_git(repo), "original": original}


def _lock_git(repo_path: Path) -> dict:
    repo = open_repo(repo_path)
    commit = repo.references["refs/heads/main"].peel(pygit2.Commit)
    rev_count = sum(1 for _ in repo.walk(commit.id, pygit2.enums.SortMode.NONE))
    return {
        "lastModified": commit.commit_time,
        "narHash": tree_nar_hash(repo, commit.tree),
        "ref": "main",
        "rev": str(commit.id),
        "revCount": rev_count,
        "type": "git",
        "url": input_url(repo_path),
    }


class NixLocker:
    """Runs `nix flake lock`; Nix 2.19 and later spell an update `nix flake update`."""

    name = "nix"

    def __init__(self, nix: str = "nix", timeout: float = NIX_TIMEOUT):
        self.nix = nix
        self.timeout = timeout
        self._version: tuple[int, int] | None = None

    def version(self) -> tuple[int, int]:
        if self._version is None:
            out = self._run(["--version"], cwd=None)
            m = re.search(r"(\d+)\.(\d+)", out)
            if not m:
                raise HiveError(f"cannot read the Nix version from {out.strip()!r}")
            self._version = (int(m.group(1)), int(m.group(2)))
        return self._version

    def argv(self, update: str | None) -> list[str]:
        if update is None:
            return [*_FEATURES, "flake", "lock"]
        if self.version() >= (2, 19):
            return [*_FEATURES, "flake", "update", update]
        return [*_FEATURES, "flake", "lock", "--update-input", update]

    def lock(self, meta: Path, inputs: dict[str, Path], update: str | None = None) -> None:
        self._run(self.argv(update), cwd=meta)

    def lock_input(self, meta: Path, input_name: str, repo: Path) -> dict:
        # A missing input is locked by a plain lock, which keeps every other
        # node; one already locked is updated.
        known = input_name in read_lock(meta).get("nodes", {})
        self._run(self.argv(input_name if known else None), cwd=meta)
        return _node_of(meta, input_name)

    def lock_alone(self, input_name: str, repo: Path) -> dict:
        # A flake of this one input, in a folder of its own: the node Nix
        # writes for it depends on the input alone. The URL is quoted, and
        # the input name is `agent-` and a valid agent name.
        with tempfile.TemporaryDirectory(prefix="hive-lock-") as scratch:
            folder = Path(scratch)
            (folder / "flake.nix").write_text(
                f'{{ inputs.{input_name} = {{ url = "git+{input_url(repo)}?ref=main"; flake = false; }};\n'
                f'  outputs = _: {{ }}; }}\n'
            )
            self._run(self.argv(None), cwd=folder)
            return _node_of(folder, input_name)

    def _run(self, args: list[str], cwd: Path | None) -> str:
        argv = [self.nix, *args]
        try:
            proc = subprocess.run(
                argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=self.timeout
            )
        except FileNotFoundError:
            raise HiveError(f"{self.nix} not found; install Nix or use the builtin locker") from None
        except subprocess.TimeoutExpired:
            raise HiveError(f"`{' '.join(argv)}` timed out after {self.timeout:.0f}s") from None
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-20:])
            raise HiveError(f"`{' '.join(argv)}` failed (exit {proc.returncode}):\n{tail}")
        return proc.stdout


def _node_of(meta: Path, input_name: str) -> dict:
    node = read_lock(meta).get("nodes", {}).get(input_name)
    if node is None:
        raise HiveError(f"locking left no node for {input_name} in flake.lock")
    return node


def make_locker(kind: str = "auto") -> Locker:
    """`nix`, `builtin`, or `auto`: Nix when it is on the PATH, else builtin."""
    if kind == "builtin":
        return BuiltinLocker()
    if kind == "nix":
        return NixLocker()
    if kind == "auto":
        return NixLocker() if shutil.which("nix") else BuiltinLocker()
    raise HiveError(f"unknown locker {kind!r}: use auto, nix or builtin")
