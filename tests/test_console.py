"""The console driven by keys through Textual's Pilot, on the embedded engine
and through a real Unix socket; each test checks what the hive did."""

from __future__ import annotations

import asyncio
import json
from contextlib import aclosing

import pygit2
import pytest

from hive_tui.host import gitrepo
from hive_tui.app import HiveApp
from hive_tui.client.base import Feed, HiveClient
from hive_tui.client.embedded import EmbeddedClient
from hive_tui.client.stream import UnixClient
from hive_tui.errors import HiveError
from hive_tui.host.engine import Engine
from hive_tui.widgets.confirm import ConfirmModal
from hive_tui.widgets.diffview import DiffView
from hive_tui.widgets.help import HelpScreen
from hive_tui.widgets.history import HistoryScreen
from hive_tui.widgets.prompt import PromptModal
from hive_tui.widgets.purge import PurgeModal

from .helpers import GATED_BUILD, Gate, agent_files, until
from .kept import KeptClient
from .scripted import NOW, ScriptedClient
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
        # The pulse is painted over the drawn line; the row's cell stays as it is.
        drawn = lambda: app.containers.render_line(app.containers.get_row_index("alpha") * 2).text  # noqa: E731
        first = drawn()
        await until(pilot, lambda: drawn() != first, what="the pill to pulse")
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


# -- it never crashes ------------------------------------------------------------------------


class Faulty(HiveClient):
    """A real client that raises `error` on the `fail_at`th call it is given: a
    request, a feed opened or a log followed. `calls` counts them all."""

    def __init__(self, real: HiveClient, fail_at: int | None, error: type[Exception], counter: list[int]):
        self.real, self.fail_at, self.error, self.counter = real, fail_at, error, counter
        self.raised: str | None = None

    def _tick(self, what: str) -> None:
        self.counter[0] += 1
        if self.counter[0] == self.fail_at:
            self.raised = f"injected failure at call {self.fail_at} ({what})"
            raise self.error(self.raised)

    async def request(self, message):
        self._tick(message["cmd"])
        return await self.real.request(message)

    def feed(self) -> Feed:
        async def start(feed: Feed):
            self._tick("subscribe")
            inner = self.real.feed()
            await inner.__aenter__()

            async def pump():
                async for item in inner:
                    feed.put(item)

            task = asyncio.create_task(pump())

            async def stop():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await inner.__aexit__(None, None, None)

            return stop

        return Feed(start)

    async def follow_logs(self, name, lines=200):
        self._tick("follow_logs")
        async with aclosing(self.real.follow_logs(name, lines)) as real:
            async for line in real:
                yield line

    async def close(self):
        await self.real.close()


def what_it_says(app: HiveApp) -> str:
    """Everything the console shows that could name a failure."""
    said = [app.sub_title, app.diff.shown]
    said += [f"{n.title}: {n.message}" for n in app._notifications]
    return "\n".join(said)


async def scripted_session(pilot, faulty: list[Faulty]) -> None:
    """Connect, read a diff, pause and resume beta, open its history. Each step waits for
    its outcome, or for the injected failure to be reported, which ends the session."""
    app = pilot.app

    def reported() -> bool:
        return any(f.raised and f.raised in what_it_says(app) for f in faulty)

    async def step(done, what):
        await until(pilot, lambda: reported() or done(), what=what)
        return reported()

    if await step(lambda: app.link == "live" and app.containers.row_count == 2 and app.approvals.row_count == 2,
                  "the console to connect"):
        return
    app.approvals.focus()
    app.approvals.move_cursor(row=app.approvals.get_row_index("1"))
    if await step(lambda: "+one" in app.diff.shown, "the diff"):
        return
    await select_agent(pilot, "beta")
    await pilot.press("p")
    if await step(lambda: app.containers.rows_by_name["beta"].paused, "the pause"):
        return
    await pilot.press("p")
    if await step(lambda: not app.containers.rows_by_name["beta"].paused, "the resume"):
        return
    await pilot.press("enter")
    await step(lambda: isinstance(app.screen, HistoryScreen)
               and app.screen.query_one("#tags-table").row_count == 1 and app.screen.lines, "the history")


