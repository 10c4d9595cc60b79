"""`agent.yaml`: what the local runtime builds and runs for an agent.

    build: [make, all]          # optional; runs in a checkout of the commit
    run: [python3, agent.py]    # required; a supervised process
    parent: atlas               # optional; the agent's parent in the hive's topology

Both are argv lists: no shell is involved unless an agent asks for one by
name (`[sh, -c, ...]`). The parent is only shown (the console groups agents
under it): it must be an agent name, and need not name an agent that exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from ..errors import BuildFailed, HiveError
from ..names import check_name
from .fsutil import NotRegular, read_regular

CONFIG_FILE = "agent.yaml"
CONFIG_LIMIT = 64 * 1024
# libyaml's parser when PyYAML was built with it: the same safe constructor,
# many times faster than the pure-Python one.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class AgentConfig:
    run: list[str]
    build: list[str] | None = None
    parent: str | None = None


def _argv(value: object, key: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(a, str) and a for a in value):
        raise BuildFailed(f"{CONFIG_FILE}: `{key}` must be a non-empty list of non-empty strings (an argv)")
    if any("\0" in a for a in value):
        raise BuildFailed(f"{CONFIG_FILE}: `{key}` contains a NUL byte")
    return list(value)


def parse_agent_config(text: bytes) -> AgentConfig:
    run, build, parent = _parse(bytes(text))
    # A fresh config each time: the cached one is never handed out to be changed.
    return AgentConfig(run=list(run), build=list(build) if build is not None else None, parent=parent)


@lru_cache(maxsize=256)
def _parse(text: bytes) -> tuple[tuple[str, ...], tuple[str, ...] | None, str | None]:
    """A deploy reads the same file when it builds and when it starts the agent."""
    try:
        data = yaml.load(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as e:
        where = f" at line {e.problem_mark.line + 1}" if e.problem_mark else ""
        raise BuildFailed(f"{CONFIG_FILE}{where}: {e.problem}") from None
    except yaml.YAMLError as e:
        raise BuildFailed(f"{CONFIG_FILE}: {e}") from None
    if not isinstance(data, dict):
        raise BuildFailed(f"{CONFIG_FILE}: expected a mapping with `run` (and optionally `build`)")
    unknown = sorted(set(map(str, data)) - {"run", "build", "parent"})
    if unknown:
        raise BuildFailed(f"{CONFIG_FILE}: unknown keys {', '.join(unknown)}")
    if "run" not in data:
        raise BuildFailed(f"{CONFIG_FILE}: `run` is missing")
    build = _argv(data["build"], "build") if data.get("build") is not None else None
    parent = data.get("parent")
    if parent is not None:
        try:
            check_name(parent)
        except HiveError as e:
            raise BuildFailed(f"{CONFIG_FILE}: `parent` must be an agent name: {e}") from None
    return tuple(_argv(data["run"], "run")), tuple(build) if build is not None else None, parent


def read_parent(path: str) -> str | None:
    """The parent an applied checkout's config names, for the agent's row: None
    when it names none, or when the file is missing, not a regular file or not
    a valid config (its deploy says what is wrong; a row only leaves it out)."""
    try:
        text = read_regular(path, CONFIG_LIMIT)
        return parse_agent_config(text).parent if text is not None else None
    except (NotRegular, OSError, BuildFailed):
        return None


def load_agent_config(checkout: Path) -> AgentConfig:
    """The config in a checkout of the agent's repo.

    The file comes from the agent's side: a link in its place would hand
    the engine a config (or a secret, or /dev/zero) from outside the repo, so
    only a regular file of bounded size is read.
    """
    try:
        text = read_regular(checkout / CONFIG_FILE, CONFIG_LIMIT)
    except NotRegular as e:
        raise BuildFailed(f"{CONFIG_FILE} must be a regular file of the agent's config; it is {e}") from None
    if text is None:
        raise BuildFailed(f"{CONFIG_FILE} is missing from the agent's config")
    return parse_agent_config(text)
