"""The real `hive-tui` executable, as scripts and operators run it."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import re
import subprocess
import sys
import threading
from importlib.resources import files
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hive_tui.cli import build_parser
from hive_tui.host.demo_hive import AGENTS, PROPOSALS
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
    controller, terminal = os.openpty()
    try:
        proc = subprocess.run([str(EXE), "--state", str(tmp_path / "hive"), "--locker", "builtin"],
                              stdin=terminal, stdout=terminal, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(controller)
        os.close(terminal)
    assert proc.returncode == 1
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


# -- output to a pipe that closes early ----------------------------------------


def _into_closed_pipe(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Run hive-tui with stdout a pipe whose reader is already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([str(EXE), "--state", str(root), "--locker", "builtin", *args],
                              stdin=subprocess.DEVNULL, stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=60)
    finally:
        os.close(write_end)


def _into_head(root: Path, *args: str) -> tuple[subprocess.CompletedProcess, str]:
    """`hive-tui ARGS | head -n 3`, as a shell runs it: returns hive-tui's outcome and what head printed."""
    read_end, write_end = os.pipe()
    head = subprocess.Popen(["head", "-n", "3"], stdin=read_end, stdout=subprocess.PIPE, text=True)
    os.close(read_end)
    try:
        proc = subprocess.run([str(EXE), "--state", str(root), "--locker", "builtin", *args],
                              stdin=subprocess.DEVNULL, stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=60)
    finally:
        os.close(write_end)
        shown, _ = head.communicate(timeout=60)
    return proc, shown


SIGPIPE_EXIT = 128 + 13


def test_a_reader_that_closed_early_ends_the_verb_quietly(demo):
    proc = _into_closed_pipe(demo, "--json", "status")
    assert (proc.returncode, proc.stderr) == (SIGPIPE_EXIT, "")
    # More than a pipe holds, so head is gone while the verb still writes.
    with open(demo / "containers" / "atlas" / "log", "a") as log:
        log.writelines(f"line {i:05d} of a long log that overflows the pipe\n" for i in range(20_000))
    for args in (("logs", "atlas", "-n", "10000"), ("logs", "atlas", "-n", "10000", "--follow"),
                 ("--json", "logs", "atlas", "-n", "10000", "--follow")):
        proc, shown = _into_head(demo, *args)
        assert (proc.returncode, proc.stderr) == (SIGPIPE_EXIT, ""), args
        assert len(shown.splitlines()) == 3, args


# -- --json: one object from every verb ----------------------------------------


def test_every_verb_prints_a_json_object(demo):
    assert run_json(demo, "stop", "atlas") == {"verb": "stop", "name": "atlas", "already": False}
    assert run_json(demo, "start", "atlas") == {"verb": "start", "name": "atlas", "already": False}
    assert run_json(demo, "restart", "atlas") == {"verb": "restart", "name": "atlas"}
    paused = run_json(demo, "pause", "atlas")
    assert (paused["verb"], paused["name"], paused["agent_status"]["paused"]) == ("pause", "atlas", True)
    resumed = run_json(demo, "resume", "atlas")
    assert (resumed["verb"], resumed["name"], resumed["agent_status"]["paused"]) == ("resume", "atlas", False)
    assert run_json(demo, "rebuild", "atlas") == {"verb": "rebuild", "name": "atlas", "meta_commit": None}
    wait_for(lambda: any("atlas up" in line for line in run_json(demo, "logs", "atlas")["lines"]), what="atlas's log")
    logs = run_json(demo, "logs", "atlas", "-n", "1")
    assert (logs["name"], len(logs["lines"])) == ("atlas", 1)
    assert run_json(demo, "destroy", "cinder") == {"verb": "destroy", "name": "cinder", "purge": False,
                                                    "warning": None}
    assert run_json(demo, "destroy", "cinder", "--purge", "--yes") == {
        "verb": "destroy", "name": "cinder", "purge": True, "warning": None}


