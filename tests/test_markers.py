"""Change markers and the faults-only view, driven through Textual's Pilot
against a real `hive-tui serve`: an agent's status file, its pause and its
stop change a field, the marker shows on that field and goes once the
console's clock (moved on by the test, never slept for) passes the setting."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import replace
from pathlib import Path

from textual.widgets import Label

from hive_tui.app import HiveApp
from hive_tui.client.connect import open_client
from hive_tui.client.stream import UnixClient
from hive_tui.config import Host
from hive_tui.host.engine import Engine
from hive_tui.models import AgentStatus
from hive_tui.roster import ChangeMarks, needs_operator
from hive_tui.settings import Settings
from hive_tui.widgets.containers import CHANGED
from hive_tui.widgets.fleet import FleetScreen
from hive_tui.widgets.help import HelpScreen
from hive_tui.widgets.history import HistoryScreen

from .helpers import until
from .scripted import HOSTS, NOW, ROWS, ScriptedClient

SIZE = (160, 48)
SNAP_SIZE = (150, 40)


class Clock:
    """The console's clock for the markers: it moves only when the test says."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def write_status(root: Path, name: str, text: str, model: str = "m1", needs_login: bool = False) -> None:
    """What an agent does: write its status file whole, then rename it into place."""
    folder = root / "agents" / name
    body = {"text": text, "model": model, "set_at": "2026-01-01T00:00:00Z", "needs_login": needs_login}
    (folder / "status.json.tmp").write_text(json.dumps(body))
    os.replace(folder / "status.json.tmp", folder / "status.json")


def console(served, **kwargs) -> HiveApp:
    async def connect(host):
        return UnixClient(str(served.sock))

    return HiveApp(connect, **kwargs)


def lines(app: HiveApp, name: str) -> list[str]:
    """The row's two lines as built."""
    return str(app.containers.get_cell(name, "agent")).split("\n")


def on_screen(app: HiveApp, name: str) -> str:
    """The row's two lines as the table draws them."""
    table = app.containers
    index = table.get_row_index(name)
    return "\n".join(table.render_line(index * table.LINES_PER_ROW + line).text for line in range(2))


def title(app, selector: str = "#containers-title") -> str:
    return str(app.screen.query_one(selector, Label).content)


async def call(served, method: str, *args) -> None:
    """An action through the engine, from a client of its own (as another console would)."""
    client = UnixClient(str(served.sock))
    try:
        await getattr(client, method)(*args)
    finally:
        await client.close()


async def started(pilot) -> HiveApp:
    app = pilot.app
    await until(pilot, lambda: app.link == "live" and app.containers.row_count == 2, what="the console to connect")
    return app


