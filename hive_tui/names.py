"""Agent names and the paths built from them.

A name comes from operators, from the manager agent and from the wire, and
becomes a folder name under the state root, a git input name in the meta
flake and a container name. It is checked against one strict pattern with a
full match before anything touches the disk.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import HiveError, InvalidName

# Short enough that `h-<name>`, the container name, stays a valid hostname
# label with room to spare; long enough for descriptive names.
MAX_NAME_LEN = 32
# The last character is a letter or digit, as networking.hostName requires.
_NAME_RE = re.compile(r"[a-z](?:[a-z0-9-]*[a-z0-9])?")


def is_valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME_LEN and _NAME_RE.fullmatch(name) is not None


def check_name(name: object) -> str:
    """Return `name` if it is a valid agent name, else raise InvalidName."""
    if not isinstance(name, str):
        raise InvalidName(f"agent name must be a string, not {type(name).__name__}")
    if not name:
        raise InvalidName("agent name is empty")
    if len(name) > MAX_NAME_LEN:
        raise InvalidName(f"agent name is {len(name)} characters long; the limit is {MAX_NAME_LEN}")
    if _NAME_RE.fullmatch(name) is None:
        raise InvalidName(
            f"invalid agent name {name!r}: use a lowercase letter first, "
            f"then lowercase letters, digits and '-', and a letter or digit last"
        )
    return name


def path_under(root: Path, *parts: str, resolved: bool = False) -> Path:
    """Join `parts` under `root`, refusing any part that is a link.

    Folders under the state root are written by agents and the manager, so
    a link planted there must not lead the engine anywhere, not even to
    another agent's folder inside the root. The root itself is the
    operator's and is resolved once (a caller that resolved it already says
    so with `resolved`).
    """
    base = root if resolved else root.resolve()
    # Joined as text and made a Path once: a status builds thousands of these.
    candidate = str(base)
    for part in parts:
        if part in ("", ".", "..") or "/" in part or "\0" in part:
            raise HiveError(f"{part!r} is not a plain name under the state root {base}")
        candidate = os.path.join(candidate, part)
        if os.path.islink(candidate):
            raise HiveError(f"{candidate} is a symbolic link; the engine follows no link in the state root {base}")
    return Path(candidate)
