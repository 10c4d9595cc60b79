"""The roster grouped by parent: the engine's rows carry each agent's parent
from its agent.yaml, and the console groups its lists under them."""

from __future__ import annotations

import pytest

from hive_tui.app import HiveApp
from hive_tui.client.connect import open_client
from hive_tui.client.stream import UnixClient
from hive_tui.config import Host
from hive_tui.errors import BuildFailed
from hive_tui.host.agentconf import parse_agent_config
from hive_tui.host.engine import Engine
from hive_tui.host.template import agent_yaml
from hive_tui.models import AgentStatus
from hive_tui.roster import group_by_parent
from hive_tui.settings import Settings
from hive_tui.widgets.containers import header_key
from hive_tui.widgets.fleet import FleetScreen

from .helpers import IDLE, agent_files, propose, until
from .hyperhive_daemon import Agent, HyperhiveDaemon
from .scripted import HOSTS, NOW, ROWS, ScriptedClient
from .serving import ServerProcess, seeded_hive, stop_agents
from .test_snapshots import settled as snapshot_settled


def rows(root) -> dict:
    with Engine(root, locker="builtin") as engine:
        return {r.name: r for r in engine.status()}


def test_rows_carry_the_parent_agent_yaml_names(tmp_path):
    root = tmp_path / "hive"
    seeded_hive(root, {"lead": agent_files(), "helper": {"agent.yaml": agent_yaml(IDLE, parent="lead")}})
    try:
        got = rows(root)
        assert got["helper"].parent == "lead" and got["lead"].parent is None
        assert got["helper"].to_wire()["parent"] == "lead"
    finally:
        stop_agents(root)


def test_a_deploy_moves_the_agent_under_its_new_parent(tmp_path):
    root = tmp_path / "hive"
    seeded_hive(root, {"lead": agent_files(), "helper": agent_files()})
    try:
        with Engine(root, locker="builtin") as engine:
            approval = propose(engine, "helper", {"agent.yaml": agent_yaml(IDLE, parent="lead")})
            engine.approve(approval.id)
            assert engine.agent_status("helper").parent == "lead"
    finally:
        stop_agents(root)


@pytest.mark.parametrize("parent", ["[red]x[/red]", "a\x1b]0;pwned\x07", "A", "", 7, ["lead"], "x" * 100])
def test_a_parent_that_is_no_agent_name_is_refused(parent):
    text = agent_yaml(IDLE) + f"parent: {__import__('json').dumps(parent)}\n".encode()
    with pytest.raises(BuildFailed, match="`parent` must be an agent name"):
        parse_agent_config(text)


def test_a_hostile_parent_on_disk_is_left_out_of_the_row(tmp_path):
    root = tmp_path / "hive"
    seeded_hive(root, {"helper": agent_files()})
    try:
        # Written past the deploy's checks: the row leaves it out, and the rest of the row stands.
        (root / "applied" / "helper" / "agent.yaml").write_bytes(
            agent_yaml(IDLE) + b'parent: "[b]x\\e]0;t\\a"\n')
        got = rows(root)["helper"]
        assert got.parent is None and got.running
        (root / "applied" / "helper" / "agent.yaml").unlink()
        (root / "applied" / "helper" / "agent.yaml").symlink_to("/etc/hostname")
        assert rows(root)["helper"].parent is None
    finally:
        stop_agents(root)


def test_groups_are_flat_top_first_then_by_parent():
    rows = {n: AgentStatus(n, running=n != "d", failed=n == "e", parent=p)
            for n, p in [("a", None), ("b", "z"), ("c", "a"), ("d", "a"), ("e", ""), ("f", "c")]}
    rows["g"] = None  # being spawned: no row yet
    # A daemon's parent that is no string (decoding leaves the wire's types as sent).
    rows["h"] = AgentStatus.from_wire({"name": "h", "parent": 7})
    rows["i"] = AgentStatus.from_wire({"name": "i", "parent": {"x": 1}})
    groups = group_by_parent(rows, {"b": "Restarting"})
    assert [(g.parent, g.names, g.running, g.total, g.faulty) for g in groups] == [
        (None, ("a", "e", "g", "h", "i"), 2, 5, True), ("a", ("c", "d"), 1, 2, False),
        ("c", ("f",), 1, 1, False), ("z", ("b",), 1, 1, True)]


# -- the single-host console ------------------------------------------------------------

# Runs until its state folder goes, or exits 3 (a failure) once told to by a file there.
CRASHABLE = ["sh", "-c", 'echo started; while [ -d "$HIVE_AGENT_STATE" ]; do '
             'if [ -e "$HIVE_AGENT_STATE/crash" ]; then exit 3; fi; sleep 0.2; done']