async def test_a_changed_field_is_marked_and_the_marker_goes_after_its_time(served):
    clock = Clock()
    app = console(served, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        table = app.containers
        # The first fill marks nothing: a fresh console is not all lit.
        assert CHANGED not in str(table.get_cell("alpha", "agent")) + str(table.get_cell("beta", "agent"))

        # The agent reports a model: the model field is marked, and nothing else.
        write_status(served.root, "beta", "thinking", "m2")
        await until(pilot, lambda: "m2 Δ" in lines(app, "beta")[0], what="beta's model marked")
        assert CHANGED not in lines(app, "beta")[1] and lines(app, "beta")[0].count(CHANGED) == 1
        assert "m2 Δ" in on_screen(app, "beta")
        # Colour is the stylesheet's, and never the only sign: the glyph carries it.
        cell = table.get_cell("beta", "agent")
        at = str(cell).index(CHANGED)
        styles = [s.style for s in cell.spans if s.start <= at < s.end]
        assert styles == [table.get_component_rich_style("containers--changed", partial=True)]

        # Paused through the engine: the badges are marked, on the second line.
        await call(served, "set_paused", "beta", True)
        await until(pilot, lambda: " paused  Δ" in lines(app, "beta")[1], what="beta's badges marked")

        # Stopped a little later: alpha's state is marked.
        clock.t += 5
        await call(served, "stop", "alpha")
        await until(pilot, lambda: "○ stopped Δ" in lines(app, "alpha")[0] and "alpha" not in table.transients,
                    what="alpha's state marked")
        assert lines(app, "alpha")[0].count(CHANGED) == 1 and CHANGED not in lines(app, "alpha")[1]

        # Just short of the setting's 10 seconds: every marker stays.
        clock.t = 1000.0 + 9.9
        table._tick()
        assert "m2 Δ" in lines(app, "beta")[0] and " paused  Δ" in lines(app, "beta")[1]

        # Past it for beta's, not yet for alpha's: beta's row alone is built and drawn again.
        built: list[str] = []
        build = table._row_text

        def spy(name: str, width: int):
            built.append(name)
            return build(name, width)

        table._row_text = spy
        clock.t = 1000.0 + 10.5
        table._tick()
        assert built == ["beta"]
        assert CHANGED not in str(table.get_cell("beta", "agent")) and "paused" in lines(app, "beta")[1]
        await until(pilot, lambda: CHANGED not in on_screen(app, "beta"), what="beta's markers off the screen")
        assert "○ stopped Δ" in lines(app, "alpha")[0]

        # And a tick with nothing run out builds nothing.
        built.clear()
        table._tick()
        assert built == []
        clock.t = 1005.0 + 10.5
        table._tick()
        assert built == ["alpha"] and CHANGED not in lines(app, "alpha")[0]


async def test_what_changed_while_the_link_was_down_is_marked_when_it_is_back(served):
    clock = Clock()
    app = console(served, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await asyncio.to_thread(served.terminate)
        await until(pilot, lambda: app.link != "live", what="the console to see the link drop")
        with Engine(served.root, locker="builtin") as engine:
            engine.set_paused("beta", True)
        await asyncio.to_thread(served.start)
        await until(pilot, lambda: app.link == "live" and "paused" in lines(app, "beta")[1],
                    what="the console back, beta read afresh")
        assert " paused  Δ" in lines(app, "beta")[1]
        assert CHANGED not in str(app.containers.get_cell("alpha", "agent"))


async def test_no_markers_when_the_setting_is_zero(served):
    app = console(served, clock=Clock(), settings=Settings(change_markers=0))
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        write_status(served.root, "beta", "thinking", "m2")
        await call(served, "set_paused", "beta", True)
        await until(pilot, lambda: "m2" in lines(app, "beta")[0] and "paused" in lines(app, "beta")[1],
                    what="beta's new model and pause")
        assert CHANGED not in str(app.containers.get_cell("beta", "agent"))
        assert app.containers.changes.since == {}


async def test_faults_only_shows_the_rows_that_need_the_operator(served):
    app = console(served)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        table = app.containers
        assert title(app) == "Containers"
        write_status(served.root, "alpha", "log in please", needs_login=True)
        await until(pilot, lambda: "needs login" in lines(app, "alpha")[1], what="alpha to need a login")

        await pilot.press("f")
        assert list(table.rows) == ["alpha"]
        await until(pilot, lambda: title(app) == "Containers · faults only · 1 hidden", what="the title")

        # A row that stops needing the operator leaves the view at once; one that starts to comes in.
        write_status(served.root, "alpha", "logged in")
        await until(pilot, lambda: table.row_count == 0, what="alpha to leave the view")
        await until(pilot, lambda: title(app) == "Containers · faults only · 2 hidden", what="the title")
        write_status(served.root, "beta", "log in please", needs_login=True)
        await until(pilot, lambda: list(table.rows) == ["beta"], what="beta to come into the view")
        await until(pilot, lambda: title(app) == "Containers · faults only · 1 hidden", what="the title")

        # With the name filter: both must hold.
        await pilot.press("slash", *"alp")
        await until(pilot, lambda: table.row_count == 0, what="the filter")
        await until(pilot, lambda: title(app) == "Containers · faults only · filtered · 2 hidden", what="the title")
        await pilot.press("enter", "f")
        await until(pilot, lambda: list(table.rows) == ["alpha"], what="every row matching the filter")
        await until(pilot, lambda: title(app) == "Containers · filtered · 1 hidden", what="the title")
        await pilot.press("escape")
        await until(pilot, lambda: title(app) == "Containers" and table.row_count == 2, what="every row")
        # Under another screen the key is that screen's: the list behind stays as it is.
        for key, screen in (("question_mark", HelpScreen), ("enter", HistoryScreen)):
            table.focus()
            await pilot.press(key)
            await until(pilot, lambda: isinstance(app.screen, screen), what=f"the {screen.__name__}")
            await pilot.press("f")
            assert not table.faults_only and table.row_count == 2
            app.pop_screen()


async def test_faults_only_on_the_all_hosts_view(served):
    host = Host("a", "unix", socket=str(served.sock))

    async def connect(h):
        return await open_client(h, redial_for=0)

    async def opener(h: Host):
        return await open_client(h, redial_for=0)

    clock = Clock()
    app = HiveApp(connect, hosts=[host], open_host=opener, all_hosts=True, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, FleetScreen), what="the all-hosts view")
        table = app.screen.table
        row = lambda agent: table.get_row(f"a/{agent}")[0].plain  # noqa: E731
        await until(pilot, lambda: table.row_count == 3, what="the host's header and its two rows")
        # The host's first answer marks nothing.
        assert CHANGED not in row("alpha") + row("beta")
        write_status(served.root, "alpha", "log in please", needs_login=True)
        await until(pilot, lambda: "needs login" in row("alpha"), what="alpha to need a login")
        # Its model (it had none) and its badges changed: each is marked, until the clock passes the setting.
        assert "m1 Δ" in row("alpha") and " needs login  Δ" in row("alpha") and row("alpha").count(CHANGED) == 2
        clock.t += 10.5
        table.tick()
        assert CHANGED not in row("alpha") and "needs login" in row("alpha")

        await pilot.press("f")
        # The host's header line stays.
        assert list(table.rows) == ["a/", "a/alpha"]
        selector = "#fleet-agents-title"
        assert title(app, selector) == "Every host's agents · faults only · 1 hidden"
        write_status(served.root, "alpha", "logged in")
        await until(pilot, lambda: list(table.rows) == ["a/"], what="alpha to leave the view")
        assert title(app, selector) == "Every host's agents · faults only · 2 hidden"
        await pilot.press("f")
        assert list(table.rows) == ["a/", "a/alpha", "a/beta"]
        assert title(app, selector) == "Every host's agents"


# -- what changed, on its own ------------------------------------------------------------

def test_change_marks_time_each_field_and_mark_nothing_first():
    clock = Clock()
    marks = ChangeMarks(10, clock)
    row = AgentStatus(name="atlas", running=True, deployed_sha="a" * 12, active_model="opus")
    assert marks.see(row) == frozenset() and marks.marked("atlas") == frozenset()
    assert marks.see(replace(row, active_model="sonnet")) == {"model"}
    clock.t += 4
    assert marks.see(replace(row, active_model="sonnet", running=False, paused=True)) == {"state", "badges"}
    assert marks.marked("atlas") == {"model", "state", "badges"}
    clock.t += 6
    assert marks.expire() == ["atlas"] and marks.marked("atlas") == {"state", "badges"}
    assert marks.expire() == []
    # Status text and its age are not watched: they change all the time.
    assert marks.see(replace(row, active_model="sonnet", running=False, paused=True, status_text="x")) == frozenset()
    marks.keep_only([])
    assert marks.since == {} and marks.see(row) == frozenset()


def test_who_needs_the_operator():
    row = AgentStatus(name="atlas", running=True)
    assert not needs_operator(row)
    assert needs_operator(row, "Restarting") and needs_operator(replace(row, transient="Stopping"))
    assert all(needs_operator(replace(row, **{flag: True})) for flag in ("failed", "needs_login", "needs_update"))
    assert not needs_operator(replace(row, paused=True)) and not needs_operator(None)


# -- how they look -----------------------------------------------------------------------

def scripted_app() -> HiveApp:
    async def connect(host):
        return ScriptedClient()

    # The markers' clock stands still: they stay for the screenshot.
    return HiveApp(connect, hosts=HOSTS, now=lambda: NOW, pulse=False, clock=lambda: 1000.0)


async def changed(pilot) -> None:
    """Settled, then atlas's sha and cinder's model and badges pushed changed."""
    app = pilot.app
    await until(pilot, lambda: app.link == "live" and app.diff.shown != "", what="the console to settle")
    rows = {r["name"]: AgentStatus.from_wire(r) for r in ROWS}
    await app.apply(replace(rows["atlas"], deployed_sha="77c0ffee1234"))
    await app.apply(replace(rows["cinder"], active_model="haiku", needs_login=False))
    await pilot.pause()


def test_snapshot_changed_fields_marked(snap_compare):
    assert snap_compare(scripted_app(), terminal_size=SNAP_SIZE, run_before=changed)


def test_snapshot_faults_only(snap_compare):
    async def faults(pilot):
        await changed(pilot)
        await pilot.press("f")
        await until(pilot, lambda: "hidden" in title(pilot.app), what="the title")
        await pilot.pause()

    assert snap_compare(scripted_app(), terminal_size=SNAP_SIZE, run_before=faults)


async def test_a_marker_that_runs_out_while_its_row_is_hidden_is_gone_when_it_comes_back():
    clock = Clock()

    async def connect(host):
        return ScriptedClient()

    app = HiveApp(connect, now=lambda: NOW, pulse=False, clock=clock)
    async with app.run_test(size=SNAP_SIZE) as pilot:
        await until(pilot, lambda: app.link == "live" and "atlas" in app.containers.rows, what="the console")
        table = app.containers
        atlas = AgentStatus.from_wire(ROWS[0])
        await app.apply(replace(atlas, deployed_sha="77c0ffee1234"))
        assert CHANGED in lines(app, "atlas")[0]
        # atlas needs nothing: the faults-only view hides it while its marker runs out.
        await pilot.press("f")
        assert "atlas" not in table.rows
        clock.t += 10.5
        table._tick()
        await pilot.press("f")
        assert "atlas" in table.rows and CHANGED not in str(table.get_cell("atlas", "agent"))
