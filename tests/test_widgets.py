"""The console's tables: they keep Textual's own members (Textual calls `visible`
and `_render` itself, for focus, compositing and auto sizing), redraw only what
time changes, and filter from the rows they hold."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.selection import Selection

from hive_tui.app import stylesheet
from hive_tui.models import AgentStatus, Approval, DeployStep, Event
from hive_tui.widgets.approvals import ApprovalTable
from hive_tui.widgets.containers import ContainerTable
from hive_tui.widgets.deploylog import DeployLog

from .helpers import until


class Tables(App):
    CSS = "ContainerTable, ApprovalTable { height: auto; }"

    def compose(self) -> ComposeResult:
        yield ContainerTable(pulse=False)
        yield ApprovalTable()


def agent(name: str) -> AgentStatus:
    return AgentStatus(name=name, running=True)


async def test_a_hidden_approval_table_is_not_focusable():
    async with Tables().run_test() as pilot:
        table = pilot.app.query_one(ApprovalTable)
        assert table.visible is True and table.focusable
        table.styles.visibility = "hidden"
        await pilot.pause()
        assert table.visible is False and not table.focusable


async def test_tables_of_auto_height_draw_their_rows():
    async with Tables().run_test() as pilot:
        containers = pilot.app.query_one(ContainerTable)
        containers.set_rows([agent("alpha"), agent("beta")], {})
        approvals = pilot.app.query_one(ApprovalTable)
        approvals.set_items([Approval(id=1, agent="alpha", kind="apply_commit", status="pending")])
        await pilot.pause()
        assert containers.row_count == 2 and approvals.row_count == 1
        assert "alpha" in str(containers.get_cell("alpha", "agent"))
        assert containers.size.height >= 4


async def test_text_selected_across_the_container_table_can_be_copied():
    """Copying a mouse selection asks each widget under it for its text, through `_render`."""
    async with Tables().run_test() as pilot:
        containers = pilot.app.query_one(ContainerTable)
        containers.set_rows([agent("alpha")], {})
        await pilot.pause()
        assert containers.get_selection(Selection(None, None)) is None


def test_the_cli_and_the_console_show_the_same_words():
    from hive_tui.report import status_table
    from hive_tui.widgets.containers import badges, state_cell

    row = AgentStatus(name="alpha", failed=True, needs_login=True, paused=True)
    line = status_table([row]).splitlines()[1].split()
    assert line[1] == "failed" and state_cell(row) == "✗ failed"
    assert line[3] == "needs-login,paused" and badges(row) == ["needs login", "paused", "failed"]


# -- what changes with time is redrawn alone -------------------------------------------------------

class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


class Repaints:
    """Every refresh a table asks for: the regions it names, or None for all of it."""

    def __init__(self, table):
        self.calls: list[tuple[Region, ...] | None] = []
        refresh = table.refresh

        def recorded(*regions, **kwargs):
            self.calls.append(regions or None)
            return refresh(*regions, **kwargs)

        table.refresh = recorded

    def regions(self) -> list[Region]:
        return [r for call in self.calls if call for r in call]


def drawn(table, y: int) -> str:
    return table.render_line(y).text


NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)


class Clocked(App):
    CSS = "ContainerTable, ApprovalTable { height: 1fr; }"

    def __init__(self, clock: Clock, pulse: bool = False):
        super().__init__()
        self.clock, self.pulse = clock, pulse

    def compose(self) -> ComposeResult:
        yield ContainerTable(now=self.clock, pulse=self.pulse)
        yield ApprovalTable(now=self.clock)


async def test_ages_tick_by_redrawing_only_the_age_text():
    clock = Clock(NOW)
    async with Clocked(clock).run_test(size=(100, 20)) as pilot:
        containers, approvals = pilot.app.query_one(ContainerTable), pilot.app.query_one(ApprovalTable)
        containers.set_rows([AgentStatus(name="alpha", running=True, status_text="watching",
                                         status_set_at="2026-11-26T11:59:37Z")], {})
        approvals.set_items([Approval(id=1, agent="alpha", kind="apply_commit", status="pending",
                                      requested_at="2026-11-26T11:59:50Z", description="a change")])
        await pilot.pause()
        assert "watching (23s ago)" in drawn(containers, 1) and "10s ago" in drawn(approvals, 1)
        cells = (containers.get_cell("alpha", "agent"), approvals.get_row("1"))
        containers_repaints, approvals_repaints = Repaints(containers), Repaints(approvals)
        clock.at = NOW + timedelta(seconds=1)
        await until(pilot, lambda: containers_repaints.calls and approvals_repaints.calls, what="the ages to tick")
        assert "watching (24s ago)" in drawn(containers, 1) and "11s ago" in drawn(approvals, 1)
        # Nothing else was redrawn: the rows are as they were, and only the ages' cells were repainted.
        assert (containers.get_cell("alpha", "agent"), approvals.get_row("1")) == cells
        for repaints, x in ((containers_repaints, drawn(containers, 1).index("(24s")),
                            (approvals_repaints, drawn(approvals, 1).index("11s"))):
            assert repaints.calls and None not in repaints.calls
            assert {(r.x, r.height) for r in repaints.regions()} == {(x, 1)}
            assert all(r.width <= 10 for r in repaints.regions())


async def test_a_pulse_redraws_only_the_pills_on_screen():
    rows = [AgentStatus(name=f"agent{i:02d}", running=True) for i in range(30)]
    async with Clocked(Clock(NOW), pulse=True).run_test(size=(100, 24)) as pilot:
        containers = pilot.app.query_one(ContainerTable)
        containers.set_rows(rows, {r.name: "Rebuilding" for r in rows})
        await pilot.pause()
        pill_x = drawn(containers, 0).index("◐")
        cell = containers.get_cell("agent00", "agent")
        repaints = Repaints(containers)
        await until(pilot, lambda: drawn(containers, 0)[pill_x] != "◐", what="the pill to pulse")
        assert containers.get_cell("agent00", "agent") is cell
        assert repaints.calls and None not in repaints.calls
        on_screen = containers.size.height
        assert {(r.x, r.width, r.height) for r in repaints.regions()} == {(pill_x, 1, 1)}
        # Only rows on screen: the first line of each, none below the table's bottom edge.
        assert {r.y for r in repaints.regions()} <= set(range(0, on_screen, 2))
        assert len({r.y for r in repaints.regions()}) <= (on_screen + 1) // 2 < len(rows)


# -- a filter works from the rows the table holds ----------------------------------------------------

async def test_a_filter_reuses_built_rows_and_a_newer_one_replaces_one_under_way():
    rows = [AgentStatus(name=f"agent{i:05d}", running=True, status_text="idle") for i in range(2000)]
    async with Clocked(Clock(NOW)).run_test(size=(100, 30)) as pilot:
        containers = pilot.app.query_one(ContainerTable)
        containers.set_rows(rows, {})
        await pilot.pause()
        built = {name: containers.get_cell(name, "agent") for name in ("agent00001", "agent00010", "agent01999")}
        clears = []
        clear = containers.clear
        containers.clear = lambda *a, **kw: (clears.append(a), clear(*a, **kw))[1]
        # Three keys, none of them waited for: only the last filter reaches the table.
        containers.refilter("agent0")
        containers.refilter("agent00")
        containers.refilter("agent0001")
        await until(pilot, lambda: set(containers.rows) == {f"agent{i:05d}" for i in range(10, 20)},
                    what="the filter")
        assert len(clears) == 1
        assert containers.get_cell("agent00010", "agent") is built["agent00010"]
        containers.refilter("")
        await until(pilot, lambda: containers.row_count == len(rows), what="the filter to clear")
        assert all(containers.get_cell(name, "agent") is cell for name, cell in built.items())


# -- the deploy log takes room only while something runs ---------------------------------------------

class Logged(App):
    CSS_PATH = stylesheet()

    def compose(self) -> ComposeResult:
        yield DeployLog()


async def test_the_deploy_log_shows_while_a_deploy_runs_and_a_while_after(monkeypatch):
    from hive_tui.widgets import deploylog

    monkeypatch.setattr(deploylog, "LINGER", 0.2)
    async with Logged().run_test(size=(80, 24)) as pilot:
        log = pilot.app.query_one(DeployLog)
        await pilot.pause()
        assert log.region.height == 0
        log.step(DeployStep(id=1, agent="alpha", step="building", detail=""))
        await until(pilot, lambda: log.region.height == 8, what="the log to show")
        assert log.rest_timer is None, "a deploy under way keeps its log on screen"
        log.event(Event(kind="ApprovalResolved", agent="alpha", id=1, status="approved", tag="deployed/1"))
        assert log.rest_timer is not None and log.region.height == 8
        await until(pilot, lambda: log.region.height == 0, what="the log to make room again")
        assert any("deployed/1" in line.text for line in log.lines)


# -- rows are drawn whole from the first frame ---------------------------------------------------------

async def test_rows_drawn_before_the_table_measures_them_are_whole():
    """A frame can be painted between rows being set and the table's next idle moment (a loaded
    machine, a big hive): its lines must hold the whole row then and after, never one cut to
    the width of the column's label."""
    rows = [AgentStatus(name=f"agent{i:02d}", running=True, deployed_sha="3f9a1c2b7d4e", active_model="sonnet",
                        status_text=f"working on task {i}") for i in range(20)]
    async with Clocked(Clock(NOW)).run_test(size=(100, 24)) as pilot:
        containers = pilot.app.query_one(ContainerTable)
        containers.set_rows(rows, {})
        early = drawn(containers, 0)
        await pilot.pause()
        for line in (early, drawn(containers, 0)):
            assert "agent00" in line and "● running" in line and "sonnet" in line, line
        assert "working on task 0" in drawn(containers, 1)


