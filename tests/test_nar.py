"""The NAR hash of a git tree equals what Nix computes for the same files on disk."""

from __future__ import annotations

import shutil
import subprocess

import pygit2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pygit2.enums import FileMode

from hive_tui.host import gitrepo
from hive_tui.host.nar import tree_nar_hash

# Names that sort differently bytewise and in git's order, and beyond ASCII.
NAME = st.text(alphabet="ab-_.Zé ß", min_size=1, max_size=6).filter(lambda n: n not in (".", "..", ".git"))
FILE = st.tuples(st.binary(max_size=300), st.booleans())  # contents, executable
TREE = st.recursive(
    st.dictionaries(NAME, FILE, min_size=1, max_size=4),
    lambda children: st.dictionaries(NAME, st.one_of(FILE, children), min_size=1, max_size=4),
    max_leaves=12,
)


def build(repo: pygit2.Repository, tree: dict) -> pygit2.Oid:
    builder = repo.TreeBuilder()
    for name, node in tree.items():
        if isinstance(node, dict):
            builder.insert(name, build(repo, node), FileMode.TREE)
        else:
            data, executable = node
            builder.insert(name, repo.create_blob(data), FileMode.BLOB_EXECUTABLE if executable else FileMode.BLOB)
    return builder.write()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=TREE)
def test_nar_hash_matches_nix_hash_path(nix_env, tmp_path, tree):
    repo = pygit2.init_repository(str(tmp_path / "repo"), bare=True)
    oid = build(repo, tree)
    sig = gitrepo.signature()
    commit = repo.create_commit(None, sig, sig, "t", oid, [])
    out = tmp_path / "out"
    shutil.rmtree(out, ignore_errors=True)
    gitrepo.export_tree(repo, commit, out)
    nix = subprocess.run(
        ["nix", "--extra-experimental-features", "nix-command flakes", "hash", "path", "--sri", str(out)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert tree_nar_hash(repo, repo[oid]) == nix
    shutil.rmtree(tmp_path / "repo")
