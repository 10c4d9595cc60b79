"""Git work through pygit2: tags, compare-and-swap ref moves, fetches, checkouts."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pygit2
from pygit2.enums import FileMode, ObjectType, RepositoryOpenFlag

from ..errors import Conflict, HiveError, NotFound, RefLocked
from ..models import TagRecord, rfc3339
from . import safetree
from .faults import crash_point
from .fsutil import NotRegular, read_regular
from .validate import check_ref_text

MAIN = "refs/heads/main"
_SHA_RE = re.compile(r"[0-9a-f]{40}")
_LOCK_RE = re.compile(r"failed to lock file '([^']+\.lock)'")
# The states an approval's commit walks through, in the order they happen.
TAG_STATES = ("proposal", "approved", "building", "deployed", "failed", "denied")


def signature() -> pygit2.Signature:
    return pygit2.Signature("hive-tui", "hive-tui@localhost")


@contextmanager
def git_errors() -> Iterator[None]:
    """Turn libgit2's lock failures into RefLocked, naming the file to remove."""
    try:
        yield
    except (pygit2.GitError, OSError) as e:
        m = _LOCK_RE.search(str(e))
        if m:
            raise RefLocked(m.group(1)) from None
        if isinstance(e, pygit2.GitError):
            raise HiveError(f"git: {e}") from None
        raise


def open_repo(path: Path) -> pygit2.Repository:
    """The repo at exactly `path`: never one found by searching the folders above it."""
    try:
        return pygit2.Repository(str(path), RepositoryOpenFlag.NO_SEARCH)
    except pygit2.GitError:
        raise NotFound(f"no git repository at {path}") from None


def main_target(path: Path | str) -> str:
    """The sha `main` points at in the non-bare repo at `path`.

    Read from the loose ref file when there is one: a status reads this for
    every agent, and opening each repo cost most of it. A packed or symbolic
    ref is read through libgit2. NotFound when there is no repo.
    """
    try:
        raw = read_regular(os.path.join(path, ".git", MAIN), 128)
    except (NotRegular, OSError):
        raw = None
    text = raw.decode("ascii", "replace").strip() if raw else ""
    if _SHA_RE.fullmatch(text):
        return text
    try:
        return str(open_repo(Path(path)).references[MAIN].target)
    except (KeyError, pygit2.GitError):
        raise NotFound(f"no main in the repository at {path}") from None


def init_repo(path: Path, files: dict[str, bytes], message: str) -> pygit2.Oid:
    """Create a non-bare repo on `main` whose first commit holds `files`."""
    repo = pygit2.init_repository(str(path), bare=False, initial_head="main")
    crash_point("init:created")
    tree = write_tree(repo, files)
    sig = signature()
    oid = repo.create_commit(MAIN, sig, sig, message, tree, [])
    crash_point("init:committed")
    sync_worktree(repo, oid)
    return oid


def write_tree(repo: pygit2.Repository, files: dict[str, bytes], base: pygit2.Tree | None = None) -> pygit2.Oid:
    """A tree with `files` (slash-separated paths) written over `base`."""
    subdirs: dict[str, dict[str, bytes]] = {}
    builder = repo.TreeBuilder(base) if base is not None else repo.TreeBuilder()
    for path, data in files.items():
        head, _, rest = path.partition("/")
        if rest:
            subdirs.setdefault(head, {})[rest] = data
        else:
            builder.insert(head, repo.create_blob(data), FileMode.BLOB)
    for head, sub in subdirs.items():
        existing = base[head] if base is not None and head in base else None
        sub_base = repo[existing.id] if existing is not None and existing.type == ObjectType.TREE else None
        builder.insert(head, write_tree(repo, sub, sub_base), FileMode.TREE)
    return builder.write()


def commit_files(repo: pygit2.Repository, files: dict[str, bytes], message: str, checkout: bool = True) -> pygit2.Oid:
    """Commit `files` on top of main with a CAS move of main.

    With `checkout`, the working tree follows the new commit; without, only
    the index entries of `files` do, and the working tree is left as it is
    (the meta flake keeps other deploys' staged locks there).
    """
    with git_errors():
        ref = repo.references[MAIN]
        parent = repo[ref.target].peel(pygit2.Commit)
        tree = write_tree(repo, files, parent.tree)
        sig = signature()
        oid = repo.create_commit(None, sig, sig, message, tree, [parent.id])
        move_ref(ref, oid, f"hive-tui: {message}")
        if checkout:
            sync_worktree(repo, oid)
        else:
            index = repo.index
            index.read()
            new_tree = repo[tree]
            for path in files:
                entry = new_tree[path]
                index.add(pygit2.IndexEntry(path, entry.id, entry.filemode))
            index.write()
    return oid


def stage(repo: pygit2.Repository, paths: list[str]) -> None:
    """`git add` these working-tree files."""
    with git_errors():
        index = repo.index
        index.read()
        for path in paths:
            index.add(path)
        index.write()


def blob_at(repo: pygit2.Repository, path: str, rev: str = MAIN) -> bytes | None:
    """The content of `path` in the commit `rev` points at, or None."""
    tree = repo.revparse_single(rev).peel(pygit2.Tree)
    try:
        return repo[tree[path].id].data
    except KeyError:
        return None