def test_a_followed_log_prints_one_json_object_per_line(demo):
    proc = subprocess.Popen([str(EXE), "--state", str(demo), "--locker", "builtin", "--json",
                             "logs", "atlas", "--follow"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    printed: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        with proc.stdout:
            for line in proc.stdout:
                printed.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        seen = []
        while not any("atlas up" in line["line"] for line in seen):
            seen.append(json.loads(printed.get(timeout=30)))
        with open(demo / "containers" / "atlas" / "log", "a") as log:
            log.write("later \x1b[31mred\n")
        while seen[-1] != {"line": "later \x1b[31mred"}:
            seen.append(json.loads(printed.get(timeout=30)))
        assert all(set(line) == {"line"} for line in seen)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(timeout=30)
        proc.stderr.close()


def test_demo_prints_a_json_object(hive_root):
    try:
        assert run_json(hive_root, "demo") == {"state": str(hive_root)}
    finally:
        with Engine(hive_root, locker="builtin", runtime_options={"stop_grace": 2.0}) as engine:
            stop_all(engine)


def test_meta_log_times_are_rfc3339(demo):
    commits = run_json(demo, "meta-log")
    assert len(commits) == 4
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", c["at"]) for c in commits), commits


# -- start and stop say when there was nothing to do ---------------------------


def test_stop_and_start_say_when_the_agent_already_was(demo):
    assert run(demo, "stop", "atlas").stdout == "stopped atlas\n"
    assert run(demo, "stop", "atlas").stdout == "atlas was already stopped\n"
    assert run_json(demo, "stop", "atlas")["already"] is True
    assert run(demo, "start", "atlas").stdout == "started atlas\n"
    assert run(demo, "start", "atlas").stdout == "atlas was already running\n"
    assert run_json(demo, "start", "atlas")["already"] is True


def test_a_daemon_that_does_not_say_gets_the_plain_message(tmp_path):
    """hyperhive's daemon answers start and stop with a bare ack: "don't know" whether they changed anything."""
    sock = tmp_path / "hyperhive.sock"
    asked: list[dict] = []

    async def answer(reader, writer):
        while line := await reader.readline():
            asked.append(json.loads(line))
            writer.write(b'{"version": 1, "ok": true}\n')
            await writer.drain()
        writer.close()

    async def scenario():
        server = await asyncio.start_unix_server(answer, path=str(sock))
        async with server:
            outcomes = []
            for argv in (["stop", "atlas"], ["start", "atlas"], ["--json", "stop", "atlas"]):
                proc = await asyncio.create_subprocess_exec(
                    str(EXE), "--host", f"unix:{sock}", *argv, stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                out, err = await asyncio.wait_for(proc.communicate(), 60)
                outcomes.append((proc.returncode, out.decode(), err.decode()))
            return outcomes

    outcomes = asyncio.run(scenario())
    assert outcomes[0] == (0, "stopped atlas\n", "")
    assert outcomes[1] == (0, "started atlas\n", "")
    assert json.loads(outcomes[2][1]) == {"verb": "stop", "name": "atlas", "already": None}
    # Each client first asks what the daemon offers (this one answers a bare ack to that too).
    assert [a["cmd"] for a in asked if a["cmd"] != "capabilities"] == ["stop", "start", "stop"]


# -- the demo agents write what they mean --------------------------------------


def test_the_demo_agents_status_stays_json_after_each_approval(demo):
    run(demo, "approve", "3")
    status = demo / "agents" / "cinder" / "status.json"
    wait_for(lambda: status.exists() and b"builds" in status.read_bytes(), what="cinder's new status")
    assert json.loads(status.read_bytes())["text"] == "[watching] builds \\o/"
    [cinder] = [r for r in run_json(demo, "status") if r["name"] == "cinder"]
    assert cinder["status_text"] == "[watching] builds \\o/"


def _status_script_writes(tmp_path: Path, status: bytes, model: bytes = b"sonnet\n") -> bytes:
    """Run the demo agents' status script on a config holding `status` and return the status.json it wrote."""
    config = tmp_path / "config"
    state = tmp_path / "state"
    config.mkdir(exist_ok=True)
    state.mkdir(exist_ok=True)
    (config / "status.txt").write_bytes(status)
    (config / "model.txt").write_bytes(model)
    script = files("hive_tui.host") / "demo_agent" / "status.sh"
    subprocess.run(["sh", str(script)], cwd=config, check=True, timeout=30, stdin=subprocess.DEVNULL,
                   env={**os.environ, "HIVE_AGENT": "atlas", "HIVE_AGENT_STATE": str(state)})
    return (state / "status.json").read_bytes()


@pytest.mark.parametrize("status", [s for _, (s, _) in AGENTS.items()]
                         + [c["status.txt"].decode().strip() for _, c, _ in PROPOSALS if "status.txt" in c])
def test_every_demo_status_is_written_as_json(tmp_path, status):
    written = json.loads(_status_script_writes(tmp_path, f"{status}\n".encode()))
    assert (written["text"], written["model"]) == (status, "sonnet")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=40),
       model=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), max_size=10))
