"""The console's all-hosts view, driven by keys against real hosts: two real
`hive-tui serve` processes (one reached through a real sshd), the fake
hyperhive daemon, a socket nobody serves and a server that never answers."""

from __future__ import annotations

import socket

import pytest
from textual.command import CommandList

from hive_tui.app import HiveApp
from hive_tui.client.connect import open_client
from hive_tui.client.stream import UnixClient
from hive_tui.config import Host
from hive_tui.host import gitrepo
from hive_tui.widgets.fleet import FleetScreen

from .helpers import agent_files, until
from .hyperhive_daemon import sample_daemon
from .serving import ServerProcess, run_async, seeded_hive, stop_agents
from .sshd import start_sshd

SIZE = (180, 50)


async def opener(host: Host):
    return await open_client(host, redial_for=0)


def notes(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


def found(app, text: str) -> bool:
    """The command palette's first entry is `text`."""
    lists = app.screen.query(CommandList)
    return bool(lists) and lists.first().option_count > 0 and \
        lists.first().get_option_at_index(0).prompt.plain.startswith(text)


def screen_text(table) -> list[str]:
    return [table.get_row_at(i)[0].plain for i in range(table.row_count)]


@pytest.fixture
def hosts(tmp_path, monkeypatch):
    roots = {"a": tmp_path / "hive-a", "b": tmp_path / "hive-b"}
    seeded_hive(roots["a"], {"alpha": agent_files(), "beta": agent_files()})
    seeded_hive(roots["b"], {"gamma": agent_files()})
    servers = {"a": ServerProcess(roots["a"], tmp_path / "a.sock").start(),
               "b": ServerProcess(roots["b"], tmp_path / "b.sock").start()}
    sshd = start_sshd(tmp_path, monkeypatch)
    sshd.trust()
    # Listens, and never accepts nor answers: a host that hangs.
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow.bind(str(tmp_path / "slow.sock"))
    slow.listen(8)
    daemon = sample_daemon(tmp_path / "hh.sock").__enter__()
    listed = [
        Host("a", "unix", socket=str(servers["a"].sock), accent="red"),
        Host("b-ssh", "ssh", socket=str(servers["b"].sock), user=sshd.user, hostname="127.0.0.1", port=sshd.port),
        Host("hh", "unix", socket=str(daemon.sock)),
        Host("dead", "unix", socket=str(tmp_path / "dead.sock")),
        Host("slow", "unix", socket=str(tmp_path / "slow.sock")),
    ]
    try:
        yield listed, servers, daemon
    finally:
        daemon.close()
        slow.close()
        sshd.stop()
        for server in servers.values():
            server.kill()
        for root in roots.values():
            stop_agents(root)


def fleet_app(listed, **kwargs) -> HiveApp:
    async def connect(host):
        return await open_client(host, redial_for=0)

    return HiveApp(connect, hosts=listed, open_host=opener, all_hosts=True, **kwargs)


def status(sock, name: str):
    async def read():
        async with UnixClient(str(sock)) as client:
            return next(r for r in await client.status() if r.name == name)

    return run_async(read())


def test_every_host_in_one_view_none_holds_up_the_others(hosts):
    listed, servers, daemon = hosts
    proposals = []
    for agent in ("beta", "alpha"):
        gitrepo.commit_files(gitrepo.open_repo(servers["a"].root / "proposed" / agent), {"n.txt": b"1\n"}, "change")
        proposals.append(run_async(UnixClient(str(servers["a"].sock)).propose(agent, "main", "notes")))

    async def scenario():
        app = fleet_app(listed)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, FleetScreen), what="the all-hosts view")
            screen = app.screen
            table = screen.table
            # The first frame: a header line per host, before any host has answered.
            assert [line.split("  ·  ")[0] for line in screen_text(table)[:5]] == [
                "▌ a", "▌ b-ssh", "▌ hh", "▌ dead", "▌ slow"] or table.row_count > 5
            links = screen.fleet.links
            await until(pilot, lambda: all(links[h].link.state == "live" for h in ("a", "b-ssh", "hh")),
                        what="the answering hosts to go live")
            # The hanging host is still connecting: it held up none of the others.
            assert links["slow"].link.state == "connecting"
            await until(pilot, lambda: links["dead"].link.state == "unreachable", what="the dead host's state")
            # A host's rows are drawn on the turn after its link says so: wait for the screen.
            await until(pilot, lambda: [line.split()[0] for line in screen_text(table) if not line.startswith("▌")]
                        == ["alpha", "beta", "gamma", "north", "south", "west"], what="every answering host's rows")
            await until(pilot, lambda: "unreachable: " in [line for line in screen_text(table)
                                                          if line.startswith("▌")][3], what="the dead host's header")
            text = screen_text(table)
            headers = [line for line in text if line.startswith("▌")]
            assert "live" in headers[0] and "2 agents" in headers[0]
            assert "no rebuild, destroy, history, logs here" in headers[2]
            assert "unreachable: " in headers[3] and "next try in" in headers[3]
            assert "connecting…" in headers[4]

            # One queue, oldest first, each request labelled with its host.
            queue = [(r.host, r.approval.id) for r in screen.fleet.requests()]
            assert queue == [("hh", 1), ("hh", 2), ("hh", 3), ("a", proposals[0].id), ("a", proposals[1].id)]
            assert screen.requests.row_count == 5

            # Pause goes to the selected row's host: gamma, reached over SSH.
            screen.go_to("b-ssh", "gamma")
            await pilot.press("p")
            await until(pilot, lambda: links["b-ssh"].rows["gamma"].paused, what="gamma to be paused")

            # Approve host a's request from the one queue: its deploy log lines name the host.
            screen.requests.focus()
            screen.requests.move_cursor(row=3)
            await pilot.press("a")
            await until(pilot, lambda: any(line.text.startswith("a ApprovalResolved beta")
                                           for line in screen.log_view.lines), what="the deploy's outcome")
            assert [r.approval.id for r in screen.fleet.requests() if r.host == "a"] == [proposals[1].id]

            # Deny host a's other request with a reason, as the single-host view does.
            screen.requests.move_cursor(row=3)
            await pilot.press("n")
            await until(pilot, lambda: type(app.screen).__name__ == "PromptModal", what="the reason prompt")
            await pilot.press(*"not now", "enter")
            await until(pilot, lambda: not any(r.host == "a" for r in screen.fleet.requests()),
                        what="a's request to be denied")
            # hyperhive's daemon takes no reason: a plain yes or no.
            screen.requests.move_cursor(row=0)
            await pilot.press("n")
            await until(pilot, lambda: type(app.screen).__name__ == "ConfirmModal", what="the question")
            await pilot.press("y")
            await until(pilot, lambda: daemon.approvals[0]["status"] == "denied", what="hh's request to be denied")

    run_async(scenario(), timeout=240)
    assert status(servers["b"].sock, "gamma").paused
    assert [a["status"] for a in daemon.approvals] == ["denied", "pending", "pending"]
    client = UnixClient(str(servers["a"].sock))
    denied = run_async(client.approval(proposals[1].id))
    assert (denied.status, denied.note) == ("denied", "not now")