def resolve_commit(repo: pygit2.Repository, ref_text: str) -> pygit2.Oid:
    check_ref_text(ref_text)
    try:
        obj = repo.revparse_single(ref_text)
        return obj.peel(pygit2.Commit).id
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        raise NotFound(f"{ref_text!r} does not name a commit in {repo.workdir or repo.path}") from None


def fetch_commit(repo: pygit2.Repository, source: Path, sha: pygit2.Oid, into: str) -> None:
    """Fetch one commit (and what it needs) from the repo at `source` into ref `into`."""
    with git_errors():
        remote = repo.remotes.create_anonymous(str(source))
        remote.fetch([f"+{sha}:{into}"])
    if repo.references[into].target != sha:
        raise HiveError(f"fetched {into} but it does not point at {sha}")


def create_tag(repo: pygit2.Repository, name: str, target: pygit2.Oid, message: str) -> None:
    """An annotated tag; an existing tag of that name is refused, never moved."""
    if f"refs/tags/{name}" in repo.references:
        raise Conflict(f"tag {name} already exists in {repo.workdir}")
    with git_errors():
        try:
            repo.create_tag(name, target, ObjectType.COMMIT, signature(), message)
        except pygit2.AlreadyExistsError:
            raise Conflict(f"tag {name} already exists in {repo.workdir}") from None


def tag_commit(repo: pygit2.Repository, name: str) -> pygit2.Oid | None:
    ref = repo.references.get(f"refs/tags/{name}")
    if ref is None:
        return None
    return repo[ref.target].peel(pygit2.Commit).id


def move_ref(ref: pygit2.Reference, new: pygit2.Oid, message: str) -> None:
    """Move a loaded ref; refused if it changed since it was loaded."""
    with git_errors():
        try:
            ref.set_target(new, message)
        except pygit2.GitError as e:
            if "does not match" in str(e):
                raise Conflict(f"{ref.name} moved under us; refusing to overwrite it") from None
            raise


def sync_worktree(repo: pygit2.Repository, commit: pygit2.Oid) -> None:
    """Make the index and working tree exactly `commit`'s tree (read-tree --reset -u).

    The working tree is written by safetree, never through a symlink; a tree
    it refuses changes neither the working tree nor the index.
    """
    tree = repo[commit].peel(pygit2.Tree)
    with git_errors():
        safetree.write(repo, tree, Path(repo.workdir), keep=frozenset({b".git"}))
        index = repo.index
        index.read_tree(tree)
        index.write()


def export_tree(repo: pygit2.Repository, commit: pygit2.Oid, directory: Path) -> None:
    """Write `commit`'s tree into `directory`, leaving the repo's index alone."""
    tree = repo[commit].peel(pygit2.Tree)
    with git_errors():
        safetree.write(repo, tree, directory)


def is_ancestor(repo: pygit2.Repository, ancestor: pygit2.Oid, descendant: pygit2.Oid) -> bool:
    return ancestor == descendant or repo.descendant_of(descendant, ancestor)


def state_tags(repo: pygit2.Repository) -> list[TagRecord]:
    """The approval state tags in an applied repo, oldest first."""
    records = []
    for refname in repo.references:
        if not refname.startswith("refs/tags/"):
            continue
        state, _, num = refname[len("refs/tags/"):].partition("/")
        if state not in TAG_STATES or not num.isdigit():
            continue
        obj = repo[repo.references[refname].target]
        at, message = None, ""
        if obj.type == ObjectType.TAG:
            message = obj.message
            if obj.tagger is not None:
                at = rfc3339(obj.tagger.time)
        commit = obj.peel(pygit2.Commit)
        records.append(TagRecord(tag=f"{state}/{num}", id=int(num), state=state, sha=str(commit.id), at=at, message=message))
    records.sort(key=lambda r: (r.id, TAG_STATES.index(r.state)))
    return records


PATCH_LIMIT = 1 << 20


def diff_commits(repo: pygit2.Repository, old: pygit2.Oid, new: pygit2.Oid, limit: int = PATCH_LIMIT) -> dict:
    """What changes from `old` to `new`: each file with its status and line
    counts, then the patch text, cut at `limit` bytes (`truncated` says so)."""
    with git_errors():
        diff = repo.diff(repo[old].peel(pygit2.Commit), repo[new].peel(pygit2.Commit))
        diff.find_similar()
        files, parts, size = [], [], 0
        for patch in diff:
            delta = patch.delta
            _, additions, deletions = patch.line_stats
            files.append({
                "path": delta.new_file.path, "old_path": delta.old_file.path,
                "status": delta.status_char(), "additions": additions, "deletions": deletions,
                "binary": delta.is_binary,
            })
            text = patch.text or ""
            if size < limit:
                parts.append(text)
            size += len(text.encode("utf-8", "replace"))
    patch_text = "".join(parts)
    truncated = size > limit
    if truncated:
        patch_text = patch_text.encode("utf-8", "replace")[:limit].decode("utf-8", "ignore")
    return {"files": files, "patch": patch_text, "truncated": truncated}