def test_any_status_line_is_written_as_valid_json(tmp_path, line, model):
    written = json.loads(_status_script_writes(tmp_path, line.encode() + b"\n", model.encode() + b"\n"))
    # Control characters are dropped: JSON cannot hold them raw, and a status line has no use for them.
    assert written["text"] == "".join(c for c in line if c >= " ")
    assert written["model"] == "".join(c for c in model if c >= " ")


# -- the console needs a terminal ----------------------------------------------


@pytest.mark.parametrize("stdin_tty, stdout_tty", [(False, False), (True, False), (False, True)])
def test_the_console_refuses_to_start_without_a_terminal(demo, tmp_path, stdin_tty, stdout_tty):
    controller, terminal = os.openpty()
    out_file = tmp_path / "out"
    try:
        with open(out_file, "w") as out:
            proc = subprocess.run(
                [str(EXE), "--state", str(demo), "--locker", "builtin"],
                stdin=terminal if stdin_tty else subprocess.DEVNULL, stdout=terminal if stdout_tty else out,
                stderr=subprocess.PIPE, text=True, timeout=60,
            )
    finally:
        os.close(controller)
        os.close(terminal)
    assert proc.returncode == 1
    assert proc.stderr == "hive-tui: not a terminal; give a verb (hive-tui --help lists them)\n"
    assert out_file.read_bytes() == b""


# -- the README's verb table is the parser's -----------------------------------


def _readme_cli_rows() -> dict[str, str]:
    text = (Path(__file__).parent.parent / "README.md").read_text()
    section = text.split("\n## The CLI\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        m = re.match(r"\| `([a-z-]+)[ `]", line)
        if m:
            assert m.group(1) not in rows, f"{m.group(1)} has two rows"
            rows[m.group(1)] = line
    return rows


def test_the_readme_lists_every_verb_with_its_options():
    parser = build_parser()
    [verbs] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    rows = _readme_cli_rows()
    assert sorted(rows) == sorted(verbs.choices)
    common = {"--json", "--state", "--host", "--config", "--runtime", "--locker", "--nixpkgs",
              "--container-config-dir", "--read-only", "--all-hosts", "--timeout", "-h", "--help"}
    for name, sub in verbs.choices.items():
        for action in sub._actions:
            own = [o for o in action.option_strings if o.startswith("--") and o not in common]
            if own:
                assert any(o in rows[name] for o in own), (name, own)
            elif not action.option_strings and action.metavar:
                assert action.metavar in rows[name], (name, action.metavar)
    section = (Path(__file__).parent.parent / "README.md").read_text().split("\n## The CLI\n", 1)[1]
    for option in common - {"-h", "--help"}:
        assert option in section.split("\n## ", 1)[0], option