SIZE = (160, 48)
TOP, LEAD, GHOST = header_key(None), header_key("lead"), header_key("ghost")


@pytest.fixture
def served(tmp_path):
    """A real `hive-tui serve` on a hive whose agents have parents: lead and solo have
    none, helper-a and helper-b sit under lead, orphan under ghost (no such agent)."""
    root = tmp_path / "hive"
    seeded_hive(root, {
        "lead": agent_files(), "solo": agent_files(),
        "helper-a": {"agent.yaml": agent_yaml(CRASHABLE, parent="lead")},
        "helper-b": {"agent.yaml": agent_yaml(IDLE, parent="lead")},
        "orphan": {"agent.yaml": agent_yaml(IDLE, parent="ghost")},
    })
    server = ServerProcess(root, tmp_path / "host.sock").start()

    async def connect(host):
        return UnixClient(str(server.sock))

    try:
        yield root, connect
    finally:
        server.kill()
        stop_agents(root)


def keys(table) -> list:
    return [key.value for key in table.rows]


def cell(table, key) -> str:
    return table.get_cell(key, "agent").plain


def notes(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def started(pilot, rows: int) -> HiveApp:
    app = pilot.app
    await until(pilot, lambda: app.link == "live" and app.containers.row_count == rows, what="the console")
    return app


GROUPED = [TOP, "lead", "solo", GHOST, "orphan", LEAD, "helper-a", "helper-b"]


async def test_g_groups_the_list_under_parents_and_the_cursor_stays(served):
    root, connect = served
    async with HiveApp(connect).run_test(size=SIZE) as pilot:
        app = await started(pilot, 5)
        table = app.containers
        assert keys(table) == ["helper-a", "helper-b", "lead", "orphan", "solo"]
        table.move_cursor(row=table.get_row_index("helper-b"))
        await pilot.press("g")
        # The agents with no parent first, then each parent's group by name; a header counts running agents.
        assert keys(table) == GROUPED
        assert app.selected_agent() == "helper-b"
        assert cell(table, TOP).startswith("▾ no parent") and "2/2 running" in cell(table, TOP)
        assert "▾ lead" in cell(table, LEAD) and "2/2 running" in cell(table, LEAD)
        assert "▾ ghost" in cell(table, GHOST) and "1/1 running" in cell(table, GHOST)
        # Back to every agent by name, the cursor still on its agent.
        await pilot.press("g")
        assert keys(table) == ["helper-a", "helper-b", "lead", "orphan", "solo"]
        assert app.selected_agent() == "helper-b"


async def test_the_setting_groups_from_the_start_and_counts_follow_the_engine(served):
    root, connect = served
    async with HiveApp(connect, settings=Settings(group_by_parent=True)).run_test(size=SIZE) as pilot:
        app = await started(pilot, 8)
        table = app.containers
        assert keys(table) == GROUPED
        table.move_cursor(row=table.get_row_index("helper-b"))
        await pilot.press("x")
        await until(pilot, lambda: "1/2 running" in cell(table, LEAD), what="lead's group to count the stop")
        assert (root / "containers" / "helper-b" / "stopped").exists()
        assert "2/2 running" in cell(table, TOP)
        await pilot.press("s")
        await until(pilot, lambda: "2/2 running" in cell(table, LEAD), what="lead's group to count the start")
        assert keys(table) == GROUPED


async def test_fold_and_unfold_and_a_folded_group_shows_a_failure(served):
    root, connect = served
    async with HiveApp(connect, settings=Settings(group_by_parent=True)).run_test(size=SIZE) as pilot:
        app = await started(pilot, 8)
        table = app.containers
        table.move_cursor(row=table.get_row_index("helper-a"))
        await pilot.press("z")
        # Folded into its header, the cursor on it; the other groups as they were.
        assert keys(table) == [TOP, "lead", "solo", GHOST, "orphan", LEAD]
        assert table.on_header() and table.cursor_row == keys(table).index(LEAD)
        assert cell(table, LEAD).startswith("▸ lead") and "folded: 2 agents" in cell(table, LEAD)
        assert "needs you" not in cell(table, LEAD)
        # One of its agents fails: the folded header says so.
        (root / "agents" / "helper-a" / "crash").touch()
        await until(pilot, lambda: "needs you" in cell(table, LEAD), what="the folded group's fault badge")
        assert app.containers.rows_by_name["helper-a"].failed and "1/2 running" in cell(table, LEAD)
        # The fold stays through a fresh read of the hive (a reconnect does one).
        await app.reload()
        assert keys(table) == [TOP, "lead", "solo", GHOST, "orphan", LEAD]
        # Enter on a header unfolds it; the failed agent shows its own badge.
        await pilot.press("enter")
        assert keys(table) == GROUPED and "failed" in cell(table, "helper-a")
        assert cell(table, LEAD).startswith("▾ lead")
        await pilot.press("z")
        assert LEAD in keys(table) and "helper-a" not in keys(table)
        await pilot.press("z")
        assert keys(table) == GROUPED
        # Jumping to an agent of a folded group unfolds it.
        await pilot.press("z")
        app.jump_to("helper-b")
        assert keys(table) == GROUPED and app.selected_agent() == "helper-b"


async def test_faults_only_shows_the_groups_of_the_agents_that_need_you(served):
    root, connect = served
    async with HiveApp(connect, settings=Settings(group_by_parent=True)).run_test(size=SIZE) as pilot:
        app = await started(pilot, 8)
        table = app.containers
        (root / "agents" / "helper-a" / "crash").touch()
        await until(pilot, lambda: "failed" in cell(table, "helper-a"), what="helper-a to fail")
        await pilot.press("f")
        await until(pilot, lambda: keys(table) == [LEAD, "helper-a"], what="the faults-only view")
        # The header still counts every agent of its group; the title counts only what the view hides.
        assert "1/2 running" in cell(table, LEAD)
        assert table.pane_title == "Containers · faults only · 4 hidden"
        # Folded, the group's agent is tucked away, not hidden.
        await pilot.press("z")
        assert keys(table) == [LEAD] and "needs you" in cell(table, LEAD)
        assert table.pane_title == "Containers · faults only · 4 hidden"
        # A theme switch builds the rows again, as they were laid out.
        app.theme = "textual-light" if app.theme != "textual-light" else "textual-dark"
        await until(pilot, lambda: keys(table) == [LEAD] and "needs you" in cell(table, LEAD) and
                    not table.cells.get("helper"), what="the rows built again")


async def test_a_header_is_no_agent(served):
    root, connect = served
    async with HiveApp(connect, settings=Settings(group_by_parent=True)).run_test(size=SIZE) as pilot:
        app = await started(pilot, 8)
        table = app.containers
        table.move_cursor(row=table.get_row_index(LEAD))
        for key in ("x", "r", "p", "d", "D", "space"):
            await pilot.press(key)
            await until(pilot, lambda: "select an agent: that is a group's header line" in notes(app),
                        what=f"{key} to be refused")
            app.clear_notifications()
        assert app.screen is app.screen_stack[0] and not table.marks
        # Marks skip the headers: Space on solo goes on to orphan, past ghost's header.
        table.move_cursor(row=table.get_row_index("solo"))
        await pilot.press("space", "space")
        assert table.marks == {"solo", "orphan"} and app.selected_agent() == "helper-a"
        # The filter shows a group's header only when one of its agents matches; the header counts them all.
        await pilot.press("slash", *"helper-b")
        await until(pilot, lambda: keys(table) == [LEAD, "helper-b"], what="the filter")
        assert "2/2 running" in cell(table, LEAD)
    assert all((root / "containers" / n / "run.json").exists() for n in ("lead", "solo", "helper-a"))
    assert not any((root / "containers" / n / "stopped").exists() for n in ("lead", "solo", "helper-a", "helper-b"))


# -- every host at once --------------------------------------------------------------------

HOSTILE = "\x1b]0;pwned\x07[b]boss[/b]"


def fleet_lines(table) -> list[str]:
    return [table.get_row_at(i)[0].plain for i in range(table.row_count)]


async def test_every_host_nests_its_groups_under_its_header(tmp_path):
    root = tmp_path / "hive-a"
    seeded_hive(root, {"lead": agent_files(), "helper": {"agent.yaml": agent_yaml(IDLE, parent="lead")}})
    server = ServerProcess(root, tmp_path / "a.sock").start()
    daemon = HyperhiveDaemon(tmp_path / "hh.sock", {
        "north": Agent("north"), "south": Agent("south", parent="north"),
        "west": Agent("west", running=False, parent=HOSTILE)}).__enter__()
    hosts = [Host("a", "unix", socket=str(server.sock)), Host("hh", "unix", socket=str(daemon.sock))]

    async def connect(host):
        return await open_client(host, redial_for=0)

    try:
        app = HiveApp(connect, hosts=hosts, open_host=connect, all_hosts=True,
                      settings=Settings(group_by_parent=True))
        async with app.run_test(size=(180, 50)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, FleetScreen), what="the all-hosts view")
            screen = app.screen
            table = screen.table
            await until(pilot, lambda: table.row_count == 12, what="both hosts' rows")
            lines = fleet_lines(table)
            # Host header, then its groups (no parent first, then by parent), each with its agents.
            assert [line.split()[0] for line in lines] == [
                "▌", "▾", "lead", "▾", "helper", "▌", "▾", "north", "▾", "west", "▾", "south"]
            assert lines[0].startswith("▌ a") and lines[5].startswith("▌ hh")
            assert [lines[i].split("  ")[0].strip() for i in (1, 3, 6, 10)] == [
                "▾ no parent", "▾ lead", "▾ no parent", "▾ north"]
            assert "1/1 running" in lines[3] and "1/1 running" in lines[6]
            # A hostile parent is plain text on its header.
            assert lines[8].startswith(" ▾ \\x1b]0;pwned\\x07") and "0/1 running" in lines[8]
            assert "\x1b" not in "".join(lines) and "\x07" not in "".join(lines)
            # Counts follow a stop the daemon pushes.
            screen.go_to("hh", "south")
            await pilot.press("x")
            await until(pilot, lambda: "0/1 running" in fleet_lines(table)[10], what="north's group to count it")
            # Fold a group on one host; the same parent's group on another host stays open.
            screen.go_to("a", "helper")
            await pilot.press("z")
            assert "helper" not in [line.split()[0] for line in fleet_lines(table)]
            assert table.on_group_header() and fleet_lines(table)[table.cursor_row].startswith(" ▸ lead")
            assert "folded: 1 agent" in fleet_lines(table)[table.cursor_row]
            # A header is no agent.
            await pilot.press("x")
            await until(pilot, lambda: any("select an agent: that is a group's header line" in str(n.message)
                                           for n in app._notifications), what="the refusal")
            # Enter unfolds; going to an agent of a folded group unfolds it too.
            await pilot.press("enter")
            assert "helper" in [line.split()[0] for line in fleet_lines(table)]
            await pilot.press("z")
            assert "helper" not in [line.split()[0] for line in fleet_lines(table)]
            screen.go_to("a", "helper")
            assert screen.selected() == ("a", "helper")
            # g lists every host's agents by name again.
            await pilot.press("g")
            assert [line.split()[0] for line in fleet_lines(table)] == [
                "▌", "helper", "lead", "▌", "north", "south", "west"]
        assert (root / "containers" / "helper" / "run.json").exists()
        assert not (root / "containers" / "helper" / "stopped").exists()
        assert not daemon.agents["south"].running and daemon.agents["north"].running
    finally:
        daemon.close()
        server.kill()
        stop_agents(root)