def test_marked_rows_across_hosts_one_bulk_action(hosts):
    listed, servers, daemon = hosts

    async def scenario():
        app = fleet_app(listed[:3])
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, FleetScreen), what="the all-hosts view")
            screen = app.screen
            links = screen.fleet.links
            await until(pilot, lambda: all(link.link.state == "live" and link.rows for link in links.values()),
                        what="every host to answer")
            for host, agent in (("a", "alpha"), ("b-ssh", "gamma"), ("hh", "north")):
                screen.go_to(host, agent)
                await pilot.press("space")
            assert screen.table.marks == {("a", "alpha"), ("b-ssh", "gamma"), ("hh", "north")}
            assert "3 marked on 3 hosts" in str(screen.progress.render())
            # Destroy stays one agent at a time.
            await pilot.press("d")
            assert any("acts on one agent at a time" in n for n in notes(app))
            # Rebuild: hyperhive's daemon has none, so north fails and the others are done.
            await pilot.press("b")
            await until(pilot, lambda: "3/3 done" in str(screen.progress.render())
                        or "2/3 done, 1 failed" in str(screen.progress.render()), what="the bulk rebuild to end")
            assert "2/3 done, 1 failed" in str(screen.progress.render())
            assert any("hh/north: rebuild is not available" in line.text for line in screen.log_view.lines)
            # The failed one stays marked; the rest are unmarked.
            assert screen.table.marks == {("hh", "north")}
            # Stop on what is marked, then on a fresh set across hosts.
            screen.go_to("a", "beta")
            await pilot.press("space")
            await pilot.press("x")
            await until(pilot, lambda: "2/2 done" in str(screen.progress.render()), what="the bulk stop")
            assert screen.table.marks == set()
            await until(pilot, lambda: not links["hh"].rows["north"].running and not links["a"].rows["beta"].running,
                        what="the pushed rows")

    run_async(scenario(), timeout=240)
    assert not status(servers["a"].sock, "beta").running
    assert not daemon.agents["north"].running


