"""What a new engine does about the work the last one was in the middle of.

A deploy touches four stores (the applied repo, its working tree, the meta
repo and the database) and a crash can fall between any two. On start, the
engine looks at what was in flight and brings every store back in line:

- a deploy that had not committed its meta lock is rolled back as a failed
  build would be: `failed/<id>` annotated "interrupted" with the step it
  reached, `main` back to the captured sha, the working tree synced, the
  agent's lock node restored, the same events a failure emits;
- a deploy that had (its journal reached `finalize`) is finished forward:
  `deployed/<id>` planted, the meta lock committed if it was not yet;
- a spawn that did not finish is resolved failed and its container removed,
  or, if it got as far as the meta commit, finished forward;
- a denial whose tag was planted but whose row was not written is finished;
- a rebuild or a destroy cut short is finished; the meta flake's working
  files are reset to the last commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pygit2

from . import gitrepo
from .db import Database
from .deploy import Deployer, deploy_message
from .errors import HiveError, describe
from .layout import StateRoot
from .lifecycle import agents_for_meta_listing, destroy_agent, rebuild_agent
from .meta import MetaFlake
from .models import Approval, Transient
from .runtime import Runtime

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
        done: list[str] = []
        for approval in self.db.approvals(status="pending"):
            done += self._denied_without_a_row(approval)
        deploying = set()
        for approval in self._in_flight():
            deploying.add(approval.agent)
            try:
                done.append(self._approval(approval))
            except Exception as e:
                log.exception("recovering approval %s", approval.id)
                done.append(f"approval {approval.id} of {approval.agent} could not be recovered: {describe(e)}")
        for item in leftovers:
            if item.kind == "Rebuilding" and item.agent not in deploying \
                    and item.agent in agents_for_meta_listing(self.state, self.runtime):
                # The container may already run the new build: finish the rebuild, so
                # that the meta lock says what runs.
                self.meta.reset_working()
                try:
                    rebuild_agent(self.state, self.meta, self.runtime, item.agent, lambda line: None)
                    done.append(f"finished rebuilding {item.agent}")
                except HiveError as e:
                    done.append(f"rebuilding {item.agent} again failed; it may run a build its meta lock "
                                f"does not record: {e}")
            if item.kind == "Destroying" and item.agent in self.runtime.containers():
                warning = destroy_agent(self.state, self.meta, self.runtime, item.agent, purge=False)
                done.append(f"finished destroying {item.agent}, keeping its repos and state (a purge asked "
                            f"for may not have run: destroy it with purge again)" + (f"; {warning}" if warning else ""))
            elif item.kind == "Spawning" and item.agent not in self.meta.agents() \
                    and item.agent in self.runtime.containers():
                self.runtime.destroy(item.agent)
                done.append(f"removed the container of {item.agent}, whose spawn did not finish")
        self.meta.reset_working()
        listed = agents_for_meta_listing(self.state, self.runtime)
        if self.meta.agents() != listed:
            # A destroy or spawn stopped between the container and the meta commit.
            self.meta.rerender(listed, "render the agents the hive has")
            done.append(f"rendered the meta flake again for {', '.join(listed) or 'no agents'}")
        for line in done:
            log.warning("recovery: %s", line)
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
        if step == "finalize":
            return self._finish_deploy(a, journal)
        return self._roll_back_deploy(a, journal, step)

    def _finish_deploy(self, a: Approval, journal) -> str:
        name, target = a.agent, journal["target_sha"]
        repo = gitrepo.open_repo(self.state.applied(name))
        if gitrepo.tag_commit(repo, f"deployed/{a.id}") is None:
            gitrepo.create_tag(repo, f"deployed/{a.id}", pygit2.Oid(hex=target), "")
        if self.meta.locked_rev(name) != target:
            node = self.meta.prepare_deploy(name)
            self.meta.finalize_deploy(name, node, deploy_message(name, a.id, target))
        self.deployer.resolve(a, "approved", f"deployed/{a.id}", target, error=None)
        return f"finished deploy {a.id} of {name} forward: it had built and reached finalize"

    def _roll_back_deploy(self, a: Approval, journal, step: str) -> str:
        name = a.agent
        path = self.state.applied(name)
        if not (path / ".git").is_dir():
            self._fail(a, f"interrupted at step {step}; the applied repo is gone")
            return f"resolved deploy {a.id} of {name} as failed: its repo is gone"
        repo = gitrepo.open_repo(path)
        target = pygit2.Oid(hex=journal["target_sha"] if journal else a.fetched_sha)
        error = f"interrupted: the engine stopped at step {step!r} of this deploy; rolled back when it restarted"
        if gitrepo.tag_commit(repo, f"failed/{a.id}") is None:
            gitrepo.create_tag(repo, f"failed/{a.id}", target, error)
        if journal is not None:
            prev = pygit2.Oid(hex=journal["prev_sha"])
            main = repo.references[gitrepo.MAIN]
            if main.target == target and prev != target:
                gitrepo.move_ref(main, prev, f"hive-tui: roll back interrupted deploy {a.id}")
            gitrepo.sync_worktree(repo, repo.references[gitrepo.MAIN].target)
            if name in self.meta.agents():
                self.meta.abort_deploy(name)
            if step in ("rebuild", "rollback") and name in self.runtime.containers():
                # The container may already run the new build: put it back on main's.
                try:
                    self.runtime.rebuild(name, path, str(prev), lambda line: None)
                except HiveError as e:
                    error += f"\nrebuilding {name} at {str(prev)[:12]} failed too: {e}"
        self.deployer.resolve(a, "failed", f"failed/{a.id}", str(target), error=error)
        return f"rolled back deploy {a.id} of {name}, interrupted at step {step}"

    def _spawn(self, a: Approval) -> str:
        name = a.agent
        if name in agents_for_meta_listing(self.state, self.runtime) and name in self.meta.agents():
            sha = str(gitrepo.open_repo(self.state.applied(name)).references[gitrepo.MAIN].target)
            with self.db.write() as t:
                t.resolve_spawned(a, sha)
            return f"finished spawn {a.id} of {name} forward: its container and meta commit were there"
        if name in self.runtime.containers():
            self.runtime.destroy(name)
        self._fail(a, "interrupted: the engine stopped before this spawn finished; nothing of it was kept "
                      "but the agent's repos, which a new spawn reuses")
        return f"resolved spawn {a.id} of {name} as failed"

    def _fail(self, a: Approval, error: str) -> None:
        with self.db.write() as t:
            t.resolve_failed(a, None, error)