@pytest.mark.parametrize("hive", ["unix"], indirect=True)
async def test_no_failure_of_any_call_ends_the_console(hive):
    _, _, served = hive
    """For every call the console makes in a session, and each kind of error: the
    console stays up and says what failed."""
    counter = [0]
    made: list[Faulty] = []

    def connect_failing(fail_at, error):
        async def connect(host):
            made.append(Faulty(UnixClient(str(served.sock)), fail_at, error, counter))
            return made[-1]
        return connect

    async with HiveApp(connect_failing(None, HiveError)).run_test(size=SIZE) as pilot:
        await scripted_session(pilot, made)
    calls = counter[0]
    assert calls >= 8, calls
    for fail_at in range(1, calls + 1):
        for error in (HiveError, OSError, TimeoutError):
            # A session cut short at the resume leaves beta paused: each starts alike.
            async with UnixClient(str(served.sock)) as reset:
                await reset.set_paused("beta", False)
            counter[0] = 0
            made.clear()
            async with HiveApp(connect_failing(fail_at, error)).run_test(size=SIZE) as pilot:
                try:
                    await scripted_session(pilot, made)
                except AssertionError as e:
                    raise AssertionError(f"failing call {fail_at} with {error.__name__}: {e}; "
                                         f"raised {[f.raised for f in made]}; it says {what_it_says(pilot.app)!r}")
                raised = next(f.raised for f in made if f.raised)
                assert pilot.app.is_running and pilot.app.return_code is None, (fail_at, error)
                if error is HiveError and "(capabilities)" in raised:
                    # A daemon that refuses to say what it offers is taken to offer
                    # everything, each verb answering for itself: not a failure.
                    continue
                assert raised in what_it_says(pilot.app), (fail_at, error)


@pytest.mark.parametrize("hive", ["unix"], indirect=True)
async def test_a_failed_reload_after_a_reconnect_goes_back_to_reconnecting(hive):
    _, _, served = hive
    fail = [False]

    class FailOnce(Faulty):
        def _tick(self, what):
            if fail[0] and what == "agent_status":
                fail[0] = False
                self.raised = "the hive could not be read"
                raise HiveError(self.raised)

    async def connect(host):
        return FailOnce(UnixClient(str(served.sock)), None, HiveError, [0])

    async with HiveApp(connect).run_test(size=SIZE) as pilot:
        app = await started(pilot)
        titles: list[str] = []
        app.watch(app, "sub_title", lambda title: titles.append(title))
        fail[0] = True
        await asyncio.to_thread(served.terminate)
        await until(pilot, lambda: app.link.startswith("reconnecting"), what="reconnecting")
        await asyncio.to_thread(served.start)
        await until(pilot, lambda: not fail[0] and app.link == "live", what="the link to come back")
        # Between the two: the failed read, shown as reconnecting with its reason, never as live.
        failed = next(i for i, t in enumerate(titles) if "the hive could not be read" in t)
        assert "reconnecting…" in titles[failed] and not any(t.endswith("· live") for t in titles[1:failed])
        assert any("the hive could not be read" in str(n.message) for n in app._notifications)
        assert app.containers.row_count == 2 and not app.panes.has_class("stale")


@pytest.mark.parametrize("hive", ["unix"], indirect=True)
async def test_history_of_an_agent_purged_while_it_is_open(hive):
    _, _, served = hive
    async def connect(host):
        return UnixClient(str(served.sock))

    async with HiveApp(connect).run_test(size=SIZE) as pilot:
        app = await started(pilot)
        other = UnixClient(str(served.sock))
        await other.destroy("beta", purge=True)
        await other.close()
        # The screen as it is when opened just before the purge: it reads after.
        app.push_screen(HistoryScreen(app.client, "beta"))
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen), what="the history screen")
        def title() -> str:
            found = app.screen.query("#history-title")
            return str(found.first().render()) if found else ""

        await until(pilot, lambda: "cannot be read" in title(), what="the history to say beta is gone")
        # Which read fails first (the tags, or the log) is a race; either names beta.
        assert title().startswith("beta: history (cannot be read:") and title().count("beta") == 2
        assert any("beta" in str(n.message) and n.severity == "error" for n in app._notifications)
        assert app.is_running
        await pilot.press("escape")
        await until(pilot, lambda: "beta" not in app.containers.rows_by_name, what="beta's row to go")
        assert app.link == "live"


# -- the detail pane, kept agents, focus and keys ----------------------------------------------


@pytest.mark.parametrize("hive", ["unix"], indirect=True)
async def test_the_detail_pane_follows_the_selection_and_shows_nothing_stale(hive):
    root, connect, _ = hive
    async with HiveApp(connect).run_test(size=SIZE) as pilot:
        app = await started(pilot)
        await until(pilot, lambda: app.diff.shown.startswith("#1 beta: first [b]notes[/b]"), what="#1 shown")
        await select_request(pilot, 2)
        await until(pilot, lambda: app.diff.shown.startswith("#2 alpha: alpha notes"), what="#2 shown")
        await pilot.press("n", "enter")
        await until(pilot, lambda: app.approvals.row_count == 1, what="#2 to be resolved")
        # The cursor is on #1 now: the pane shows it, not the request that went.
        await until(pilot, lambda: app.diff.shown.startswith("#1 beta"), what="the pane to follow")
        await pilot.press("n", "enter")
        await until(pilot, lambda: app.approvals.row_count == 0, what="#1 to be resolved")
        await until(pilot, lambda: app.diff.shown == "No pending requests.", what="the pane to say so")
        await pilot.press("v")
        await until(pilot, lambda: app.approvals.row_count == 2, what="resolved requests")
        await until(pilot, lambda: "denied" in app.diff.shown, what="a resolved request, as resolved")


