"""The command log: each action taken in the console, its host, agent and
outcome, in a view of its own and in a rotated file in the data folder.

Driven by keys against real `hive-tui serve` processes over Unix sockets; the
file's rotation and bounds against the real file system."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

import platformdirs
import pytest

from hive_tui.app import HiveApp
from hive_tui.client.base import Feed
from hive_tui.client.stream import UnixClient
from hive_tui.client.connect import open_client
from hive_tui.commandlog import CLAIMED, FILE_NAME, CommandLog, Entry, read_entries
from hive_tui.config import Host
from hive_tui.host import gitrepo
from hive_tui.host.engine import Engine
from hive_tui.models import Event
from hive_tui.widgets.commandlog import CommandLogScreen
from hive_tui.widgets.fleet import FleetScreen
from hive_tui.widgets.prompt import PromptModal

from .helpers import GATED_BUILD, Gate, agent_files, until
from .scripted import HOSTS, NOW, ScriptedClient
from .serving import ServerProcess, run_async, seeded_hive, stop_agents
from .test_snapshots import SIZE as SNAP_SIZE
from .test_snapshots import settled

SIZE = (160, 48)
# Agent-written words that would split a line, drive a terminal or reorder what is read.
HOSTILE = "keep\nit\x1b]52;c;cm0gLXJmIH4=\x07 \x1b[31mred\r\n\u2028\x85\u202eevil"


def log_file() -> Path:
    return platformdirs.user_data_path("hive-tui") / FILE_NAME


def file_lines(path: Path | None = None) -> list[str]:
    return (path or log_file()).read_bytes().decode("ascii").splitlines()


def outcomes(app) -> list[tuple[str, str, str, str]]:
    """What the log holds, newest first, as (host, agent, action, outcome)."""
    return [(e.host, e.agent, e.action, e.outcome) for e in app.command_log.entries()]


def commit_proposal(root: Path, name: str, files: dict[str, bytes]) -> None:
    gitrepo.commit_files(gitrepo.open_repo(root / "proposed" / name), files, "change")


def proposed_hive(root: Path, agents: dict[str, dict[str, bytes]], proposals: list[str]) -> None:
    """A hive with `agents`, and one proposal from each of `proposals`, ids in that order."""
    seeded_hive(root, agents)
    with Engine(root, locker="builtin") as engine:
        for n, name in enumerate(proposals):
            commit_proposal(root, name, {"notes.txt": f"{n}\n".encode()})
            engine.request_apply_commit(name, "main", f"notes {n}")


def console(sock: Path, name: str = "here", **kw) -> HiveApp:
    host = Host(name, "unix", socket=str(sock), **kw)

    async def connect(h):
        return await open_client(h, redial_for=0)

    return HiveApp(connect, hosts=[host], host=host)


async def live(pilot, rows: int = 2) -> HiveApp:
    app = pilot.app
    await until(pilot, lambda: app.link == "live" and app.containers.row_count == rows, what="the console")
    return app


async def select_agent(pilot, name: str) -> None:
    table = pilot.app.containers
    table.focus()
    table.move_cursor(row=table.get_row_index(name))
    await pilot.pause()


async def select_request(pilot, id: int) -> None:
    app = pilot.app
    app.approvals.focus()
    await until(pilot, lambda: str(id) in app.approvals.rows, what=f"request {id}")
    app.approvals.move_cursor(row=app.approvals.get_row_index(str(id)))
    await pilot.pause()


def shown_rows(screen: CommandLogScreen) -> list[list[str]]:
    table = screen.table
    return [[cell.plain for cell in table.get_row_at(i)] for i in range(table.row_count)]


# -- the file ------------------------------------------------------------------


def test_a_hostile_entry_is_one_ascii_line_and_reads_back_whole(tmp_path):
    log = CommandLog(tmp_path / "log" / FILE_NAME)
    log.record("here", "ev\nil\x1b[2J", "deny #3", f"denied/3: {HOSTILE}")
    log.record("here", "beta", "stop", "done")
    log.close()
    lines = file_lines(tmp_path / "log" / FILE_NAME)
    assert len(lines) == 2
    again = read_entries(tmp_path / "log" / FILE_NAME)
    assert [(e.agent, e.outcome) for e in again] == [("ev\nil\x1b[2J", f"denied/3: {HOSTILE}"), ("beta", "done")]
    # Shown or copied, it is one line, with no control character left to act.
    line = again[0].line()
    assert len(line.splitlines()) == 1 and "\x1b" not in line and "\x07" not in line and "\u202e" not in line
    assert "ev\\nil\\x1b[2J" in line and "keep\\nit\\x1b]52;c;" in line and "\\u202eevil" in line


def test_the_file_rotates_at_its_bound_and_keeps_its_count(tmp_path):
    path = tmp_path / FILE_NAME
    log = CommandLog(path, max_bytes=600, backups=2)
    for n in range(60):
        log.record("here", f"agent{n}", "restart", "done")
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [FILE_NAME, f"{FILE_NAME}.1", f"{FILE_NAME}.2"]
    for name in files:
        assert (tmp_path / name).stat().st_size <= 600
    # The next session reads the newest back, newest first, across the rotated files.
    entries = CommandLog(path, max_bytes=600, backups=2).entries()
    assert entries[0].agent == "agent59"
    assert [e.agent for e in entries] == [f"agent{n}" for n in range(59, 59 - len(entries), -1)]
    assert len(entries) > len(file_lines(path))


def test_reading_back_is_bounded_and_skips_what_is_not_an_entry(tmp_path):
    path = tmp_path / FILE_NAME
    good = Entry("2026-01-02T03:04:05Z", "here", "beta", "stop", "done").to_json()
    # A file grown by other means: only its end is read.
    with path.open("w") as f:
        f.write(("x" * 1000 + "\n") * 5000)
        f.write("not json\n[1, 2]\n{\"at\": 3}\n")
        for n in range(10):
            f.write(good.replace("beta", f"b{n}") + "\n")
    entries = CommandLog(path, max_bytes=4096, keep=4).entries()
    assert [e.agent for e in entries] == ["b9", "b8", "b7", "b6"]


def test_bounds_of_zero_are_refused_since_the_file_would_never_rotate(tmp_path):
    for bad in ({"max_bytes": 0}, {"backups": 0}, {"keep": 0}):
        with pytest.raises(ValueError):
            CommandLog(tmp_path / FILE_NAME, **bad)


def test_a_file_that_cannot_be_written_keeps_the_entry_in_memory(tmp_path):
    (tmp_path / "blocked").write_text("a file where the folder should be")
    log = CommandLog(tmp_path / "blocked" / FILE_NAME)
    log.record("here", "beta", "stop", "done")
    assert log.error is not None
    assert [e.agent for e in log.entries()] == ["beta"]


def test_the_default_file_is_in_the_platform_data_folder(own_data_folder):
    log = CommandLog()
    log.record("here", "beta", "stop", "done")
    log.close()
    assert log.path == own_data_folder / "hive-tui" / FILE_NAME
    assert len(file_lines(log.path)) == 1


# -- the single-host view --------------------------------------------------------


@pytest.fixture
def proposals(tmp_path):
    """A served hive: alpha (gated build) and beta; request 1 from beta, request 2 from alpha."""
    root = tmp_path / "hive"
    proposed_hive(root, {"alpha": agent_files(build=GATED_BUILD), "beta": agent_files()}, ["beta", "alpha"])
    server = ServerProcess(root, tmp_path / "host.sock").start()
    try:
        yield root, server
    finally:
        server.kill()
        stop_agents(root)


def test_approve_deny_and_a_failure_are_logged_viewed_copied_and_kept(proposals):
    root, server = proposals

    async def scenario():
        app = console(server.sock)
        async with app.run_test(size=SIZE) as pilot:
            await live(pilot)
            await select_request(pilot, 1)
            await pilot.press("a")
            # The deploy ends later: its tag is a second entry, once the hive says it is done.
            await until(pilot, lambda: ("here", "beta", "approve #1", "deployed/1") in outcomes(app),
                        what="deployed/1 in the log")
            assert outcomes(app)[:2] == [("here", "beta", "approve #1", "deployed/1"),
                                         ("here", "beta", "approve #1", CLAIMED)]
            # Deny with an operator's note that carries what an agent might have planted in it.
            await select_request(pilot, 2)
            await pilot.press("n")
            assert isinstance(app.screen, PromptModal)
            app.screen.query_one("Input").value = HOSTILE
            await pilot.press("enter")
            await until(pilot, lambda: any(a == "deny #2" for _, _, a, _ in outcomes(app)), what="the denial")
            deny = outcomes(app)[0]
            assert deny[:3] == ("here", "alpha", "deny #2") and deny[3].startswith("denied/2: keep")
            # A rebuild whose build fails: the hive's error.
            gate = Gate(root / "agents" / "alpha")
            await select_agent(pilot, "alpha")
            await pilot.press("b")
            await until(pilot, lambda: "rebuilding" in str(app.containers.get_cell("alpha", "agent")),
                        what="the rebuild to start")
            await asyncio.to_thread(gate.open, "no")
            await until(pilot, lambda: outcomes(app)[0][2] == "rebuild", what="the rebuild's outcome")
            assert outcomes(app)[0][:3] == ("here", "alpha", "rebuild")
            assert outcomes(app)[0][3].startswith("error: ")
            # A cancelled confirmation is no action.
            await pilot.press("d", "escape")
            await pilot.pause()
            assert outcomes(app)[0][2] == "rebuild"

            await pilot.press("L")
            await until(pilot, lambda: isinstance(app.screen, CommandLogScreen), what="the command log")
            rows = shown_rows(app.screen)
            assert [r[3] for r in rows] == ["rebuild", "deny #2", "approve #1", "approve #1"]
            assert rows[0][1:3] == ["here", "alpha"] and rows[2][4] == "deployed/1"
            # The note is one plain line: its escapes shown, not acted on.
            assert len(rows[1][4].splitlines()) == 1 and "\x1b" not in rows[1][4]
            assert rows[1][4].startswith("denied/2: keep\\nit\\x1b]52;c;")
            await pilot.press("c")
            assert app.clipboard == app.command_log.entries()[0].line()
            assert app.clipboard.split("  ")[1:4] == ["here", "alpha", "rebuild"]
            await until(pilot, lambda: any("copied: " in str(n.message) for n in app._notifications),
                        what="the copy to be told")
            await pilot.press("down", "c")
            assert "deny #2" in app.clipboard
            await pilot.press("C")
            assert app.clipboard.splitlines() == [e.line() for e in app.command_log.entries()]
            await pilot.press("escape")
            assert not isinstance(app.screen, CommandLogScreen)

        # The file has one line an entry, and the next session shows them.
        lines = file_lines()
        assert len(lines) == 4 and all(line.isascii() for line in lines)
        again = console(server.sock)
        async with again.run_test(size=SIZE) as pilot:
            await live(pilot)
            await pilot.press("L")
            await until(pilot, lambda: isinstance(again.screen, CommandLogScreen), what="the command log")
            assert [r[3] for r in shown_rows(again.screen)] == ["rebuild", "deny #2", "approve #1", "approve #1"]

    run_async(scenario(), timeout=240)


def test_a_read_only_refusal_and_a_bulk_action_are_logged_per_agent(proposals):
    root, server = proposals

    async def scenario():
        app = console(server.sock, read_only=True)
        async with app.run_test(size=SIZE) as pilot:
            await live(pilot)
            await select_agent(pilot, "beta")
            await pilot.press("x")
            await until(pilot, lambda: outcomes(app), what="the refusal to be logged")
            host, agent, action, outcome = outcomes(app)[0]
            assert (host, agent, action) == ("here", "beta", "stop")
            assert outcome.startswith("refused: ") and "READ-ONLY" in outcome
            await select_request(pilot, 1)
            await pilot.press("a")
            await until(pilot, lambda: outcomes(app)[0][2] == "approve #1", what="the approve refusal")
            assert outcomes(app)[0][3].startswith("refused: ")
        assert not (root / "containers" / "beta" / "stopped").exists()

        app = console(server.sock)
        async with app.run_test(size=SIZE) as pilot:
            await live(pilot)
            await select_agent(pilot, "alpha")
            await pilot.press("space", "space", "x")
            await until(pilot, lambda: len(outcomes(app)) == 4, what="one entry per marked agent")
            bulk = sorted(outcomes(app)[:2])
            assert bulk == [("here", "alpha", "stop (bulk of 2)", "done"), ("here", "beta", "stop (bulk of 2)", "done")]
            # Destroy refused while agents are marked (the failed ones stay marked; none failed here).
            await select_agent(pilot, "beta")
            await pilot.press("space", "d")
            await until(pilot, lambda: outcomes(app)[0][2] == "destroy", what="the destroy refusal")
            assert outcomes(app)[0][3] == "refused: destroy acts on one agent at a time: 1 marked " \
                                          "(Escape clears the marks)"
        assert (root / "containers" / "beta" / "stopped").exists()
        assert (root / "containers" / "alpha" / "stopped").exists()

    run_async(scenario(), timeout=240)


# -- the all-hosts view -------------------------------------------------------------


@pytest.fixture
def two_hosts(tmp_path):
    roots = {"a": tmp_path / "hive-a", "b": tmp_path / "hive-b"}
    proposed_hive(roots["a"], {"alpha": agent_files(), "beta": agent_files()}, ["beta"])
    seeded_hive(roots["b"], {"gamma": agent_files()})
    servers = {name: ServerProcess(root, tmp_path / f"{name}.sock").start() for name, root in roots.items()}
    hosts = [Host("a", "unix", socket=str(servers["a"].sock)),
             Host("b", "unix", socket=str(servers["b"].sock), read_only=True)]
    try:
        yield roots, hosts
    finally:
        for server in servers.values():
            server.kill()
        for root in roots.values():
            stop_agents(root)


def test_the_all_hosts_view_logs_bulk_agents_refusals_and_a_deploy(two_hosts):
    roots, hosts = two_hosts

    async def opener(host):
        return await open_client(host, redial_for=0)

    async def scenario():
        app = HiveApp(opener, hosts=hosts, open_host=opener, all_hosts=True)
        async with app.run_test(size=(180, 50)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, FleetScreen), what="the all-hosts view")
            screen = app.screen
            await until(pilot, lambda: len(screen.agents()) == 3 and screen.requests.row_count == 1,
                        what="every host's rows and the request")
            screen.go_to("a", "alpha")
            await pilot.press("space", "space", "r")
            await until(pilot, lambda: len(outcomes(app)) == 2, what="one entry per marked agent")
            assert sorted(outcomes(app)) == [("a", "alpha", "restart (bulk of 2)", "done"),
                                             ("a", "beta", "restart (bulk of 2)", "done")]
            await until(pilot, lambda: not screen.table.marks, what="the marks to clear")
            screen.go_to("b", "gamma")
            await pilot.press("x")
            await until(pilot, lambda: len(outcomes(app)) == 3, what="the refusal")
            assert outcomes(app)[0][:3] == ("b", "gamma", "stop")
            assert outcomes(app)[0][3].startswith("refused: b is READ-ONLY")
            screen.requests.focus()
            await pilot.press("a")
            await until(pilot, lambda: ("a", "beta", "approve #1", "deployed/1") in outcomes(app),
                        what="deployed/1 in the log")
            await pilot.press("L")
            await until(pilot, lambda: isinstance(app.screen, CommandLogScreen), what="the command log")
            rows = shown_rows(app.screen)
            assert [r[1:5] for r in rows[:3]] == [["a", "beta", "approve #1", "deployed/1"],
                                                  ["a", "beta", "approve #1", CLAIMED],
                                                  ["b", "gamma", "stop", rows[2][4]]]
        assert len(file_lines()) == 5

    run_async(scenario(), timeout=240)


# -- how it looks ----------------------------------------------------------------------


def snapshot_log(path: Path) -> CommandLog:
    times = iter(datetime(2026, 3, 1, 9, 30, s, tzinfo=timezone.utc) for s in range(0, 60, 7))
    log = CommandLog(path, clock=lambda: next(times))
    log.record("prod", "atlas", "approve #12", CLAIMED)
    log.record("prod", "atlas", "approve #12", "deployed/12")
    log.record("prod", "kestrel", "deny #14", f"denied/14: {HOSTILE}")
    log.record("prod", "atlas", "stop (bulk of 2)", "done")
    log.record("prod", "kestrel", "stop (bulk of 2)", "error: no answer in time")
    log.record("lab", "heron", "rebuild", "refused: lab is READ-ONLY: rebuild is not sent")
    return log


def test_the_command_log_view(snap_compare, tmp_path):
    async def connect(host):
        return ScriptedClient()

    app = HiveApp(connect, hosts=HOSTS, now=lambda: NOW, pulse=False,
                  command_log=snapshot_log(tmp_path / FILE_NAME))
    assert snap_compare(app, terminal_size=SNAP_SIZE, run_before=settled, press=["L"])


def test_a_deploy_that_ends_before_its_claim_is_answered_is_logged_after_it(tmp_path):
    """The hive may push an approval's end before the approve call's answer arrives: the claim comes first."""
    log = CommandLog(tmp_path / FILE_NAME)
    log.await_outcome("here", 7, "beta", "approve #7")
    assert log.resolved("here", 7, "approved", "deployed/7", None) is None
    log.claimed("here", 7, CLAIMED)
    assert [e.outcome for e in log.entries()] == ["deployed/7", CLAIMED]
    # An approval this console did not make, and one whose claim failed, add nothing more.
    assert log.resolved("here", 8, "failed", "failed/8", "build failed") is None
    log.await_outcome("here", 9, "beta", "approve #9")
    log.claimed("here", 9, "error: already resolved")
    assert log.resolved("here", 9, "denied", "denied/9", None) is None
    assert [e.outcome for e in log.entries()] == ["error: already resolved", "deployed/7", CLAIMED]


class Deaf(UnixClient):
    """A real client whose feed loses every ApprovalResolved event, as a link down at that moment would."""

    def feed(self) -> Feed:
        feed = super().feed()
        put = feed.put
        feed.put = lambda item: None if isinstance(item, Event) and item.kind == "ApprovalResolved" else put(item)
        return feed


def test_a_deploy_whose_end_was_missed_is_logged_when_the_hive_is_read_again(proposals):
    root, server = proposals

    async def scenario():
        async def connect(host):
            return Deaf(str(server.sock))

        app = HiveApp(connect)
        async with app.run_test(size=SIZE) as pilot:
            await live(pilot)
            await select_request(pilot, 1)
            await pilot.press("a")
            await until(pilot, lambda: outcomes(app) and outcomes(app)[0][3] == CLAIMED, what="the claim")
            await until(pilot, lambda: tag_of(root, "beta", "deployed/1"), what="the deploy to end")
            # The end was never pushed here; reading the hive again (showing resolved requests) finds it.
            await pilot.press("v")
            await until(pilot, lambda: outcomes(app)[0] == ("demo", "beta", "approve #1", "deployed/1"),
                        what="deployed/1 in the log")
            assert len(outcomes(app)) == 2

    run_async(scenario(), timeout=240)


def tag_of(root: Path, agent: str, name: str) -> bool:
    return gitrepo.open_repo(root / "applied" / agent).references.get(f"refs/tags/{name}") is not None
