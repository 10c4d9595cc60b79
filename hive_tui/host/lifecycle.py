"""What happens to an agent's repos, meta flake node and container over its life.

These functions do the work; the engine wraps each one in its transient
state, its events and its per-agent turn.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pygit2

from ..errors import Conflict, HiveError, error_text
from ..names import check_name, is_valid_name
from . import gitrepo
from .faults import crash_point
from .meta import MetaFlake
from .runtime import OutputSink, Runtime
from .stateroot import StateRoot

log = logging.getLogger(__name__)


def agents_for_meta_listing(state: StateRoot, runtime: Runtime, meta: MetaFlake | None = None,
                            containers: list[str] | None = None) -> list[str]:
    """The agents the meta flake is rendered from: a container and an applied repo
    each, and with `meta`, no spawn of theirs under way (an agent counts once its
    spawn has succeeded).

    The server, the console and the CLI list agents through this one function,
    so they show exactly the agents the meta flake has. A render reads it under
    the meta flake's lock (see MetaFlake.rerender), where it is exact.
    """
    # Containers first: a spawn that ends between the two reads is then either
    # still spawning or committed, never listed half done. A caller that has
    # just listed them passes `containers`.
    if containers is None:
        containers = runtime.containers()
    spawning = meta.spawning() if meta is not None else frozenset()
    return state.with_applied_repo([n for n in containers if n not in spawning])


def is_listed(state: StateRoot, runtime: Runtime, meta: MetaFlake, name: str) -> bool:
    """Whether `agents_for_meta_listing` lists `name`, with the runtime's
    containers listed only if the agent has an applied repo and no spawn
    under way: checking one agent costs no scan of every agent's repo."""
    return name not in meta.spawning() and state.has_applied_repo(name) and name in runtime.containers()


def kept_agents(state: StateRoot, runtime: Runtime, meta: MetaFlake, containers: list[str] | None = None) -> list[str]:
    """The agents destroyed with their repos kept: an applied repo and no
    container, and no spawn of theirs under way. They can still be purged,
    or spawned again.

    `containers` is the runtime's listing when the caller has just read it.
    """
    has = set(runtime.containers() if containers is None else containers) | meta.spawning()
    try:
        entries = os.listdir(state.root / "applied")
    except OSError:
        return []
    return sorted(n for n in entries if is_valid_name(n) and n not in has and state.has_applied_repo(n))


def is_kept(state: StateRoot, runtime: Runtime, meta: MetaFlake, name: str) -> bool:
    """Whether `kept_agents` lists `name`, looking at that one agent."""
    return (is_valid_name(name) and name not in meta.spawning() and state.has_applied_repo(name)
            and name not in runtime.containers())


def _lister(state: StateRoot, runtime: Runtime, meta: MetaFlake):
    return lambda: agents_for_meta_listing(state, runtime, meta)


def applied_main(state: StateRoot, name: str) -> str:
    return str(gitrepo.open_repo(state.applied(name)).references[gitrepo.MAIN].target)