@pytest.mark.parametrize("hive", ["unix"], indirect=True)
async def test_request_keys_act_whatever_has_focus_and_agent_keys_say_where_they_act(hive):
    root, connect, _ = hive
    async with HiveApp(connect).run_test(size=SIZE) as pilot:
        app = await started(pilot)
        await until(pilot, lambda: "2" in app.approvals.rows, what="request 2")
        app.approvals.move_cursor(row=app.approvals.get_row_index("2"))
        await select_agent(pilot, "beta")
        assert app.focused is app.containers
        await pilot.press("n")
        assert isinstance(app.screen, PromptModal)
        await pilot.press(*"not now", "enter")
        await until(pilot, lambda: tag(root, "alpha", "denied/2") is not None, what="denied/2")
        app.approvals.focus()
        await pilot.press("x")
        await until(pilot, lambda: any("acts on the selected agent" in str(n.message) for n in app._notifications),
                    what="the agent key to say where it acts")
        assert not (root / "containers" / "beta" / "stopped").exists()
        # Under another screen, the console's keys are that screen's letters.
        await pilot.press("question_mark", "a")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert tag(root, "beta", "approved/1") is None and tag(root, "beta", "deployed/1") is None


@pytest.mark.parametrize("hive", ["unix"], indirect=True)
async def test_the_focused_pane_lights_its_title(hive):
    root, connect, _ = hive
    async with HiveApp(connect).run_test(size=SIZE) as pilot:
        app = await started(pilot)
        left, right = (app.query_one(f"#{side} > .pane-title") for side in ("left", "right"))
        lit = app.current_theme.to_color_system().generate()["primary"]
        assert left.styles.background.hex.upper() == lit.upper() != right.styles.background.hex.upper()
        stops = []
        for _ in range(4):
            stops.append(app.focused.id)
            await pilot.press("tab")
        assert stops == ["containers", "approvals", "diff", "containers"]
        await pilot.press("tab")
        assert right.styles.background.hex.upper() == lit.upper() != left.styles.background.hex.upper()


async def test_the_cursor_stays_by_a_row_that_went(tmp_path):
    root = tmp_path / "hive"
    seeded_hive(root, {name: agent_files() for name in ("alpha", "beta", "gamma")})
    server = ServerProcess(root, tmp_path / "host.sock").start()

    async def connect(host):
        return UnixClient(str(server.sock))

    try:
        async with HiveApp(connect).run_test(size=SIZE) as pilot:
            app = pilot.app
            await until(pilot, lambda: app.link == "live" and app.containers.row_count == 3, what="the console")
            await select_agent(pilot, "beta")
            await pilot.press("D", *"beta", "enter")
            await until(pilot, lambda: "beta" not in app.containers.rows, what="the purge")
            assert app.selected_agent() == "gamma"
            # A destroy's dialog answers to its keys; n and Escape leave it be.
            await pilot.press("d")
            assert isinstance(app.screen, ConfirmModal) and app.screen.focused.id == "no"
            await pilot.press("n")
            assert not isinstance(app.screen, ConfirmModal)
            await pilot.press("d", "escape")
            await pilot.pause()
            assert (root / "containers" / "gamma").is_dir()
    finally:
        server.kill()
        stop_agents(root)


@pytest.mark.parametrize("hive", ["unix"], indirect=True)
async def test_keys_while_the_link_is_down_are_refused_never_held(hive):
    root, connect, server = hive
    async with HiveApp(connect).run_test(size=SIZE) as pilot:
        app = await started(pilot)
        await select_agent(pilot, "beta")
        await asyncio.to_thread(server.terminate)
        await until(pilot, lambda: app.link.startswith("reconnecting"), what="reconnecting")
        assert app.sub_title.count("reconnecting") == 1, app.sub_title
        await pilot.press("x")
        await until(pilot, lambda: any("not done" in str(n.message) for n in app._notifications),
                    what="the refusal")
        await pilot.press("D")
        assert not isinstance(app.screen, PurgeModal)
        await pilot.press("v")
        await until(pilot, lambda: sum("not done" in str(n.message) for n in app._notifications) == 3,
                    what="each key to be refused")
        assert not app.approvals.show_resolved
        await asyncio.to_thread(server.start)
        await until(pilot, lambda: app.link == "live", what="the link to come back")
        # Nothing was left waiting to be sent once the link is back.
        assert not [w for w in app.workers if w.group == "actions"]
        assert not (root / "containers" / "beta" / "stopped").exists()
        assert app.containers.rows_by_name["beta"].running


