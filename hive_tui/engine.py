"""The host engine: one owner of a state root, and every operation on it.

The engine is synchronous and thread-safe; whoever serves it (the embedded
client, the socket server) runs its calls off the event loop. Progress and
changes are pushed to subscribers as model objects: DeployStep, Event,
Approval and AgentStatus.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pygit2

from . import gitrepo
from .db import Database
from .deploy import Deployer
from .errors import Conflict, HiveError, NotFound, describe
from .flakelock import NixLocker, locked_rev, make_locker
from .fsutil import read_json
from .layout import OwnerLock, StateRoot
from .lifecycle import agents_for_meta_listing, install_agent
from .meta import MetaCommit, MetaFlake, input_name
from .models import AgentStatus, Approval, Event, TagRecord
from .names import check_name
from .runtime import OutputSink, make_runtime
from .template import new_agent_files
from .validate import check_id, check_ref_text, check_text

log = logging.getLogger(__name__)
Listener = Callable[[object], None]


class Engine:
    def __init__(
        self,
        root: str | Path,
        runtime: str = "local",
        locker: str = "auto",
        lock_wait: float = 3.0,
        runtime_options: dict | None = None,
    ):
        self.state = StateRoot.at(root)
        self.locker = make_locker(locker)
        if isinstance(self.locker, NixLocker) and " " in str(self.state.meta):
            raise HiveError(f"Nix cannot lock a flake whose path has a space: {self.state.meta}")
        self.runtime = make_runtime(runtime, self.state, **(runtime_options or {}))
        self.state.create()
        self._owner = OwnerLock(self.state.lock)
        self._owner.acquire(lock_wait)
        try:
            self.db = Database(self.state.db)
            self.meta = MetaFlake(self.state, self.locker)
            self.meta.ensure()
        except BaseException:
            self._owner.release()
            raise
        self._listeners: list[Listener] = []
        self._agent_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._deployer = Deployer(self.state, self.db, self.meta, self.runtime, self._emit)

    def close(self) -> None:
        self.db.close()
        self._owner.release()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- watching ---------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every change; returns the function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _emit(self, item: object) -> None:
        for listener in list(self._listeners):
            try:
                listener(item)
            except Exception:
                # A broken watcher must not break the deploy it watches.
                log.exception("listener %r failed", listener)

    def _agent_lock(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._agent_locks.setdefault(name, threading.Lock())

    # -- reading ----------------------------------------------------------

    def agents(self) -> list[str]:
        return agents_for_meta_listing(self.state, self.runtime)

    def _require_agent(self, name: str) -> str:
        check_name(name)
        if name not in self.agents():
            raise NotFound(f"no agent named {name}")
        return name

    def status(self) -> list[AgentStatus]:
        lock = self.meta.committed_lock()
        return [self._row(name, lock) for name in self.agents()]

    def agent_status(self, name: str) -> AgentStatus:
        self._require_agent(name)
        return self._row(name, self.meta.committed_lock())

    def _row(self, name: str, lock: dict) -> AgentStatus:
        """An agent's row, derived from the runtime, the repos and its state folder."""
        run = self.runtime.run_state(name)
        locked = locked_rev(lock, input_name(name))
        applied = gitrepo.open_repo(self.state.applied(name)).references[gitrepo.MAIN].target
        agent_dir = self.state.agent_state(name)
        reported = read_json(agent_dir / "status.json") or {}
        text = reported.get("text") if run.running else None
        return AgentStatus(
            name=name,
            running=run.running,
            failed=run.failed,
            needs_update=locked != str(applied),
            needs_login=reported.get("needs_login") is True,
            paused=(agent_dir / "paused").exists(),
            deployed_sha=locked[:12] if locked else None,
            active_model=_str_or_none(reported.get("model")),
            status_text=_str_or_none(text),
            status_set_at=_str_or_none(reported.get("set_at")) if text is not None else None,
        )

    def pending(self) -> list[Approval]:
        return self.db.approvals(status="pending")

    def approvals(self, status: str | None = None, agent: str | None = None) -> list[Approval]:
        return self.db.approvals(status=status, agent=agent)

    def approval(self, id: int) -> Approval:
        return self.db.approval(check_id(id))

    def history(self, name: str) -> list[TagRecord]:
        check_name(name)
        path = self.state.applied(name)
        if not (path / ".git").is_dir():
            raise NotFound(f"no applied repo for {name}")
        return gitrepo.state_tags(gitrepo.open_repo(path))

    def meta_log(self) -> list[MetaCommit]:
        return self.meta.log()

    def events(self, since: int = 0, limit: int | None = None) -> list[Event]:
        return self.db.events(since, limit)

    # -- what the manager asks for ------------------------------------------

    def request_apply_commit(self, agent: str, commit_ref: str, description: str | None = None) -> Approval:
        """Fetch `commit_ref` from the agent's proposed repo and ask the operator."""
        name = self._require_agent(agent)
        check_ref_text(commit_ref)
        description = check_text(description, "description")
        applied = gitrepo.open_repo(self.state.applied(name))
        proposed_path = self.state.proposed(name)
        sha = gitrepo.resolve_commit(gitrepo.open_repo(proposed_path), commit_ref)
        incoming = f"refs/hive/incoming/{uuid.uuid4().hex}"
        gitrepo.fetch_commit(applied, proposed_path, sha, incoming)
        with self.db.write() as t:
            approval = t.insert_approval(
                Approval(agent=name, kind="apply_commit", commit_ref=commit_ref,
                         fetched_sha=str(sha), description=description)
            )
        gitrepo.create_tag(applied, f"proposal/{approval.id}", sha, description or "")
        applied.references.delete(incoming)
        self._emit(approval)
        return approval

    def request_spawn(self, name: str, description: str | None = None) -> Approval:
        check_name(name)
        description = check_text(description, "description")
        with self.db.write() as t:
            if name in self.agents():
                raise Conflict(f"agent {name} already exists")
            if any(a.agent == name and a.kind == "spawn" for a in self.db.approvals(status="pending")):
                raise Conflict(f"a spawn of {name} is already pending")
            approval = t.insert_approval(Approval(agent=name, kind="spawn", description=description))
        self._emit(approval)
        return approval

    # -- what the operator decides ------------------------------------------

    def approve(self, id: int, on_output: OutputSink | None = None) -> Approval:
        """Approve and carry out: deploy an apply_commit, or spawn the agent."""
        return self.carry_out(self.claim(id), on_output)

    def claim(self, id: int) -> Approval:
        """Mark a pending approval approved; refused once it is resolved."""
        check_id(id)
        with self.db.write() as t:
            approval = t.claim(id, "approved")
        self._emit(approval)
        return approval

    def carry_out(self, approval: Approval, on_output: OutputSink | None = None) -> Approval:
        """Deploy or spawn a claimed approval; always leaves it resolved.

        Actions on one agent run one after the other.
        """
        with self._agent_lock(approval.agent):
            try:
                if approval.kind == "apply_commit":
                    return self._deployer.run(approval)
                if approval.kind == "spawn":
                    return self._spawn(approval, on_output or (lambda line: None))
                raise HiveError(f"approval kind {approval.kind!r} cannot be carried out by this engine")
            except Exception as e:
                if not isinstance(e, HiveError):
                    log.exception("approval %s failed unexpectedly", approval.id)
                return self._fail(approval, describe(e))

    def _spawn(self, approval: Approval, on_output: OutputSink) -> Approval:
        sha = install_agent(self.state, self.meta, self.runtime, approval.agent,
                            new_agent_files(approval.agent), on_output)
        with self.db.write() as t:
            done = t.finish(approval.id, "approved", None)
            events = [
                t.add_event("Spawned", approval.agent, id=approval.id, sha=sha),
                t.add_event("ApprovalResolved", approval.agent, id=approval.id, status="approved", sha=sha),
            ]
        for item in (*events, done):
            self._emit(item)
        return done

    def _fail(self, approval: Approval, error: str) -> Approval:
        """Record an approval that could not be carried out, with a failed/<id> tag if one was planted."""
        tag = None
        if approval.kind == "apply_commit":
            try:
                repo = gitrepo.open_repo(self.state.applied(approval.agent))
                if gitrepo.tag_commit(repo, f"failed/{approval.id}") is not None:
                    tag = f"failed/{approval.id}"
            except HiveError:
                pass  # the repo is gone; the failure is recorded without a tag
        with self.db.write() as t:
            done = t.finish(approval.id, "failed", tag, error)
            event = t.add_event("ApprovalResolved", approval.agent, id=approval.id, status="failed",
                                sha=approval.fetched_sha, tag=tag, error=error)
        self._emit(event)
        self._emit(done)
        return done

    def deny(self, id: int, note: str | None = None) -> Approval:
        """Refuse a request. An apply_commit leaves denied/<id>, annotated with the note."""
        check_id(id)
        note = check_text(note, "note")
        with self.db.write() as t:
            approval = t.claim(id, "denied", note)
            tag, sha = None, approval.fetched_sha
            if approval.kind == "apply_commit":
                tag = f"denied/{id}"
                repo = gitrepo.open_repo(self.state.applied(approval.agent))
                gitrepo.create_tag(repo, tag, pygit2.Oid(hex=sha), note or "")
            done = t.finish(id, "denied", tag)
            event = t.add_event("ApprovalResolved", approval.agent, id=id, status="denied", sha=sha, tag=tag, note=note)
        self._emit(event)
        self._emit(done)
        return done

    # -- seeding --------------------------------------------------------------

    def install_agent(self, name: str, files: dict[str, bytes] | None = None,
                      on_output: OutputSink | None = None) -> str:
        """Bring an agent in without an approval: for seeding a hive (the demo, tests)."""
        with self._agent_lock(name):
            return install_agent(self.state, self.meta, self.runtime, name,
                                 files or new_agent_files(name), on_output or (lambda line: None))


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
