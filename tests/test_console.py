"""The console driven by keys through Textual's Pilot, on the embedded engine
and through a real Unix socket; each test checks what the hive did."""

from __future__ import annotations

import asyncio
import json
import time

import pygit2
import pytest

from hive_tui.host import gitrepo
from hive_tui.app import HiveApp
from hive_tui.client.embedded import EmbeddedClient
from hive_tui.client.stream import UnixClient
from hive_tui.host.engine import Engine
from hive_tui.widgets.confirm import ConfirmModal
from hive_tui.widgets.diffview import DiffView
from hive_tui.widgets.help import HelpScreen
from hive_tui.widgets.history import HistoryScreen
from hive_tui.widgets.prompt import PromptModal
from hive_tui.widgets.purge import PurgeModal

from .helpers import GATED_BUILD, Gate, agent_files
from .serving import ServerProcess, seeded_hive, stop_agents

SIZE = (160, 48)


def commit_proposal(root, name: str, files: dict[str, bytes]) -> None:
    gitrepo.commit_files(gitrepo.open_repo(root / "proposed" / name), files, "change")


def tag(root, name: str, tag_name: str) -> pygit2.Tag | None:
    repo = gitrepo.open_repo(root / "applied" / name)
    ref = repo.references.get(f"refs/tags/{tag_name}")
    return repo[ref.target] if ref is not None else None


@pytest.fixture(params=["embedded", "unix"])
def hive(request, tmp_path):
    """A hive with alpha (gated build), beta and two proposals, and how the console reaches it."""
    root = tmp_path / "hive"
    seeded_hive(root, {"alpha": agent_files(build=GATED_BUILD), "beta": agent_files()})
    with Engine(root, locker="builtin") as engine:
        commit_proposal(root, "beta", {"notes.txt": b"one\n"})
        engine.request_apply_commit("beta", "main", "first [b]notes[/b]")
        commit_proposal(root, "alpha", {"notes.txt": b"two\n"})
        engine.request_apply_commit("alpha", "main", "alpha notes")
    server = None
    if request.param == "unix":
        server = ServerProcess(root, tmp_path / "host.sock").start()

        async def connect(host):
            return UnixClient(str(server.sock))
    else:
        async def connect(host):
            return EmbeddedClient(Engine(root, locker="builtin", runtime_options={"stop_grace": 2.0}))
    try:
        yield root, connect, server
    finally:
        if server is not None:
            server.kill()
        stop_agents(root)


