"""The deploy of an approved `apply_commit`: the one state machine, step by step.

    1  capture applied main for rollback
    2  tag approved/<id> and building/<id>
    3  fast-forward main to proposal/<id>, sync the working tree
    4  meta prepare: lock agent-<name> afresh, uncommitted
    5  rebuild the container
    6a deployed/<id>; meta finalize commits the staged lock
    6b failed/<id> annotated with the error; main back to the captured sha,
       working tree synced, the agent's lock node restored, and the container
       built again at that sha if it may have been switched

Each step is journaled in the database before it is taken and pushed to
whoever watches as a DeployStep. Recovery decides by three of them: before
`captured` nothing was changed, from `rebuild` the container may run the new
build, from `finalize` the deploy is finished forward. Those commits wait
for the disk; the steps between them end the same way whichever of them the
journal holds, so theirs do not (see Database.write). A deploy that stops short, because a step
failed or because the engine died, is ended by `settle` from what the
journal and the repos say: the running engine and crash recovery share it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import pygit2

from ..errors import BuildFailed, Conflict, HiveError, error_text
from ..models import Approval, DeployStep
from . import gitrepo
from .db import Database
from .faults import crash_point
from .meta import MetaFlake
from .runtime import Runtime
from .stateroot import StateRoot
from .transients import Transients

log = logging.getLogger(__name__)

# The journal steps recovery tells apart (see Recovery._approval and settle).
_DECISIVE_STEPS = frozenset({"rebuild", "finalize"})


@dataclass
class Deployer:
    state: StateRoot
    db: Database
    meta: MetaFlake
    runtime: Runtime
    emit: Callable[[object], None]
    transients: Transients

    def run(self, approval: Approval) -> Approval:
        """Deploy a claimed approval; returns it resolved (approved or failed)."""
        id, name = approval.id, approval.agent
        path = self.state.applied(name)
        repo = gitrepo.open_repo(path)

        def step(step_name: str, detail: str = "") -> None:
            crash_point(f"deploy:before-{step_name}")
            with self.db.write(durable=step_name in _DECISIVE_STEPS) as t:
                t.journal_step(id, step_name)
            self.emit(DeployStep(id=id, agent=name, step=step_name, detail=detail))

        main = repo.references[gitrepo.MAIN]
        prev = main.target
        target = proposal_commit(repo, approval)
        building = False
        try:
            crash_point("deploy:claimed")
            # Nothing happens between capturing main and tagging: one commit journals both.
            crash_point("deploy:before-tagging")
            with self.db.write() as t:
                t.journal_start(id, name, str(prev), str(target), step="tagging")
            self.emit(DeployStep(id=id, agent=name, step="captured", detail=f"main at {str(prev)[:12]}"))
            self.emit(DeployStep(id=id, agent=name, step="tagging", detail=f"approved/{id} building/{id}"))
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
            building = True
            self.runtime.rebuild(
                name, path, str(target),
                lambda line: self.emit(DeployStep(id=id, agent=name, step="output", detail=line)),
            )
            step("finalize", f"deployed/{id}")
            gitrepo.create_tag(repo, f"deployed/{id}", target, "")
            crash_point("deploy:deployed-tagged")
            self.meta.finalize_deploy(name, node, deploy_message(name, id, str(target)))
            crash_point("deploy:meta-committed")
        except Exception as e:
            if not isinstance(e, HiveError):
                log.exception("deploy %s of %s failed unexpectedly", id, name)
            # A failed build leaves the container as it was (the runtime promises
            # that); any other failure once the rebuild began may have switched it.
            return self.settle(approval, error_text(e), restore=building and not isinstance(e, BuildFailed))
        return self.resolve(approval, "approved", f"deployed/{id}", str(target), error=None)

    def settle(self, approval: Approval, error: str, restore: bool) -> Approval:
        """Bring a deploy that stopped short to its end, from what the stores say.

        A running deploy whose step failed and a new engine after a crash both
        end one here: one that had reached `finalize` is finished forward, any
        other is rolled back, and with `restore` its container is built again
        at the captured sha, since it may run the new build. Every step looks
        before it writes, so settling again after a failed step (a full disk,
        no file descriptors left) picks up where that one stopped. If that
        fails too, the agent is marked broken with the reason, and the
        approval resolved failed all the same.
        """
        try:
            return self._settle(approval, error, restore)
        except Exception as first:
            log.exception("settling deploy %s of %s", approval.id, approval.agent)
            cause = error_text(first)
        try:
            # Once more from what the stores now say, as a restarted engine would;
            # a failure inside a restore left the container no better known.
            return self._settle(approval, f"{error}\nrolling back failed once: {cause}", restore)
        except Exception as second:
            log.exception("settling deploy %s of %s again", approval.id, approval.agent)
            return self._give_up(approval, f"{error}\nrolling back failed: {cause}\n"
                                           f"and again: {error_text(second)}")

    def _settle(self, approval: Approval, error: str, restore: bool) -> Approval:
        journal = self.db.deploy_journal(approval.id)
        if journal is not None and journal["step"] == "finalize":
            return self._finish(approval, journal)
        return self._roll_back(approval, journal, error, restore)

    def _finish(self, approval: Approval, journal) -> Approval:
        id, name, target = approval.id, approval.agent, journal["target_sha"]
        repo = gitrepo.open_repo(self.state.applied(name))
        if gitrepo.tag_commit(repo, f"deployed/{id}") is None:
            gitrepo.create_tag(repo, f"deployed/{id}", pygit2.Oid(hex=target), "")
        if self.meta.locked_rev(name) != target:
            node = self.meta.prepare_deploy(name)
            self.meta.finalize_deploy(name, node, deploy_message(name, id, target))
        return self.resolve(approval, "approved", f"deployed/{id}", target, error=None)

    def _roll_back(self, approval: Approval, journal, error: str, restore: bool) -> Approval:
        id, name = approval.id, approval.agent
        # Build output may hold NUL, which a git tag message cannot.
        error = error.replace("\0", "\\0")
        path = self.state.applied(name)
        target = journal["target_sha"] if journal is not None else approval.fetched_sha
        if not (path / ".git").is_dir():
            return self.resolve(approval, "failed", None, target, error=f"{error}\nthe applied repo is gone")
        repo = gitrepo.open_repo(path)
        main = repo.references[gitrepo.MAIN]
        if journal is not None and str(main.target) not in (target, journal["prev_sha"]):
            error += (f"\nrolling back failed too: {gitrepo.MAIN} moved under us to {str(main.target)[:12]}; "
                      f"refusing to overwrite it")
        crash_point("deploy:before-rollback")
        if journal is not None:
            with self.db.write() as t:
                # Journaled apart, so that recovery knows whether the container is in question.
                t.journal_step(id, "restore" if restore else "rollback")
        self.emit(DeployStep(id=id, agent=name, step="rollback", detail=error))
        if gitrepo.tag_commit(repo, f"failed/{id}") is None:
            gitrepo.create_tag(repo, f"failed/{id}", pygit2.Oid(hex=target), error)
        crash_point("deploy:failed-tagged")
        if journal is not None:
            prev = pygit2.Oid(hex=journal["prev_sha"])
            # Only this deploy's own move is undone: a main moved by anyone else stays.
            if str(main.target) == target and prev != main.target:
                gitrepo.move_ref(main, prev, f"hive-tui: roll back deploy {id}")
            gitrepo.sync_worktree(repo, repo.references[gitrepo.MAIN].target)
            crash_point("deploy:rolled-back")
            if name in self.meta.agents():
                self.meta.abort_deploy(name)
            if restore and name in self.runtime.containers():
                self.runtime.rebuild(name, path, str(prev), lambda line: None)
        return self.resolve(approval, "failed", f"failed/{id}", target, error=error)

    def _give_up(self, approval: Approval, reason: str) -> Approval:
        """Resolve the approval failed and mark its agent broken: the status then says why."""
        id, name = approval.id, approval.agent
        tag = None
        try:
            if gitrepo.tag_commit(gitrepo.open_repo(self.state.applied(name)), f"failed/{id}") is not None:
                tag = f"failed/{id}"
        except HiveError:
            pass
        with self.transients.outcome(name) as t:
            t.mark_broken(name, reason)
            if self.db.deploy_journal(id) is not None:
                t.journal_finish(id, "failed")
            done, events = t.resolve_failed(approval, tag, reason)
        for event in events:
            self.emit(event)
        self.emit(done)
        return done

    def resolve(self, approval: Approval, status: str, tag: str | None, sha: str | None,
                error: str | None) -> Approval:
        """Record the outcome: journal, approval and events in one transaction, then tell watchers."""
        id, name = approval.id, approval.agent
        state = tag.split("/")[0] if tag else status
        with self.transients.outcome(name) as t:
            if self.db.deploy_journal(id) is not None:
                t.journal_finish(id, status)
            done = t.finish(id, status, tag, error)
            if status == "approved":
                t.clear_broken(name)
            events = [
                t.add_event("Rebuilt", name, id=id, status=state, sha=sha, tag=tag, error=error),
                t.add_event("ApprovalResolved", name, id=id, status=status, sha=sha, tag=tag, error=error),
            ]
        self.emit(DeployStep(id=id, agent=name, step=state, detail=tag or error or ""))
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