def install_agent(
    state: StateRoot, meta: MetaFlake, runtime: Runtime, name: str, files: dict[str, bytes], on_output: OutputSink
) -> str:
    """Seed an agent's repos (unless they survive a destroy), add it to the meta
    flake, and create its container. Returns the applied main sha.

    A spawn that fails leaves nothing behind: what it made is removed, and
    the meta flake's log never hears of it. Repos and state kept from an
    earlier destroy are kept again.
    """
    check_name(name)
    if is_listed(state, runtime, meta, name):
        raise Conflict(f"agent {name} already exists")
    # An earlier rerender may have failed (see destroy_agent): catch up first,
    # so the spawn's commit changes the new agent's node and nothing else.
    meta.render_owed(_lister(state, runtime, meta), "render the agents the hive has")
    made: list[Path] = []
    staged = created = False
    try:
        applied = state.applied(name)
        if not (applied / ".git").is_dir():
            made.append(applied)
            gitrepo.init_repo(applied, files, f"spawn {name}")
        proposed = state.proposed(name)
        if not proposed.exists():
            made.append(proposed)
            pygit2.clone_repository(str(applied), str(proposed))
        agent_state = state.agent_state(name)
        if not agent_state.exists():
            made.append(agent_state)
            agent_state.mkdir(mode=0o700)
        sha = applied_main(state, name)
        crash_point("spawn:seeded")
        node = meta.prepare_spawn(name)
        staged = True
        crash_point("spawn:prepared")
        runtime.create(name, applied, sha, on_output)
        created = True
        crash_point("spawn:created")
        meta.finalize_spawn(name, node, f"spawn {name} {sha[:12]}")
        crash_point("spawn:committed")
        return sha
    except BaseException:
        if name in meta.agents():
            # Past the meta commit the spawn stands: what is left is to settle it
            # forward (see recovery.settle_spawn), not to undo it.
            raise
        _undo(f"spawn of {name}", [
            *([lambda: runtime.destroy(name)] if created else []),
            *([lambda: meta.abort_spawn(name)] if staged else []),
            *[lambda p=p: shutil.rmtree(p) for p in reversed(made)],
        ])
        raise


def check_purge(state: StateRoot, name: str) -> list[str]:
    """The areas holding something of `name`, or the refusal of its purge."""
    try:
        return state.agent_entries(name)
    except HiveError as e:
        raise HiveError(f"cannot purge {name}: {e}; nothing was destroyed") from None


def _undo(what: str, steps: list) -> None:
    """Run every clean-up step, logging the ones that fail: the original error is the one to report."""
    for step in steps:
        try:
            step()
        except Exception:
            log.exception("cleaning up after a failed %s", what)


def rebuild_agent(state: StateRoot, meta: MetaFlake, runtime: Runtime, name: str, on_output: OutputSink) -> str | None:
    """Build the agent's applied main again and switch its container to it.

    Walks the meta flake like a deploy does, so a failed rebuild leaves the
    meta log as it was. Returns the meta commit, or None when the lock did
    not change (the usual case: the same sha built again).
    """
    sha = applied_main(state, name)
    node = meta.prepare_deploy(name)
    crash_point("rebuild:prepared")
    try:
        runtime.rebuild(name, state.applied(name), sha, on_output)
    except BaseException:
        meta.abort_deploy(name)
        raise
    crash_point("rebuild:built")
    return meta.finalize_deploy(name, node, f"rebuild {name} {sha[:12]}", skip_unchanged=True)


def destroy_agent(state: StateRoot, meta: MetaFlake, runtime: Runtime, name: str, purge: bool) -> str | None:
    """Remove the agent's container, and with `purge` its repos and state too.

    A purge follows no link at any level: an agent's entry that is a link is
    removed itself, and a purge whose area is a link is refused before
    anything is changed, the container included.

    Then the meta flake is rendered again from the agents that remain. The
    destroy stands even if that fails: the error is logged and returned, for
    the caller to report, and the next meta operation renders it right.
    """
    check_name(name)
    if purge:
        check_purge(state, name)
    with meta.leaving(name):
        return _destroy(state, meta, runtime, name, purge)


def _destroy(state: StateRoot, meta: MetaFlake, runtime: Runtime, name: str, purge: bool) -> str | None:
    if name in runtime.containers():
        runtime.destroy(name)
    crash_point("destroy:container-gone")
    if purge:
        state.remove_agent_entries(name)
    crash_point("destroy:purged")
    try:
        meta.rerender(_lister(state, runtime, meta), f"destroy {name}", dropping=name)
    except Exception as e:
        if not isinstance(e, HiveError):
            log.exception("meta rerender after destroying %s", name)
        error = f"the meta flake could not be rendered again after destroying {name}: {error_text(e)}"
        log.warning("%s", error)
        return error
    return None