async def test_the_container_column_is_as_wide_as_its_widest_row_as_rows_change():
    """What the table would measure, kept as rows come, change and go: the cursor's bar is that wide."""
    def widest(table) -> int:
        return max(len(line) for name in table.rows for line in str(table.get_cell(name, "agent")).split("\n"))

    rows = [AgentStatus(name="alpha", running=True, status_text="a status " * 6),
            AgentStatus(name="beta", running=True, status_text="short")]
    async with Clocked(Clock(NOW)).run_test(size=(100, 24)) as pilot:
        containers = pilot.app.query_one(ContainerTable)
        containers.set_rows(rows, {})
        assert containers.columns["agent"].width == widest(containers) > len("  short (23s ago)")
        containers.update_row(AgentStatus(name="alpha", running=True, status_text="idle"))
        assert containers.columns["agent"].width == widest(containers)
        containers.update_row(AgentStatus(name="beta", running=True, status_text="a status " * 8))
        assert containers.columns["agent"].width == widest(containers)
        containers.set_transient("gamma", "Spawning")
        containers.set_transient("beta", None)
        containers.refilter("gam")
        await until(pilot, lambda: list(containers.rows) == ["gamma"], what="the filter")
        assert containers.columns["agent"].width == widest(containers)
        containers.refilter("")
        await until(pilot, lambda: containers.row_count == 3, what="the filter to clear")
        assert containers.columns["agent"].width == widest(containers)
        assert "a status a status" in drawn(containers, 3)
