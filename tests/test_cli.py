"""The real `hive-tui` executable, as scripts and operators run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hive_tui.host.engine import Engine
from hive_tui.models import AgentStatus, Approval

from .helpers import (
    engine_holder,
    manager_commit,
    stop_all,
    tag_message,
    tree_snapshot,
    wait_for,
)

EXE = Path(sys.executable).with_name("hive-tui")
HOST_SOCK_ROW = {
    "name", "running", "failed", "needs_update", "needs_login", "paused", "parent", "deployed_sha",
    "active_model", "status_text", "status_set_at", "url", "pending_reminders",
}
HOST_SOCK_APPROVAL = {
    "id", "agent", "kind", "commit_ref", "fetched_sha", "requested_at", "status", "resolved_at", "note", "description",
}


def run(root: Path, *args: str, check: int | None = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(EXE), "--state", str(root), "--locker", "builtin", *args],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    if check is not None:
        assert proc.returncode == check, (proc.stdout, proc.stderr)
    return proc


def run_json(root: Path, *args: str, check: int = 0):
    return json.loads(run(root, "--json", *args, check=check).stdout)


@pytest.fixture
def demo(hive_root):
    run(hive_root, "demo")
    # The demo agents report once they are up; let them settle so the hive is still.
    for name in ("atlas", "bramble", "cinder"):
        wait_for(lambda: (hive_root / "agents" / name / "status.json").exists()
                 and (hive_root / "containers" / name / "log").stat().st_size > 0, what=f"{name} to report")
    yield hive_root
    with Engine(hive_root, locker="builtin", runtime_options={"stop_grace": 2.0}) as engine:
        stop_all(engine)


def test_status_and_pending_speak_host_sock_field_names(demo):
    rows = run_json(demo, "status")
    assert [r["name"] for r in rows] == ["atlas", "bramble", "cinder"]
    assert all(set(r) >= HOST_SOCK_ROW for r in rows)
    assert all(r["running"] and len(r["deployed_sha"]) == 12 for r in rows)
    pending = run_json(demo, "pending")
    assert all(set(a) >= HOST_SOCK_APPROVAL for a in pending)
    assert [(a["id"], a["agent"], a["kind"]) for a in pending] == [
        (1, "atlas", "apply_commit"), (2, "bramble", "apply_commit"), (3, "cinder", "apply_commit"),
        (4, "dune", "spawn"),
    ]
    human = run(demo, "status").stdout
    assert human.splitlines()[0].split() == ["NAME", "STATE", "DEPLOYED", "FLAGS", "MODEL", "STATUS"]


def test_approve_deploys_and_reports_progress(demo):
    proc = run(demo, "--json", "approve", "1")
    done = Approval.from_wire(json.loads(proc.stdout))
    assert (done.status, done.terminal_tag) == ("approved", "deployed/1")
    for step in ("captured", "tagging", "fast-forward", "meta-prepare", "rebuild", "finalize", "deployed"):
        assert f"[1 atlas] {step}" in proc.stderr
    assert "  | config ok" in proc.stderr
    [atlas] = [AgentStatus.from_wire(r) for r in run_json(demo, "status") if r["name"] == "atlas"]
    assert atlas.deployed_sha == done.fetched_sha[:12] and not atlas.needs_update


def test_failed_deploy_exits_non_zero_with_the_error(demo):
    proc = run(demo, "approve", "2", check=1)
    assert "approval 2 for bramble: failed (failed/2)" in proc.stdout
    assert "model.txt is empty" in proc.stdout
    history = run_json(demo, "history", "bramble")
    assert [t["state"] for t in history] == ["proposal", "approved", "building", "failed"]
    assert "model.txt is empty" in history[-1]["message"]
    assert [c["message"].split()[0] for c in run_json(demo, "meta-log")] == ["spawn"] * 3 + ["init"]


def test_deny_with_note_reaches_tag_and_event(demo):
    note = "keep it \x1b]52;c;cHduZWQ=\x07 [b]as is[/b]"
    done = run_json(demo, "deny", "3", "--note", note)
    assert (done["status"], done["terminal_tag"], done["note"]) == ("denied", "denied/3", note)
    with Engine(demo, locker="builtin") as engine:
        assert tag_message(engine, "cinder", "denied/3") == note
    [event] = run_json(demo, "events")
    assert (event["kind"], event["tag"], event["note"]) == ("ApprovalResolved", "denied/3", note)
    # Shown to a person, the escape sequence is displayed, not sent to the terminal.
    human = run(demo, "history", "cinder").stdout
    assert "\x1b" not in human and "\x07" not in human
    assert "keep it \\x1b]52;c;cHduZWQ=\\x07 [b]as is[/b]" in human
    spawn = run_json(demo, "deny", "4")
    assert (spawn["status"], spawn["terminal_tag"]) == ("denied", None)


def test_propose_prints_the_new_approval_with_its_id(demo):
    with Engine(demo, locker="builtin") as engine:
        sha = manager_commit(engine, "atlas", {"extra.txt": b"more\n"})
    a = run_json(demo, "propose", "atlas", "main", "--description", "more config")
    assert (a["id"], a["agent"], a["kind"], a["fetched_sha"], a["commit_ref"]) == (5, "atlas", "apply_commit", sha, "main")
    spawn = run_json(demo, "request-spawn", "echo", "--description", "one more")
    assert (spawn["id"], spawn["kind"], spawn["agent"]) == (6, "spawn", "echo")


def test_errors_go_to_stderr_without_a_traceback(demo):
    for args, message in [
        (("approve", "99"), "no approval with id 99"),
        (("propose", "ghost", "main"), "no agent named ghost"),
        (("propose", "atlas", "nope"), "does not name a commit"),
        (("history", "ghost"), "no applied repo for ghost"),
    ]:
        proc = run(demo, *args, check=1)
        assert proc.stdout == "" and message in proc.stderr and proc.stderr.startswith("hive-tui: ")
    run(demo, "approve", "1")
    proc = run(demo, "approve", "1", check=1)
    assert "approval 1 is already approved (deployed/1)" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (("propose", "..", "main"), "invalid agent name '..'"),
    (("propose", "../x", "main"), "invalid agent name '../x'"),
    (("propose", "/etc", "main"), "invalid agent name '/etc'"),
    (("history", "a/b"), "invalid agent name 'a/b'"),
    (("request-spawn", "agent1\n"), "invalid agent name 'agent1\\n'"),
    (("request-spawn", ""), "agent name is empty"),
    (("request-spawn", "x" * 33), "the limit is 32"),
    (("request-spawn", "--", "-rf"), "invalid agent name '-rf'"),
    (("approve", "1; rm -rf /"), "approval id must be a positive integer"),
    (("deny", "0"), "approval id must be a positive integer"),
])
def test_bad_arguments_are_refused_before_anything_is_created(tmp_path, args, message):
    root = tmp_path / "never"
    proc = run(root, *args, check=2)
    assert message in proc.stderr
    assert not root.exists()


def test_bad_names_leave_an_existing_hive_unchanged(demo):
    before = tree_snapshot(demo)
    run(demo, "propose", "../atlas", "main", check=2)
    run(demo, "history", "..", check=2)
    assert tree_snapshot(demo) == before


def test_a_second_engine_is_refused_naming_the_holder(hive_root):
    holder = engine_holder(hive_root)
    try:
        proc = run(hive_root, "status", check=1)
        assert f"owned by another engine (pid {holder.pid} on {os.uname().nodename}" in proc.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    assert run(hive_root, "status").stdout.strip() == "no agents"


def test_the_console_refuses_a_state_root_that_holds_no_hive(tmp_path):
    proc = run(tmp_path / "hive", check=1)
    assert f"no hive at {tmp_path / 'hive'}" in proc.stderr
    assert not (tmp_path / "hive").exists()


def test_verbs_refuse_a_state_root_that_holds_no_hive(tmp_path):
    root = tmp_path / "typo"
    proc = run(root, "status", check=1)
    assert f"no hive at {root}; `hive-tui --state {root} demo` seeds one" in proc.stderr
    assert not root.exists()


def test_the_tour_walks_a_throwaway_hive_and_cleans_up(tmp_path):
    proc = subprocess.run([str(EXE), "--locker", "builtin", "tour"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    for outcome in ("approval 1 for atlas: deployed (deployed/1)", "approval 2 for bramble: failed (failed/2)",
                    "approval 3 for cinder: denied (denied/3)", "deploy atlas deployed/1"):
        assert outcome in proc.stdout
    assert "[1 atlas] finalize: deployed/1" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_lifecycle_verbs(demo):
    def row(name: str) -> dict:
        return {r["name"]: r for r in run_json(demo, "status")}[name]

    assert run(demo, "stop", "atlas").stdout == "stopped atlas\n"
    assert (row("atlas")["running"], row("atlas")["failed"]) == (False, False)
    run(demo, "start", "atlas")
    run(demo, "restart", "atlas")
    assert row("atlas")["running"]
    run(demo, "pause", "atlas")
    assert row("atlas")["paused"] and (demo / "agents" / "atlas" / "paused").exists()
    run(demo, "resume", "atlas")
    assert not row("atlas")["paused"]
    assert run(demo, "rebuild", "atlas").stdout == "rebuilt atlas\n"
    wait_for(lambda: "atlas" in run(demo, "logs", "atlas", "-n", "3").stdout, what="atlas's log")
    run(demo, "stop", "bramble", "--force")
    assert not row("bramble")["running"]
    assert run(demo, "destroy", "cinder").stdout == "destroyed cinder\n"
    assert {r["name"]: r["kept"] for r in run_json(demo, "status")} == {"atlas": False, "bramble": False, "cinder": True}
    assert (demo / "applied" / "cinder").is_dir() and (demo / "agents" / "cinder").is_dir()
    assert "no agent named cinder" in run(demo, "start", "cinder", check=1).stderr


def test_purge_refuses_without_a_terminal_to_ask_on(demo):
    before = tree_snapshot(demo / "applied")
    proc = run(demo, "destroy", "cinder", "--purge", check=1)
    assert "refusing to purge cinder without --yes: stdin is not a terminal" in proc.stderr
    assert tree_snapshot(demo / "applied") == before
    assert "cinder" in [r["name"] for r in run_json(demo, "status")]
    assert run(demo, "destroy", "cinder", "--purge", "--yes").stdout == "purged cinder\n"
    assert not (demo / "applied" / "cinder").exists() and not (demo / "agents" / "cinder").exists()


def _on_a_terminal(root: Path, answer: str, *args: str) -> tuple[int, str]:
    """Run hive-tui with a pseudo-terminal as stdin, type `answer`, return (code, stderr)."""
    controller, terminal = os.openpty()
    try:
        proc = subprocess.Popen(
            [str(EXE), "--state", str(root), "--locker", "builtin", *args],
            stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        os.write(controller, answer.encode() + b"\n")
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(controller)
        os.close(terminal)
    return proc.returncode, err


def test_purge_asks_for_the_agents_name_on_a_terminal(demo):
    code, err = _on_a_terminal(demo, "atlas", "destroy", "cinder", "--purge")
    assert code == 1 and "There is no undo" in err and "not purged: the answer was not 'cinder'" in err
    assert (demo / "applied" / "cinder").is_dir()
    code, err = _on_a_terminal(demo, "cinder", "destroy", "cinder", "--purge")
    assert code == 0, err
    assert not (demo / "applied" / "cinder").exists()
