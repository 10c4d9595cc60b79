"""Writing a git tree to disk without ever following a symlink.

The trees come from agents' repos, so every name and link in them is hostile.
libgit2's checkout reaches files by joining path strings, and a folder that
turned into a symlink between two checkouts gets files written through the
link, wherever it points. Here each directory is opened one name at a time,
relative to its parent's descriptor and with O_NOFOLLOW, so a link found
where a directory belongs is replaced, never entered. Symlinks in the tree
are written as symlinks; their targets are never looked at.

A tree is checked whole before anything is written, and refused when it
cannot be written faithfully and safely:
- a name that is empty, `.`, `..`, longer than a file name may be, or holds
  `/` or NUL (git never writes these; a crafted object can hold them);
- `.git` at any depth, in any case, and the spellings other filesystems
  read as `.git` (trailing dots or spaces, `git~1`, HFS+'s ignored code
  points), as git itself refuses them;
- two entries of one directory whose names are equal or differ only by
  case: the state root may sit on a case-insensitive filesystem, where the
  second would land on the first (a link and a folder of one name is the
  "entry under a symlink" git trees cannot normally hold);
- any mode git does not write as a file, link, folder or submodule (which,
  as git does for a submodule it does not clone, is written as an empty
  folder);
- deeper nesting than MAX_DEPTH, which would hold a descriptor per level.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import pygit2
from pygit2.enums import FileMode, ObjectType

from ..errors import HiveError

MAX_DEPTH = 64
NAME_MAX = 255
LINK_MAX = 4095

# libgit2 already reads any mode it does not know as a plain file's.
_FILE_PERMS = {FileMode.BLOB: 0o644, FileMode.BLOB_EXECUTABLE: 0o755}
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Code points HFS+ ignores in names, so `.g\u200cit` is `.git` there.
_HFS_IGNORED = dict.fromkeys([*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF])


class UnsafeTree(HiveError):
    """A tree that cannot be written to disk safely; nothing of it was written."""


@dataclass(frozen=True)
class File:
    blob: pygit2.Oid
    perms: int


@dataclass(frozen=True)
class Link:
    target: bytes


@dataclass(frozen=True)
class Submodule:
    """A gitlink: an empty folder, its commit never looked up."""


# A checked directory: each raw name with what to write there.
Plan = dict[bytes, "File | Link | Submodule | Plan"]


def plan(repo: pygit2.Repository, tree: pygit2.Tree) -> Plan:
    """Check `tree` whole; what to write, or UnsafeTree naming the first problem."""
    return _plan_dir(repo, tree, b"", 0)


def write(repo: pygit2.Repository, tree: pygit2.Tree, directory: Path, keep: frozenset[bytes] = frozenset()) -> None:
    """Make `directory` hold exactly `tree`: missing entries written, wrong
    ones replaced, everything else removed, except the top-level names in
    `keep` (a repo's own `.git`). `directory` is created if missing; it must
    not be a symlink itself. The index is not touched."""
    want = plan(repo, tree)
    try:
        os.mkdir(directory, 0o755)
    except FileExistsError:
        pass
    fd = os.open(directory, _DIR_FLAGS)
    try:
        _sync_dir(repo, fd, want, keep)
    finally:
        os.close(fd)


def _show(path: bytes) -> str:
    return path.decode("utf-8", "backslashreplace")


def _refuse(path: bytes, why: str) -> UnsafeTree:
    return UnsafeTree(f"refusing to write {_show(path)!r}: {why}")


def _is_dotgit(name: bytes) -> bool:
    text = name.decode("utf-8", "surrogateescape").translate(_HFS_IGNORED).rstrip(". ").casefold()
    return text in (".git", "git~1")


def _check_name(name: bytes, path: bytes) -> None:
    if name in (b"", b".", b".."):
        raise _refuse(path, f"{_show(name)!r} is not a file name")
    for bad, what in ((b"/", "'/'"), (b"\0", "NUL")):
        if bad in name:
            raise _refuse(path, f"a name holding {what} is not a file name")
    if len(name) > NAME_MAX:
        raise _refuse(path, f"the name is longer than {NAME_MAX} bytes")
    if _is_dotgit(name):
        raise _refuse(path, "a tree may not hold a git directory (.git, in any case or spelling)")


def _plan_dir(repo: pygit2.Repository, tree: pygit2.Tree, where: bytes, depth: int) -> Plan:
    if depth > MAX_DEPTH:
        raise _refuse(where.rstrip(b"/"), f"folders nest deeper than {MAX_DEPTH} levels")
    out: Plan = {}
    seen: dict[str, bytes] = {}
    for entry in tree:
        name, mode = entry.raw_name, entry.filemode
        path = where + name
        _check_name(name, path)
        folded = name.decode("utf-8", "surrogateescape").casefold()
        if folded in seen:
            other = seen[folded]
            if other != name:
                raise _refuse(path, f"the name differs only by case from {_show(other)!r}")
            kinds = {mode, _mode_of(out[name])}
            if FileMode.LINK in kinds and FileMode.TREE in kinds:
                raise _refuse(path, "it is both a symlink and a directory, and a tree entry may not sit under a symlink")
            raise _refuse(path, "the name appears twice in one directory")
        seen[folded] = name
        if mode == FileMode.TREE:
            sub = _object(repo, entry.id, ObjectType.TREE, path)
            out[name] = _plan_dir(repo, sub, path + b"/", depth + 1)
        elif mode in _FILE_PERMS:
            _object(repo, entry.id, ObjectType.BLOB, path)
            out[name] = File(entry.id, _FILE_PERMS[mode])
        elif mode == FileMode.LINK:
            target = _object(repo, entry.id, ObjectType.BLOB, path).data
            if not target or b"\0" in target or len(target) > LINK_MAX:
                raise _refuse(path, f"a symlink's target must be 1 to {LINK_MAX} bytes without NUL")
            out[name] = Link(target)
        elif mode == FileMode.COMMIT:
            out[name] = Submodule()
        else:
            raise _refuse(path, f"mode {mode:o} is not a file, symlink, directory or submodule")
    # As with git, a folder holding no file or link is not written.
    return {name: value for name, value in out.items() if value != {}}


def _mode_of(value: File | Link | Submodule | Plan) -> int:
    if isinstance(value, (dict, Submodule)):
        return FileMode.TREE
    return FileMode.LINK if isinstance(value, Link) else FileMode.BLOB


def _object(repo: pygit2.Repository, oid: pygit2.Oid, kind: ObjectType, path: bytes) -> pygit2.Object:
    try:
        obj = repo[oid]
    except KeyError:
        raise _refuse(path, f"object {oid} is missing from the repo") from None
    if obj.type != kind:
        raise _refuse(path, f"object {oid} is a {obj.type_str}, not what its mode says")
    return obj


def _sync_dir(repo: pygit2.Repository, dfd: int, want: Plan, keep: frozenset[bytes]) -> None:
    for entry in os.listdir(dfd):
        raw = os.fsencode(entry)
        if raw not in want and raw not in keep:
            _remove(dfd, raw)
    for name, value in want.items():
        st = _lstat(dfd, name)
        if isinstance(value, (dict, Submodule)):
            if st is not None and not stat.S_ISDIR(st.st_mode):
                _remove(dfd, name, st)
                st = None
            if st is None:
                os.mkdir(name, 0o755, dir_fd=dfd)
            sub = os.open(name, _DIR_FLAGS, dir_fd=dfd)
            try:
                _sync_dir(repo, sub, value if isinstance(value, dict) else {}, frozenset())
            finally:
                os.close(sub)
        elif isinstance(value, Link):
            if st is not None:
                if stat.S_ISLNK(st.st_mode) and os.readlink(name, dir_fd=dfd) == value.target:
                    continue
                _remove(dfd, name, st)
            os.symlink(value.target, name, dir_fd=dfd)
        else:
            data = repo[value.blob].data
            if st is not None:
                if _holds(dfd, name, st, data, value.perms):
                    continue
                _remove(dfd, name, st)
            # O_EXCL: created here and now, never an entry that appeared meanwhile.
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         value.perms, dir_fd=dfd)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                os.fchmod(f.fileno(), value.perms)


def _lstat(dfd: int, name: bytes) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _holds(dfd: int, name: bytes, st: os.stat_result, data: bytes, perms: int) -> bool:
    """Whether `name` is already a regular file with these bytes and permissions."""
    if not stat.S_ISREG(st.st_mode) or st.st_size != len(data) or stat.S_IMODE(st.st_mode) != perms:
        return False
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    with os.fdopen(fd, "rb") as f:
        return f.read(len(data) + 1) == data


def _remove(dfd: int, name: bytes, st: os.stat_result | None = None) -> None:
    """Remove one entry as what it is: a link is unlinked, never followed."""
    st = st or _lstat(dfd, name)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        # rmtree with a dir_fd walks by descriptors too (avoids_symlink_attacks).
        shutil.rmtree(os.fsdecode(name), dir_fd=dfd)
    else:
        os.unlink(name, dir_fd=dfd)