# -- how it looks ------------------------------------------------------------------------

PARENTS = {"bramble": "atlas", "cinder": "atlas", "fjord": "heron", "gale": "heron", "ibis": "heron"}


class GroupedClient(ScriptedClient):
    """The snapshots' hive, with a small topology: atlas and heron lead groups."""

    async def request(self, message: dict) -> dict:
        answer = await super().request(message)
        if message["cmd"] == "agent_status":
            answer["agent_statuses"] = [{**row, "parent": PARENTS.get(row["name"])} for row in ROWS]
        return answer


def test_the_grouped_list_with_a_folded_group(snap_compare):
    """atlas's group folded, with the fault badge for its failed bramble; heron's open."""
    async def connect(host):
        return GroupedClient()

    async def folded(pilot):
        await snapshot_settled(pilot)
        app = pilot.app
        app.containers.move_cursor(row=app.containers.get_row_index("bramble"))
        await pilot.press("z")
        await pilot.pause()

    app = HiveApp(connect, hosts=HOSTS, now=lambda: NOW, pulse=False, settings=Settings(group_by_parent=True))
    assert snap_compare(app, terminal_size=(150, 40), run_before=folded)


async def test_no_agent_name_passes_for_a_header():
    """A daemon may name an agent anything, the text of a header's key too: it stays an agent's row."""
    from textual.app import App

    from hive_tui.widgets.containers import ContainerTable

    impostor = str.__str__(header_key("lead"))
    rows = [AgentStatus("helper", running=True, parent="lead"), AgentStatus(impostor, running=True)]

    class One(App):
        def compose(self):
            yield ContainerTable(pulse=False, grouped=True)

    app = One()
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.query_one(ContainerTable)
        table.set_rows(rows, {})
        await pilot.pause()
        assert keys(table) == [TOP, impostor, LEAD, "helper"]
        assert type(keys(table)[1]) is str and keys(table)[1] != LEAD and LEAD != keys(table)[1]
        table.move_cursor(row=1)
        assert table.selected() == impostor and not table.on_header()
        table.move_cursor(row=2)
        assert table.selected() is None and table.on_header()
