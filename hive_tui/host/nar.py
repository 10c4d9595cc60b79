"""The Nix archive (NAR) hash of a git tree, as Nix computes a flake input's narHash.

NAR is Nix's canonical serialization of a file tree: every string is its
length as a little-endian u64, the bytes, and zero padding to 8; directory
entries are sorted by name, bytewise. Git trees sort directories as if their
name ended in '/', so the entries are re-sorted here.
"""

from __future__ import annotations

import base64
import hashlib
import struct

import pygit2
from pygit2.enums import FileMode


def _str(h: "hashlib._Hash", data: bytes) -> None:
    h.update(struct.pack("<Q", len(data)))
    h.update(data)
    h.update(b"\0" * (-len(data) % 8))


def _tokens(h: "hashlib._Hash", *words: bytes) -> None:
    for w in words:
        _str(h, w)


def _node(h: "hashlib._Hash", repo: pygit2.Repository, obj: pygit2.Object, mode: int) -> None:
    if mode == FileMode.TREE:
        _tokens(h, b"(", b"type", b"directory")
        for entry in sorted(obj, key=lambda e: e.raw_name):
            _tokens(h, b"entry", b"(", b"name", entry.raw_name, b"node")
            _node(h, repo, repo[entry.id], entry.filemode)
            _tokens(h, b")")
        _tokens(h, b")")
    elif mode == FileMode.COMMIT:
        # A submodule without `submodules = true` is exported as an empty folder.
        _tokens(h, b"(", b"type", b"directory", b")")
    elif mode == FileMode.LINK:
        _tokens(h, b"(", b"type", b"symlink", b"target", obj.data, b")")
    else:
        _tokens(h, b"(", b"type", b"regular")
        if mode == FileMode.BLOB_EXECUTABLE:
            _tokens(h, b"executable", b"")
        _tokens(h, b"contents", obj.data, b")")


def tree_nar_hash(repo: pygit2.Repository, tree: pygit2.Tree) -> str:
    """The SRI form (`sha256-<base64>`) of the NAR hash of `tree`."""
    h = hashlib.sha256()
    _tokens(h, b"nix-archive-1")
    _node(h, repo, tree, FileMode.TREE)
    return "sha256-" + base64.b64encode(h.digest()).decode()
