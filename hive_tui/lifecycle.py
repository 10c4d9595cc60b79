"""Bringing agents into the hive, and which agents the hive has."""

from __future__ import annotations

import pygit2

from . import gitrepo
from .errors import Conflict
from .layout import StateRoot
from .meta import MetaFlake
from .names import check_name
from .runtime import OutputSink, Runtime


def agents_for_meta_listing(state: StateRoot, runtime: Runtime) -> list[str]:
    """The agents the meta flake is rendered from: a container and an applied repo each.

    The server, the console and the CLI list agents through this one function,
    so they show exactly the agents the meta flake has.
    """
    return [n for n in runtime.containers() if (state.applied(n) / ".git").is_dir()]


def install_agent(
    state: StateRoot, meta: MetaFlake, runtime: Runtime, name: str, files: dict[str, bytes], on_output: OutputSink
) -> str:
    """Seed an agent's repos (unless they survive a destroy), give it a container,
    add it to the meta flake and build it. Returns the applied main sha."""
    check_name(name)
    listed = agents_for_meta_listing(state, runtime)
    if name in listed:
        raise Conflict(f"agent {name} already exists")
    applied = state.applied(name)
    if not (applied / ".git").is_dir():
        gitrepo.init_repo(applied, files, f"spawn {name}")
    proposed = state.proposed(name)
    if not proposed.exists():
        pygit2.clone_repository(str(applied), str(proposed))
    state.agent_state(name).mkdir(mode=0o700, exist_ok=True)
    sha = str(gitrepo.open_repo(applied).references[gitrepo.MAIN].target)
    runtime.create(name)
    meta.sync(sorted({*listed, name}), f"spawn {name} {sha[:12]}")
    runtime.rebuild(name, applied, sha, on_output)
    return sha
