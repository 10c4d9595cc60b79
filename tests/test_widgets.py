"""The console's tables keep Textual's own members: Textual calls `visible`
and `_render` itself, for focus, compositing and auto sizing."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.selection import Selection

from hive_tui.models import AgentStatus, Approval
from hive_tui.widgets.approvals import ApprovalTable
from hive_tui.widgets.containers import ContainerTable


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