@pytest.mark.parametrize("hive", ["unix"], indirect=True)
async def test_dialogs_wrap_their_text(hive):
    root, connect, _ = hive
    async with HiveApp(connect).run_test(size=SIZE) as pilot:
        app = await started(pilot)
        await select_agent(pilot, "beta")
        await pilot.press("d")
        question = app.screen.query_one(".modal-question")
        assert question.size.height >= 2 and "spawned again" in str(question.render())
        await pilot.press("escape", "n")
        question = app.screen.query_one(".modal-question")
        assert question.size.height >= 2 and "sent to the manager" in str(question.render())
        await pilot.press("escape")


@pytest.mark.parametrize("hive", ["unix"], indirect=True)
async def test_hosts_with_no_hosts_file_names_the_file_to_write(hive, tmp_path):
    root, connect, _ = hive
    hosts_file = tmp_path / "config" / "hosts.yaml"
    async with HiveApp(connect, hosts_file=hosts_file).run_test(size=SIZE) as pilot:
        app = await started(pilot)
        await pilot.press("H")
        await until(pilot, lambda: any(str(hosts_file) in str(n.message) for n in app._notifications),
                    what="the hosts file's path")


def test_help_says_rows_are_two_lines():
    from hive_tui.widgets.help import help_markdown

    text = help_markdown()
    assert "two lines per agent" in text and "one row per agent" not in text


async def test_a_kept_agent_shows_dim_and_only_purge_acts_on_it():
    client = KeptClient()

    async def connect(host):
        return client

    async with HiveApp(connect, now=lambda: NOW, pulse=False).run_test(size=SIZE) as pilot:
        app = pilot.app
        await until(pilot, lambda: app.link == "live" and "kestrel" in app.containers.rows, what="the console")
        text = row_text(app, "kestrel")
        assert "destroyed" in text and "repos kept" in text and "s start" not in text
        await select_agent(pilot, "kestrel")
        for key in ("s", "x", "r", "b", "p", "d"):
            await pilot.press(key)
            assert app.screen is app.screen_stack[0]
        await until(pilot, lambda: sum("only purge (D) acts on it" in str(n.message) for n in app._notifications) == 6,
                    what="each refusal to say why")
        assert not [m for m in client.sent
                    if m["cmd"] not in ("capabilities", "agent_status", "transients", "pending", "diff")]
        await pilot.press("D")
        assert isinstance(app.screen, PurgeModal)
        await pilot.press(*"kestrel", "enter")
        await until(pilot, lambda: {"cmd": "destroy", "name": "kestrel", "purge": True} in client.sent,
                    what="the purge to be sent")


async def test_the_request_header_names_the_agent_once_and_the_diff_follows_the_theme():
    async def connect(host):
        return ScriptedClient()

    async with HiveApp(connect, now=lambda: NOW, pulse=False).run_test(size=SIZE) as pilot:
        app = pilot.app
        await until(pilot, lambda: app.diff.shown.startswith("#1"), what="the diff")
        assert app.diff.shown.startswith("#1 atlas: move to the larger model\n")
        added = app.diff.themed("diff--added")
        app.theme = "textual-light"
        await until(pilot, lambda: app.diff.themed("diff--added") != added, what="the light diff")
        assert "+opus" in app.diff.shown


def test_the_readme_names_every_console_key():
    from pathlib import Path

    from hive_tui.actions import ACTIONS

    _KEYS = {"slash": "/", "colon": ":", "question_mark": "?", "enter": "Enter", "space": "Space", "escape": "Escape"}

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("\n## The console\n", 1)[1].split("\n## ", 1)[0]
    missing = [a.key for a in ACTIONS if f"`{_KEYS.get(a.key, a.key)}`" not in section]
    assert not missing, missing
    assert "two lines each" in section and "repos kept" in section and "refused" in section


@pytest.mark.parametrize("hive", ["unix"], indirect=True)
async def test_a_destroyed_agent_with_its_repos_kept_stays_a_dim_row_to_purge(hive):
    root, connect, _ = hive
    async with HiveApp(connect).run_test(size=SIZE) as pilot:
        app = await started(pilot)
        await select_agent(pilot, "beta")
        await pilot.press("d", "y")
        await until(pilot, lambda: getattr(app.containers.rows_by_name.get("beta"), "kept", False),
                    what="beta's kept row")
        assert "destroyed" in row_text(app, "beta") and "repos kept" in row_text(app, "beta")
        assert app.selected_agent() == "beta"
        await pilot.press("s")
        await until(pilot, lambda: any("only purge (D) acts on it" in str(n.message) for n in app._notifications),
                    what="start to be refused")
        assert not (root / "containers" / "beta").exists()
        await pilot.press("D", *"beta", "enter")
        await until(pilot, lambda: "beta" not in app.containers.rows_by_name, what="the purge")
        assert not (root / "applied" / "beta").exists()
