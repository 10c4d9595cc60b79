"""What a new engine does about the work the last one was in the middle of.

A deploy touches four stores (the applied repo, its working tree, the meta
repo and the database) and a crash can fall between any two. On start, the
engine first ends the process group of any build the last one left running,
then looks at what was in flight and brings every store back in line:

- a deploy that had not committed its meta lock is rolled back as a failed
  build would be: `failed/<id>` annotated "interrupted" with the step it
  reached, `main` back to the captured sha, the working tree synced, the
  agent's lock node restored, the same events a failure emits;
- a deploy that had (its journal reached `finalize`) is finished forward:
  `deployed/<id>` planted, the meta lock committed if it was not yet;
- a spawn that did not finish is resolved failed, its container removed and
  its repos left clean or gone, or, if it got as far as the meta commit,
  finished forward;
- a denial whose tag was planted but whose row was not written is finished;
- a rebuild or a destroy cut short is finished; the meta flake's working
  files are reset to the last commit.

The running engine ends a deploy, spawn, rebuild or destroy whose step
failed with the same code (`Deployer.settle` and the `settle_*` functions
below). What cannot be put right is marked on the agent, with the reason,
for its status to show.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass

import pygit2

from ..errors import HiveError, error_text
from ..models import Approval, Transient
from . import gitrepo
from .db import Database
from .deploy import Deployer
from .lifecycle import agents_for_meta_listing, destroy_agent, rebuild_agent
from .meta import MetaFlake
from .runtime import Runtime
from .runtime.procs import BUILD_RECORD, end_recorded_group
from .stateroot import StateRoot

log = logging.getLogger(__name__)


@dataclass
class Recovery:
    state: StateRoot
    db: Database
    meta: MetaFlake
    runtime: Runtime
    deployer: Deployer

    def run(self, leftovers: list[Transient]) -> list[str]:
        """Reconcile; returns what was done, one line each, also logged."""
        done: list[str] = self._end_interrupted_builds()
        for approval in self.db.approvals(status="pending"):
            done += self._denied_without_a_row(approval)
        deploying = set()
        for approval in self._in_flight():
            deploying.add(approval.agent)
            try:
                done.append(self._approval(approval))
            except Exception as e:
                log.exception("recovering approval %s", approval.id)
                done.append(f"approval {approval.id} of {approval.agent} could not be recovered: {error_text(e)}")
        for item in leftovers:
            try:
                line = self._leftover(item, deploying)
            except Exception as e:
                log.exception("recovering the %s of %s", item.kind, item.agent)
                mark_broken(self.db, item.agent, f"{item.kind} was interrupted, and finishing it failed: "
                                                 f"{error_text(e)}")
                line = f"finishing the {item.kind} of {item.agent} failed: {error_text(e)}"
            if line:
                done.append(line)
        self.meta.reset_working()
        listed = agents_for_meta_listing(self.state, self.runtime)
        if self.meta.agents() != listed:
            # A destroy or spawn stopped between the container and the meta commit.
            self.meta.rerender(listed, "render the agents the hive has")
            done.append(f"rendered the meta flake again for {', '.join(listed) or 'no agents'}")
        for line in done:
            log.warning("recovery: %s", line)
        return done

    def _leftover(self, item: Transient, deploying: set[str]) -> str | None:
        if item.kind == "Rebuilding" and item.agent not in deploying \
                and item.agent in agents_for_meta_listing(self.state, self.runtime):
            # The container may already run the new build: finish the rebuild, so
            # that the meta lock says what runs.
            self.meta.reset_working()
            settle_rebuild(self.state, self.meta, self.runtime, item.agent)
            return f"finished rebuilding {item.agent}"
        if item.kind == "Destroying" and item.agent in self.runtime.containers():
            warning = settle_destroy(self.state, self.meta, self.runtime, item.agent, purge=False)
            return (f"finished destroying {item.agent}, keeping its repos and state (a purge asked "
                    f"for may not have run: destroy it with purge again)" + (f"; {warning}" if warning else ""))
        if item.kind == "Spawning" and item.agent not in deploying \
                and settle_spawn(self.state, self.meta, self.runtime, item.agent) is None:
            return f"removed what the unfinished spawn of {item.agent} had made, but repos a new spawn reuses"
        return None

    def _end_interrupted_builds(self) -> list[str]:
        """A build the last engine ran is not waited for by anyone now: end its
        whole process group before anything is built again in its place."""
        done = []
        for name in self.runtime.containers():
            ended = end_recorded_group(self.state.container(name) / BUILD_RECORD)
            if ended:
                done.append(f"ended the interrupted build of {name} (processes {', '.join(map(str, ended))})")
        return done

    def _in_flight(self) -> list[Approval]:
        """Claimed (approved) but never resolved: no ApprovalResolved event records them."""
        resolved = {e.id for e in self.db.events() if e.kind == "ApprovalResolved"}
        return [a for a in self.db.approvals(status="approved") if a.id not in resolved]

    def _denied_without_a_row(self, approval: Approval) -> list[str]:
        if approval.kind != "apply_commit" or not (self.state.applied(approval.agent) / ".git").is_dir():
            return []
        repo = gitrepo.open_repo(self.state.applied(approval.agent))
        ref = repo.references.get(f"refs/tags/denied/{approval.id}")
        if ref is None:
            return []
        note = repo[ref.target].message or None
        with self.db.write() as t:
            t.resolve_denied(t.claim(approval.id, "denied", note), f"denied/{approval.id}", note)
        return [f"finished denying {approval.id} ({approval.agent}): denied/{approval.id} was already planted"]

    def _approval(self, a: Approval) -> str:
        if a.kind == "spawn":
            return self._spawn(a)
        journal = self.db.deploy_journal(a.id)
        step = journal["step"] if journal is not None else "claimed"
        error = f"interrupted: the engine stopped at step {step!r} of this deploy; rolled back when it restarted"
        # The container may already run the new build when the rebuild had begun.
        done = self.deployer.settle(a, error, restore=step in ("rebuild", "restore"))
        if done.status == "approved":
            return f"finished deploy {a.id} of {a.agent} forward: it had built and reached finalize"
        return f"rolled back deploy {a.id} of {a.agent}, interrupted at step {step}"

    def _spawn(self, a: Approval) -> str:
        name = a.agent
        sha = settle_spawn(self.state, self.meta, self.runtime, name)
        if sha is not None:
            with self.db.write() as t:
                t.resolve_spawned(a, sha)
            return f"finished spawn {a.id} of {name} forward: its container and meta commit were there"
        self._fail(a, "interrupted: the engine stopped before this spawn finished; nothing of it was kept "
                      "but the agent's repos, which a new spawn reuses")
        return f"resolved spawn {a.id} of {name} as failed"

    def _fail(self, a: Approval, error: str) -> None:
        with self.db.write() as t:
            t.resolve_failed(a, None, error)


# What a failed or interrupted spawn, rebuild or destroy leaves is put right by
# the same functions whether the engine that notices is the one that was
# running it or the next one, after a crash.


def settle_spawn(state: StateRoot, meta: MetaFlake, runtime: Runtime, name: str) -> str | None:
    """End a spawn of `name` that did not return: the applied main sha if it
    had in fact finished (its container and meta commit are there), else None,
    once nothing of it is left but repos a new spawn can reuse."""
    if name in meta.agents() and name in runtime.containers() and (state.applied(name) / ".git").is_dir():
        main = gitrepo.open_repo(state.applied(name)).references.get(gitrepo.MAIN)
        if main is not None:
            return str(main.target)
    if name in runtime.containers():
        runtime.destroy(name)
    meta.abort_spawn(name)
    clean_repos(state, name)
    return None


def clean_repos(state: StateRoot, name: str) -> None:
    """Leave the agent's repos fit for a new spawn to reuse, or gone.

    A spawn cut short while it created them can leave a repo with no
    commit yet, or with its working tree not yet (or half) checked out.
    """
    applied = state.applied(name)
    if applied.is_dir() and not applied.is_symlink():
        main = _main_of(applied)
        if main is None:
            shutil.rmtree(applied)
        else:
            gitrepo.sync_worktree(gitrepo.open_repo(applied), main)
    proposed = state.proposed(name)
    if proposed.is_dir() and not proposed.is_symlink() and not (applied / ".git").is_dir() \
            and _main_of(proposed) is None:
        # A clone cut short: the applied repo it came from is gone too.
        shutil.rmtree(proposed)


def _main_of(path) -> pygit2.Oid | None:
    try:
        main = gitrepo.open_repo(path).references.get(gitrepo.MAIN)
    except HiveError:
        return None
    return main.target if main is not None else None


def settle_rebuild(state: StateRoot, meta: MetaFlake, runtime: Runtime, name: str) -> str | None:
    """Build the agent again after a rebuild that may have switched its container,
    so that its meta lock says what runs; returns the meta commit, if any."""
    return rebuild_agent(state, meta, runtime, name, lambda line: None)


def settle_destroy(state: StateRoot, meta: MetaFlake, runtime: Runtime, name: str, purge: bool) -> str | None:
    """Finish a destroy cut short: it is done again, from where it stopped."""
    return destroy_agent(state, meta, runtime, name, purge)


def mark_broken(db: Database, name: str, reason: str) -> None:
    """Record that `name` is left in a state the engine could not repair; its status shows why."""
    log.error("%s is left broken: %s", name, reason)
    with db.write() as t:
        t.mark_broken(name, reason)