def test_read_only_hosts_hide_and_refuse_every_action(hosts):
    listed, servers, daemon = hosts
    read_only = [Host("a", "unix", socket=listed[0].socket, read_only=True), listed[2]]

    async def scenario():
        app = fleet_app(read_only)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, FleetScreen), what="the all-hosts view")
            screen = app.screen
            links = screen.fleet.links
            await until(pilot, lambda: all(link.link.state == "live" and link.rows for link in links.values()),
                        what="every host to answer")
            assert "1 of 2 hosts READ-ONLY" in screen.title
            assert "READ-ONLY" in screen_text(screen.table)[0]
            screen.go_to("a", "alpha")
            await pilot.pause()
            shown = {b.binding.action for b in screen.active_bindings.values() if screen.check_action(b.binding.action, ())}
            assert not shown & {"start", "stop", "pause", "restart", "rebuild", "destroy", "purge", "mark"}
            await pilot.press("p", "space", "x")
            await until(pilot, lambda: sum("a is READ-ONLY" in n for n in notes(app)) == 3,
                        what="each key to say why it was refused")
            assert not links["a"].rows["alpha"].paused and screen.table.marks == set()
            # The other host's keys are there.
            screen.go_to("hh", "north")
            await pilot.pause()
            assert screen.check_action("pause", ())

    run_async(scenario(), timeout=240)
    assert not status(servers["a"].sock, "alpha").paused and "set_paused" not in daemon.received


def test_the_single_host_view_read_only_and_its_accent(served):
    host = Host("prod", "unix", socket=str(served.sock), read_only=True, accent="red")

    async def scenario():
        async def connect(h):
            return await open_client(h, redial_for=0)

        app = HiveApp(connect, hosts=[host], host=host)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.link == "live" and app.containers.row_count == 2, what="the console")
            assert app.title == "hive-tui · READ-ONLY"
            header = app.query_one("Header")
            assert header.has_class("accented") and header.styles.background.hex == "#FF0000"
            app.containers.focus()
            app.containers.move_cursor(row=0)
            await pilot.press("p", "x")
            await until(pilot, lambda: sum("prod is READ-ONLY" in n or "READ-ONLY" in n for n in notes(app)) >= 2,
                        what="the refusals")
            assert not app.check_action("pause", ()) and app.check_action("help", ())

    run_async(scenario(), timeout=120)
    rows = {r.name: r for r in run_async(UnixClient(str(served.sock)).status())}
    assert not rows["alpha"].paused and rows["alpha"].running


def test_a_key_switches_between_one_host_and_every_host(hosts):
    listed, servers, daemon = hosts

    async def scenario():
        async def connect(h):
            return await open_client(h, redial_for=0)

        app = HiveApp(connect, hosts=listed[:3], host=listed[0], open_host=opener)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.link == "live", what="host a")
            await pilot.press("A")
            await until(pilot, lambda: isinstance(app.screen, FleetScreen), what="the all-hosts view")
            screen = app.screen
            await until(pilot, lambda: screen.fleet.links["hh"].rows, what="hh's rows")
            screen.go_to("hh", "south")
            await pilot.press("A")
            await until(pilot, lambda: app.host is not None and app.host.name == "hh" and app.link == "live"
                        and app.containers.row_count == 3, what="hh alone")
            assert not isinstance(app.screen, FleetScreen)
            # The palette has it too, both ways.
            await pilot.press("ctrl+p", *"All hosts")
            await until(pilot, lambda: found(app, "All hosts"), what="the palette's entry")
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, FleetScreen), what="the palette's all-hosts view")
            await pilot.press("ctrl+p", *"One host: a")
            await until(pilot, lambda: found(app, "One host: a"), what="the palette's entry")
            await pilot.press("enter")
            await until(pilot, lambda: not isinstance(app.screen, FleetScreen) and app.host.name == "a"
                        and app.link == "live", what="the palette's one host")

    run_async(scenario(), timeout=240)