async def until(pilot, condition, timeout: float = 30.0, what: str = "condition"):
    """Let the app run until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def started(pilot) -> HiveApp:
    app = pilot.app
    await until(pilot, lambda: app.link == "live" and app.containers.row_count == 2, what="the console to connect")
    return app


def row_text(app: HiveApp, name: str) -> str:
    return str(app.containers.get_cell(name, "agent"))


async def select_agent(pilot, name: str) -> None:
    app = pilot.app
    app.containers.focus()
    app.containers.move_cursor(row=app.containers.get_row_index(name))
    await pilot.pause()


async def select_request(pilot, id: int) -> None:
    app = pilot.app
    app.approvals.focus()
    await until(pilot, lambda: str(id) in app.approvals.rows, what=f"request {id}")
    app.approvals.move_cursor(row=app.approvals.get_row_index(str(id)))
    await pilot.pause()


async def test_approve_and_deny_with_a_reason(hive):
    root, connect, _ = hive
    async with HiveApp(connect).run_test(size=SIZE) as pilot:
        app = await started(pilot)
        await select_request(pilot, 1)
        await until(pilot, lambda: "+one" in app.query_one(DiffView).shown, what="the diff")
        assert "notes.txt" in app.query_one(DiffView).shown
        await pilot.press("a")
        await until(pilot, lambda: tag(root, "beta", "deployed/1") is not None, what="deployed/1")
        log = lambda: "\n".join(strip.text for strip in app.deploys.lines)  # noqa: E731
        await until(pilot, lambda: "ApprovalResolved beta #1: approved deployed/1" in log(), what="the outcome")
        assert "[1 beta] fast-forward" in log() and "[1 beta] finalize: deployed/1" in log()
        await select_request(pilot, 2)
        await pilot.press("n")
        assert isinstance(app.screen, PromptModal)
        await pilot.press(*"keep [b]it[/b]", "enter")
        await until(pilot, lambda: tag(root, "alpha", "denied/2") is not None, what="denied/2")
        assert tag(root, "alpha", "denied/2").message == "keep [b]it[/b]"
        await until(pilot, lambda: app.approvals.row_count == 0, what="the requests to be resolved")
        await pilot.press("v")
        await until(pilot, lambda: app.approvals.row_count == 2, what="resolved requests to show")


async def test_escape_backs_out_of_every_prompt(hive):
    root, connect, _ = hive
    async with HiveApp(connect).run_test(size=SIZE) as pilot:
        app = await started(pilot)
        await select_request(pilot, 1)
        await pilot.press("n")
        await pilot.press(*"never mind", "escape")
        await select_agent(pilot, "beta")
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("escape")
        await pilot.press("D")
        assert isinstance(app.screen, PurgeModal)
        await pilot.press(*"bet", "enter")
        assert isinstance(app.screen, PurgeModal), "a wrong name must not purge"
        await pilot.press("escape")
        await pilot.pause(0.3)
        assert not isinstance(app.screen, (ConfirmModal, PurgeModal, PromptModal))
    assert tag(root, "beta", "denied/1") is None
    assert (root / "containers" / "beta").is_dir() and (root / "applied" / "beta").is_dir()


async def test_lifecycle_keys_on_the_selected_row(hive):
    root, connect, _ = hive
    beta = root / "containers" / "beta"
    async with HiveApp(connect).run_test(size=SIZE) as pilot:
        app = await started(pilot)
        await select_agent(pilot, "beta")

        def row():
            return app.containers.rows_by_name.get("beta")

        await pilot.press("x")
        await until(pilot, lambda: row() is not None and not row().running and row().transient is None, what="stop")
        assert (beta / "stopped").exists()
        await pilot.press("s")
        await until(pilot, lambda: row().running, what="start")
        pid = json.loads((beta / "run.json").read_text())["pid"]
        await pilot.press("r")
        await until(pilot, lambda: json.loads((beta / "run.json").read_text())["pid"] != pid and row().running,
                    what="restart")
        await pilot.press("p")
        await until(pilot, lambda: row().paused, what="pause")
        assert (root / "agents" / "beta" / "paused").exists()
        assert "paused" in row_text(app, "beta")
        await pilot.press("p")
        await until(pilot, lambda: not row().paused, what="resume")
        await pilot.press("b")
        await until(pilot, lambda: any("rebuilt beta" in str(n.message) for n in app._notifications), what="rebuild")
        await pilot.press("d", "y")
        await until(pilot, lambda: row() is not None and row().kept, what="destroy")
        assert not beta.exists() and (root / "applied" / "beta").is_dir()
        await select_agent(pilot, "alpha")
        await pilot.press("D", *"alpha", "enter")
        await until(pilot, lambda: "alpha" not in app.containers.rows_by_name, what="purge")
    assert not (root / "applied" / "alpha").exists() and not (root / "agents" / "alpha").exists()


async def test_a_row_pulses_while_its_action_runs(hive):
    root, connect, _ = hive
    gate = Gate(root / "agents" / "alpha")
    async with HiveApp(connect).run_test(size=SIZE) as pilot:
        app = await started(pilot)
        await select_agent(pilot, "alpha")
        await pilot.press("b")
        await until(pilot, lambda: "rebuilding…" in row_text(app, "alpha"), what="the pill")
        first = row_text(app, "alpha")
        await until(pilot, lambda: row_text(app, "alpha") != first, what="the pill to pulse")
        assert "actions wait" in row_text(app, "alpha")
        await pilot.press("r")
        await until(pilot, lambda: any("rebuilding already" in str(n.message) for n in app._notifications),
                    what="the second action to be refused")
        gate.open("ok")
        await until(pilot, lambda: "● running" in row_text(app, "alpha"), what="the pill to go")
        assert "rebuilding" not in row_text(app, "alpha")


async def test_filter_jump_help_and_history(hive):
    root, connect, _ = hive
    async with HiveApp(connect).run_test(size=SIZE) as pilot:
        app = await started(pilot)
        await pilot.press("slash", *"bet")
        await until(pilot, lambda: list(app.containers.rows) == ["beta"], what="the filter")
        await pilot.press("escape")
        await until(pilot, lambda: app.containers.row_count == 2, what="the filter to clear")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("colon", *"Go to beta")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: app.selected_agent() == "beta", what="the jump")
        await pilot.press("enter")
        assert isinstance(app.screen, HistoryScreen)
        await until(pilot, lambda: app.screen.query_one("#tags-table").row_count == 1, what="the tags")
        await until(pilot, lambda: any("beta started" in line for line in app.screen.lines), what="the log")
        await pilot.press("escape")
        assert not isinstance(app.screen, HistoryScreen)


async def test_agent_text_is_shown_not_interpreted(hive):
    root, connect, _ = hive
    hostile = "\x1b]0;pwned\x07 [b]bold?[/b] [/] \x9b31m\u202eevil"
    (root / "agents" / "beta" / "status.json").write_text(json.dumps(
        {"text": hostile, "set_at": "2026-11-26T10:00:00Z", "model": "[red]m[/red]"}))
    async with HiveApp(connect).run_test(size=SIZE) as pilot:
        app = await started(pilot)
        text = row_text(app, "beta")
        assert "\\x1b]0;pwned\\x07 [b]bold?[/b] [/] \\x9b31m\\u202eevil" in text
        assert "[red]m[/red]" in text
        assert "\x1b" not in text and "\x9b" not in text and "\u202e" not in text


@pytest.mark.parametrize("hive", ["unix"], indirect=True)
async def test_a_dropped_server_shows_as_reconnecting(hive):
    root, connect, server = hive
    async with HiveApp(connect).run_test(size=SIZE) as pilot:
        app = await started(pilot)
        await asyncio.to_thread(server.terminate)
        await until(pilot, lambda: app.link.startswith("reconnecting"), what="reconnecting")
        assert app.panes.has_class("stale")
        assert "reconnecting" in app.sub_title
        await asyncio.to_thread(server.start)
        await until(pilot, lambda: app.link == "live", what="the link to come back")
        assert not app.panes.has_class("stale")


async def drop_the_first_subscription(real: str, front: str) -> asyncio.AbstractServer:
    """A Unix socket at `front` that passes everything through to `real`, except
    that the first subscription is hung up on before it is answered, as by a
    server that goes away just then."""
    dropped = []

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def handle(reader, writer):
        first = await reader.readline()
        if not dropped and json.loads(first).get("cmd") == "subscribe":
            dropped.append(first)
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_unix_connection(real)
        up_writer.write(first)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return await asyncio.start_unix_server(handle, path=front)


@pytest.mark.parametrize("hive", ["unix"], indirect=True)
async def test_a_server_lost_while_subscribing_is_dialled_again(hive, tmp_path):
    root, _, server = hive
    front = str(tmp_path / "front.sock")
    proxy = await drop_the_first_subscription(str(server.sock), front)

    async def connect(host):
        return UnixClient(front)

    try:
        async with HiveApp(connect).run_test(size=SIZE) as pilot:
            app = await started(pilot)
            # Live means subscribed: a change another client makes shows up.
            other = UnixClient(str(server.sock))
            await other.set_paused("beta", True)
            await other.close()
            await until(pilot, lambda: app.containers.rows_by_name["beta"].paused, what="the push of beta's pause")
            assert app.link == "live" and (root / "agents" / "beta" / "paused").exists()
    finally:
        proxy.close()
        await proxy.wait_closed()


async def test_switching_host_is_one_key_away(tmp_path):
    from hive_tui.config import Host

    servers = []
    for name in ("one", "two"):
        root = tmp_path / name
        seeded_hive(root, {f"agent-{name}": agent_files()})
        servers.append(ServerProcess(root, tmp_path / f"{name}.sock").start())
    hosts = [Host(s.root.name, "unix", socket=str(s.sock)) for s in servers]

    async def connect(host):
        return UnixClient(host.socket)

    try:
        async with HiveApp(connect, hosts=hosts, host=hosts[0]).run_test(size=SIZE) as pilot:
            app = pilot.app
            await until(pilot, lambda: app.agent_names() == ["agent-one"] and app.link == "live", what="host one")
            await pilot.press("H")
            await pilot.press("down", "enter")
            await until(pilot, lambda: app.agent_names() == ["agent-two"] and app.link == "live", what="host two")
            assert app.host.name == "two" and "two" in app.sub_title
    finally:
        for s in servers:
            s.kill()
            stop_agents(s.root)
