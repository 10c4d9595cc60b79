"""The deploy of an approved `apply_commit`: the one state machine, step by step.

    1  capture applied main for rollback
    2  tag approved/<id> and building/<id>
    3  fast-forward main to proposal/<id>, sync the working tree
    4  meta prepare: lock agent-<name> afresh, uncommitted
    5  rebuild the container
    6a deployed/<id>; meta finalize commits the staged lock
    6b failed/<id> annotated with the error; main back to the captured sha,
       working tree synced, the agent's lock node restored

Each step is journaled in the database before it is taken and pushed to
whoever watches as a DeployStep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import pygit2

from . import gitrepo
from .db import Database
from .errors import BuildFailed, Conflict, HiveError, describe
from .faults import crash_point
from .layout import StateRoot
from .meta import MetaFlake
from .models import Approval, DeployStep
from .runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class Deployer:
    state: StateRoot
    db: Database
    meta: MetaFlake
    runtime: Runtime
    emit: Callable[[object], None]

    def run(self, approval: Approval) -> Approval:
        """Deploy a claimed approval; returns it resolved (approved or failed)."""
        id, name = approval.id, approval.agent
        path = self.state.applied(name)
        repo = gitrepo.open_repo(path)

        def step(step_name: str, detail: str = "") -> None:
            crash_point(f"deploy:before-{step_name}")
            with self.db.write() as t:
                t.journal_step(id, step_name)
            self.emit(DeployStep(id=id, agent=name, step=step_name, detail=detail))

        main = repo.references[gitrepo.MAIN]
        prev = main.target
        target = proposal_commit(repo, approval)
        crash_point("deploy:claimed")
        with self.db.write() as t:
            t.journal_start(id, name, str(prev), str(target))
        self.emit(DeployStep(id=id, agent=name, step="captured", detail=f"main at {str(prev)[:12]}"))

        try:
            step("tagging", f"approved/{id} building/{id}")
            gitrepo.create_tag(repo, f"approved/{id}", target, "")
            gitrepo.create_tag(repo, f"building/{id}", target, "")
            if not gitrepo.is_ancestor(repo, prev, target):
                raise BuildFailed(
                    f"proposal/{id} ({str(target)[:12]}) does not descend from main ({str(prev)[:12]}): "
                    f"main moved since it was proposed; the manager must propose again on top of main"
                )
            step("fast-forward", f"main {str(prev)[:12]} -> {str(target)[:12]}")
            gitrepo.move_ref(main, target, f"hive-tui: deploy {id}")
            gitrepo.sync_worktree(repo, target)
            step("meta-prepare", f"locking agent-{name}")
            node = self.meta.prepare_deploy(name)
            step("rebuild", f"building {str(target)[:12]}")
            self.runtime.rebuild(
                name, path, str(target),
                lambda line: self.emit(DeployStep(id=id, agent=name, step="output", detail=line)),
            )
        except Exception as e:
            if not isinstance(e, HiveError):
                log.exception("deploy %s of %s failed unexpectedly", id, name)
            error = describe(e)
            try:
                return self._roll_back(repo, main, approval, prev, target, error)
            except Exception as rollback_error:
                raise HiveError(f"{error}\nrolling back failed too: {rollback_error}") from rollback_error

        step("finalize", f"deployed/{id}")
        gitrepo.create_tag(repo, f"deployed/{id}", target, "")
        crash_point("deploy:deployed-tagged")
        self.meta.finalize_deploy(name, node, deploy_message(name, id, str(target)))
        crash_point("deploy:meta-committed")
        return self.resolve(approval, "approved", f"deployed/{id}", str(target), error=None)

    def _roll_back(self, repo: pygit2.Repository, main: pygit2.Reference, approval: Approval,
                   prev: pygit2.Oid, target: pygit2.Oid, error: str) -> Approval:
        id, name = approval.id, approval.agent
        # Build output may hold NUL, which a git tag message cannot.
        error = error.replace("\0", "\\0")
        with self.db.write() as t:
            t.journal_step(id, "rollback")
        self.emit(DeployStep(id=id, agent=name, step="rollback", detail=error))
        gitrepo.create_tag(repo, f"failed/{id}", target, error)
        crash_point("deploy:failed-tagged")
        # `main` is the ref loaded in step 1: moving it back is a compare-and-swap
        # against the value this deploy set, so a move by anyone else is refused.
        if main.target != prev:
            gitrepo.move_ref(main, prev, f"hive-tui: roll back deploy {id}")
        gitrepo.sync_worktree(repo, prev)
        crash_point("deploy:rolled-back")
        self.meta.abort_deploy(name)
        return self.resolve(approval, "failed", f"failed/{id}", str(target), error=error)

    def resolve(self, approval: Approval, status: str, tag: str, sha: str, error: str | None) -> Approval:
        """Record the outcome: journal, approval and events in one transaction, then tell watchers."""
        id, name = approval.id, approval.agent
        with self.db.write() as t:
            t.journal_finish(id, status)
            done = t.finish(id, status, tag, error)
            events = [
                t.add_event("Rebuilt", name, id=id, status=tag.split("/")[0], sha=sha, tag=tag, error=error),
                t.add_event("ApprovalResolved", name, id=id, status=status, sha=sha, tag=tag, error=error),
            ]
        self.emit(DeployStep(id=id, agent=name, step=tag.split("/")[0], detail=tag))
        for event in events:
            self.emit(event)
        self.emit(done)
        return done


def deploy_message(name: str, id: int, sha: str) -> str:
    return f"deploy {name} deployed/{id} {sha[:12]}"


def proposal_commit(repo: pygit2.Repository, approval: Approval) -> pygit2.Oid:
    """The commit `proposal/<id>` tags, which must be the one the hive fetched.

    A tag missing after a crash between recording the approval and tagging
    it is planted again from the fetched sha.
    """
    tag = f"proposal/{approval.id}"
    if not approval.fetched_sha:
        raise HiveError(f"approval {approval.id} has no fetched commit")
    fetched = pygit2.Oid(hex=approval.fetched_sha)
    found = gitrepo.tag_commit(repo, tag)
    if found is None:
        if fetched not in repo:
            raise HiveError(f"{tag} is missing and {approval.fetched_sha} is not in the applied repo")
        gitrepo.create_tag(repo, tag, fetched, approval.description or "")
        return fetched
    if found != fetched:
        raise Conflict(f"{tag} points at {found}, but the hive fetched {approval.fetched_sha}")
    return found
