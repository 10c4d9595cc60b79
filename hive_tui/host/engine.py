"""The host engine: one owner of a state root, and every operation on it.

The engine is synchronous and thread-safe; whoever serves it (the embedded
client, the socket server) runs its calls off the event loop. Progress and
changes are pushed to subscribers as model objects: DeployStep, Event,
Approval, Transient and AgentStatus.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pygit2

from ..errors import BuildFailed, Conflict, HiveError, NotFound, error_text
from ..models import AgentStatus, Approval, Event, LogPage, TagRecord, Transient
from ..names import check_name
from . import gitrepo
from .agentconf import CONFIG_FILE, read_parent
from .db import Database
from .deploy import Deployer
from .emitter import Emitter, Listener
from .faults import crash_point
from .flakelock import NixLocker, locked_rev, make_locker
from .fsutil import is_marker, set_marker
from .logindex import AgentLog, agent_log
from .lifecycle import (agents_for_meta_listing, check_purge, destroy_agent, install_agent, is_kept, is_listed,
                        kept_agents, rebuild_agent)
from .meta import MetaCommit, MetaFlake, input_name
from .recovery import Recovery, mark_broken, settle_destroy, settle_rebuild, settle_spawn
from .rowcache import CommittedLock, StatusFiles
from .runtime import OutputSink, RunState, make_runtime, run_states
from .stateroot import OwnerLock, StateRoot
from .template import new_agent_files
from .transients import Transients
from .validate import check_id, check_ref_text, check_text
from .watch import FolderWatch

LOG_LINES_MAX = 10_000
LOG_TIMEOUT = 30.0
# The note on the requests a purge leaves with nothing to apply to.
PURGED_NOTE = "agent purged"

log = logging.getLogger(__name__)


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
            self.meta = MetaFlake(self.state, self.locker, extra_inputs=self.runtime.meta_inputs)
            self.meta.ensure()
        except BaseException:
            self._owner.release()
            raise
        self._emitter = Emitter(self.db)
        # The row last pushed for each agent, so that a change on disk that
        # leaves the row as it was pushes nothing.
        self._last_rows: dict[str, AgentStatus] = {}
        # What the rows are read from, read again only when it changed.
        self._committed_lock = CommittedLock(self.meta)
        self._status_files = StatusFiles()
        # Each agent's parent, from agent.yaml in its applied checkout.
        self._parents = StatusFiles(reader=read_parent)
        # Started with the first subscriber: nobody to push to before.
        self._watch: FolderWatch | None = None
        self._watch_lock = threading.Lock()
        self._closed = False
        self.transients = Transients(self.db, self._transient_changed)
        self._deployer = Deployer(self.state, self.db, self.meta, self.runtime, self._emit, self.transients)
        self.interrupted = self._clear_leftover_transients()
        # What the last engine left half done, brought back in line before any new work.
        self.recovered = Recovery(self.state, self.db, self.meta, self.runtime, self._deployer).run(self.interrupted)

    def _clear_leftover_transients(self) -> list[Transient]:
        """Report the actions a previous engine was in the middle of when it stopped."""
        leftovers = self.transients.take_leftovers()
        for item in leftovers:
            log.warning("%s of %s was interrupted (in flight since %s); cleared", item.kind, item.agent, item.since)
            with self.db.write() as t:
                t.add_event("Interrupted", item.agent, status=item.kind,
                            note=f"{item.kind} was in flight since {item.since} when the engine stopped")
        return leftovers

    def close(self) -> None:
        with self._watch_lock:
            self._closed = True
            watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()
        self.db.close()
        self._owner.release()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- watching ---------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every change; returns the function that stops it.

        From the first subscriber on, the agents' folders are watched, so a
        row follows what its agent writes (see watch.py).
        """
        unsubscribe = self._emitter.subscribe(listener)
        with self._watch_lock:
            if self._watch is None and not self._closed:
                self._watch = FolderWatch(self.state.root, self._changed_on_disk)
                self._watch.start()
        return unsubscribe

    def _emit(self, item: object) -> None:
        self._emitter.emit(item)

    def _push_row(self, name: str) -> AgentStatus:
        """Push the agent's row as it is now; the row is read in the agent's push turn.

        NotFound when the agent has no row (never spawned, or purged).
        """
        with self._emitter.row_turn(name):
            try:
                row = self._current_row(name)
            except NotFound:
                self._last_rows.pop(name, None)
                raise
            self._last_rows[name] = row
            self._emit(row)
        return row

    def _changed_on_disk(self, names: list[str]) -> None:
        """Something the rows of `names` are read from changed on disk (called
        by the watcher): push each row that is not the one last pushed.

        Who has a row is listed once for them all. An agent only joins or
        leaves the list in an action, whose end pushes its row in the agent's
        turn: a row pushed since the list was read says the list may be stale
        for that agent, which is then looked up again.
        """
        before = {name: self._last_rows.get(name) for name in names}
        containers = self.runtime.containers()
        agents = set(agents_for_meta_listing(self.state, self.runtime, self.meta, containers))
        kept = set(self.kept(containers))
        lock, broken = self._committed_lock.get(), self.db.broken()
        for name in names:
            try:
                with self._emitter.row_turn(name):
                    if self._last_rows.get(name) is not before[name]:
                        row = self._current_row(name)
                    elif name in agents or name in kept:
                        row = self._row(name, lock if name in agents else {}, broken, kept=name not in agents)
                    else:
                        raise NotFound(name)
                    if self._last_rows.get(name) != row:
                        self._last_rows[name] = row
                        self._emit(row)
            except NotFound:
                self._last_rows.pop(name, None)  # not spawned yet, or purged: it has no row
            except HiveError:
                log.exception("status of %s after a change on disk", name)

    def _transient_changed(self, item: Transient) -> None:
        self._emit(item)
        try:
            self._push_row(item.agent)
        except NotFound:
            pass  # not spawned yet, or purged: it has no row
        except HiveError:
            log.exception("status of %s after %s", item.agent, item.kind)

    # -- reading ----------------------------------------------------------

    def agents(self) -> list[str]:
        return agents_for_meta_listing(self.state, self.runtime, self.meta)

    def _require_agent(self, name: str) -> str:
        check_name(name)
        if name not in self.agents():
            raise NotFound(f"no agent named {name}")
        return name

    def kept(self, containers: list[str] | None = None) -> list[str]:
        """The agents destroyed with their repos kept (see lifecycle.kept_agents).

        A name being spawned again is not one: it is in flight, and shown as such.
        """
        return [n for n in kept_agents(self.state, self.runtime, self.meta, containers)
                if self.transients.kind(n) != "Spawning"]

    def status(self) -> list[AgentStatus]:
        """A row for each agent, and a `kept` row for each agent destroyed with
        its repos kept; one destroyed while the rows are read is left out."""
        lock = self._committed_lock.get()
        broken = self.db.broken()
        containers = self.runtime.containers()
        rows = []
        names = agents_for_meta_listing(self.state, self.runtime, self.meta, containers)
        # One read of every agent's run state: the nixos runtime asks systemctl once.
        runs = run_states(self.runtime, names)
        for name in names:
            try:
                rows.append(self._row(name, lock, broken, run=runs.get(name)))
            except NotFound:
                continue
        rows += [self._row(name, {}, broken, kept=True) for name in self.kept(containers)]
        return sorted(rows, key=lambda r: r.name)

    def agent_status(self, name: str) -> AgentStatus:
        check_name(name)
        return self._current_row(name)

    def _current_row(self, name: str) -> AgentStatus:
        """The agent's row, or its `kept` row; NotFound when it has neither."""
        # One agent looked up, not every agent listed: a spawn pushes rows too.
        if is_listed(self.state, self.runtime, self.meta, name):
            return self._row(name, self._committed_lock.get(), self.db.broken())
        if self.transients.kind(name) != "Spawning" and is_kept(self.state, self.runtime, self.meta, name):
            return self._row(name, {}, self.db.broken(), kept=True)
        raise NotFound(f"no agent named {name}")

    def _row(self, name: str, lock: dict, broken: dict[str, str], kept: bool = False,
             run: RunState | None = None) -> AgentStatus:
        """An agent's row, derived from the runtime, the repos and its state folder;
        `kept` for an agent destroyed with its repos kept: no container, nothing deployed.

        NotFound if the agent is destroyed meanwhile: its container goes first,
        so an agent no longer listed when its repo cannot be read is gone.
        """
        if run is None:
            run = RunState() if kept else self.runtime.run_state(name)
        locked = locked_rev(lock, input_name(name))
        applied = None
        try:
            if not kept:
                applied = gitrepo.main_target(self.state.applied(name))
        except (HiveError, pygit2.GitError, OSError):
            if name not in self.agents():
                raise NotFound(f"no agent named {name}") from None
            raise
        try:
            folder: Path | None = self.state.agent_state(name)
        except HiveError:
            folder = None  # a link in its place: nothing in it is read
        try:
            parent = self._parents.read(os.path.join(self.state.applied(name), CONFIG_FILE))
        except HiveError:
            parent = None
        reported = (self._status_files.read(os.path.join(folder, "status.json")) if folder else None) or {}
        text = reported.get("text") if run.running else None
        error = broken.get(name)
        return AgentStatus(
            name=name,
            running=run.running,
            failed=run.failed or error is not None,
            needs_update=not kept and locked != applied,
            needs_login=reported.get("needs_login") is True,
            paused=folder is not None and is_marker(os.path.join(folder, "paused")),
            parent=parent,
            deployed_sha=locked[:12] if locked else None,
            active_model=_str_or_none(reported.get("model")),
            status_text=_str_or_none(text),
            status_set_at=_str_or_none(reported.get("set_at")) if text is not None else None,
            transient=self.transients.kind(name),
            error=error,
            kept=kept,
        )

    def transients_in_flight(self) -> list[Transient]:
        """Every action in flight; a Spawning agent has no status row yet, only this."""
        return self.transients.all()

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

    def diff(self, id: int) -> dict:
        """An apply_commit proposal against the agent's applied main, as the operator reads it."""
        approval = self.approval(id)
        if approval.kind != "apply_commit" or not approval.fetched_sha:
            raise HiveError(f"approval {id} is a {approval.kind}; only an apply_commit has a diff")
        path = self.state.applied(approval.agent)
        if not (path / ".git").is_dir():
            raise NotFound(f"no applied repo for {approval.agent}")
        repo = gitrepo.open_repo(path)
        main = repo.references[gitrepo.MAIN].target
        return {"base": str(main), "head": approval.fetched_sha,
                **gitrepo.diff_commits(repo, main, pygit2.Oid(hex=approval.fetched_sha))}

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
        self.transients.busy(name)
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

        It waits its turn behind any action in flight on the same agent:
        the operator has already decided.
        """
        kind = "Spawning" if approval.kind == "spawn" else "Rebuilding"
        # A deploy journals its start durably before it changes anything.
        with self.transients.hold(approval.agent, kind, wait=True, durable=approval.kind != "apply_commit"):
            try:
                if approval.kind == "apply_commit":
                    return self._deployer.run(approval)
                if approval.kind == "spawn":
                    return self._spawn(approval, on_output or (lambda line: None))
                raise HiveError(f"approval kind {approval.kind!r} cannot be carried out by this engine")
            except Exception as e:
                if not isinstance(e, HiveError):
                    log.exception("approval %s failed unexpectedly", approval.id)
                return self._fail(approval, error_text(e))

    def _spawn(self, approval: Approval, on_output: OutputSink) -> Approval:
        name = approval.agent
        if name in self.agents():
            # Refused before anything is made, so that there is nothing to settle.
            raise Conflict(f"agent {name} already exists")
        try:
            sha = install_agent(self.state, self.meta, self.runtime, name, new_agent_files(name), on_output)
        except Exception as e:
            # Ended as recovery ends an interrupted spawn: finished forward if it
            # got past its meta commit, else nothing of it left but reusable repos.
            sha = self._settle(name, e, lambda: settle_spawn(self.state, self.meta, self.runtime, name))
            if sha is None:
                raise
        with self.transients.outcome(name) as t:
            done, events = t.resolve_spawned(approval, sha)
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
        with self.transients.outcome(approval.agent) as t:
            done, events = t.resolve_failed(approval, tag, error)
        for event in events:
            self._emit(event)
        self._emit(done)
        return done

    def deny(self, id: int, note: str | None = None) -> Approval:
        """Refuse a request. An apply_commit leaves denied/<id>, annotated with the note."""
        check_id(id)
        note = check_text(note, "note")
        with self.db.write() as t:
            approval = t.claim(id, "denied", note)
            tag = None
            if approval.kind == "apply_commit":
                tag = f"denied/{id}"
                repo = gitrepo.open_repo(self.state.applied(approval.agent))
                gitrepo.create_tag(repo, tag, pygit2.Oid(hex=approval.fetched_sha), note or "")
                crash_point("deny:tagged")
            done, events = t.resolve_denied(approval, tag, note)
        for event in events:
            self._emit(event)
        self._emit(done)
        return done

    # -- seeding --------------------------------------------------------------

    def install_agent(self, name: str, files: dict[str, bytes] | None = None,
                      on_output: OutputSink | None = None) -> str:
        """Bring an agent in without an approval: for seeding a hive (the demo, tests)."""
        check_name(name)
        with self.transients.hold(name, "Spawning"):
            return install_agent(self.state, self.meta, self.runtime, name,
                                 files or new_agent_files(name), on_output or (lambda line: None))

    # -- lifecycle: one named agent each, one action at a time ----------------

    def start(self, name: str) -> bool | None:
        """Returns whether the agent was running already, None if the runtime could not tell."""
        with self._action(name, "Starting"):
            running = self._running(name)
            self.runtime.start(name)
            return running

    def stop(self, name: str, graceful: bool = True) -> bool | None:
        """Returns whether the agent was stopped already, None if the runtime could not tell."""
        with self._action(name, "Stopping"):
            running = self._running(name)
            # Stopped or not, the runtime is told: it records that the agent is to stay down.
            self.runtime.stop(name, graceful)
            return None if running is None else not running

    def _running(self, name: str) -> bool | None:
        try:
            return self.runtime.run_state(name).running
        except HiveError:
            return None

    def restart(self, name: str) -> None:
        with self._action(name, "Restarting"):
            self.runtime.stop(name)
            self.runtime.start(name)

    def rebuild(self, name: str, on_output: OutputSink | None = None) -> str | None:
        """Build the agent's applied main again; returns the meta commit, if the lock moved."""
        with self._action(name, "Rebuilding"):
            try:
                try:
                    commit = rebuild_agent(self.state, self.meta, self.runtime, name,
                                           on_output or (lambda line: None))
                except BuildFailed:
                    raise  # the container runs what it ran before: nothing to put right
                except Exception as e:
                    log.exception("rebuild of %s failed", name)
                    # The container may run the new build: build it again, as
                    # recovery finishes an interrupted rebuild.
                    commit = self._settle(name, e, lambda: settle_rebuild(self.state, self.meta, self.runtime, name))
            except Exception as e:
                self._record("Rebuilt", name, status="failed", error=error_text(e))
                raise
            with self.db.write() as t:
                t.clear_broken(name)
            self._record("Rebuilt", name, status="rebuilt", sha=self.meta.locked_rev(name))
            return commit

    def destroy(self, name: str, purge: bool = False) -> str | None:
        """Remove the agent's container; with `purge`, its repos and state folder too.

        Returns the error of the meta flake's rerender if it failed: the
        destroy itself stands.
        """
        check_name(name)
        # Every check comes first: a refused purge leaves the container too.
        # A purge may also finish off an agent destroyed earlier without one.
        kept = purge and bool(check_purge(self.state, name))
        if name not in self.agents() and not kept:
            raise NotFound(f"no agent named {name}")
        with self.transients.hold(name, "Destroying"):
            try:
                warning = destroy_agent(self.state, self.meta, self.runtime, name, purge)
            except Exception as e:
                log.exception("destroy of %s failed", name)
                warning = self._settle(name, e, lambda: settle_destroy(self.state, self.meta, self.runtime,
                                                                       name, purge))
            if purge:
                # Before the action ends: whoever sees the agent gone finds its requests resolved.
                self._deny_purged(name)
        self._record("Destroyed", name, status="purged" if purge else "kept", error=warning)
        return warning

    def _deny_purged(self, name: str) -> None:
        """Deny the purged agent's pending requests: what they would apply to is gone.

        A spawn request is left pending: spawning the name needs nothing a purge removed.
        """
        resolved: list[object] = []
        with self.db.write() as t:
            for approval in self.db.approvals(status="pending", agent=name):
                if approval.kind == "spawn":
                    continue
                claimed = t.claim(approval.id, "denied", PURGED_NOTE)
                done, events = t.resolve_denied(claimed, None, PURGED_NOTE)
                resolved += [*events, done]
        for item in resolved:
            self._emit(item)

    def set_paused(self, name: str, paused: bool) -> AgentStatus:
        """Write or remove the agent's pause marker; idempotent both ways."""
        self._require_agent(name)
        set_marker(self.state.agent_state(name) / "paused", paused)
        return self._push_row(name)

    def log_argv(self, name: str, lines: int = 200, follow: bool = False) -> list[str]:
        """The command that prints (and with `follow`, follows) the agent's log."""
        self._require_agent(name)
        if not 0 < lines <= LOG_LINES_MAX:
            raise HiveError(f"lines must be between 1 and {LOG_LINES_MAX}, not {lines}")
        return self.runtime.log_argv(name, lines, follow)

    def logs(self, name: str, lines: int = 200) -> list[str]:
        """The agent's last `lines` log lines, as the agent wrote them (without the host's times)."""
        argv = self.log_argv(name, lines)
        path = self.runtime.log_file(name)
        if path is not None:
            return agent_log(path.parent).texts(lines)
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=LOG_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise HiveError(f"cannot read the logs of {name}: {e}") from None
        if proc.returncode != 0:
            raise HiveError(f"cannot read the logs of {name}: {proc.stderr.decode('utf-8', 'replace').strip()}")
        return proc.stdout.decode("utf-8", "replace").splitlines()

    def _agent_log(self, name: str) -> AgentLog:
        self._require_agent(name)
        path = self.runtime.log_file(name)
        if path is None:
            raise HiveError(f"reading the log by page is not available on this host: the {self.runtime.name} "
                            f"runtime keeps agents' logs in the journal (`logs` reads them)")
        return agent_log(path.parent)

    def log_page(self, name: str, start: int | None, count: int) -> LogPage:
        """`count` lines of the agent's log from line `start` (None: its last ones); see logindex.py."""
        return self._agent_log(name).page(start, count)

    def log_find(self, name: str, text: str, start: int, backward: bool = False) -> tuple[int | None, int | None]:
        """The next line holding `text` from `start`, and where to go on when this call stopped short."""
        return self._agent_log(name).find(text, start, backward)

    def log_since(self, name: str, at: str) -> int:
        """The number of the first line the host wrote at or after `at`."""
        return self._agent_log(name).since(at)

    def _settle(self, name: str, error: Exception, settle: Callable[[], object]):
        """Put right what a failed step left, with recovery's code; if that fails
        too, mark the agent broken with both reasons and raise."""
        try:
            return settle()
        except Exception as again:
            log.exception("settling %s after: %s", name, error_text(error))
            reason = f"{error_text(error)}\nputting it right failed too: {error_text(again)}"
            mark_broken(self.db, name, reason)
            raise HiveError(reason) from again

    def _action(self, name: str, kind: str):
        self._require_agent(name)
        return self.transients.hold(name, kind)

    def _record(self, kind: str, agent: str, **body) -> None:
        with self.db.write() as t:
            event = t.add_event(kind, agent, **body)
        self._emit(event)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
