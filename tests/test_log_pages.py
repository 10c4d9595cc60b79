"""An agent's log read by page: the stamps the supervisor writes, rotation
with stable line numbers, following across a rotation, a log of a million
lines, hostile content, and the verbs' checks."""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
from contextlib import aclosing
from pathlib import Path

import pytest

from hive_tui.cli import build_parser, main
from hive_tui.client.base import Unavailable
from hive_tui.client.embedded import EmbeddedClient
from hive_tui.client.stream import UnixClient
from hive_tui.errors import HiveError
from hive_tui.host import logindex
from hive_tui.host.dispatch import Dispatcher
from hive_tui.host.engine import Engine
from hive_tui.host.logindex import AgentLog
from hive_tui.host.logstream import follow_file
from hive_tui.host.policy import MANAGER
from hive_tui.host.runtime.supervisor import LINE_MAX, HiveSupervisor
from hive_tui.models import LogPage

from .helpers import IDLE, agent_files, stop_all, wait_for, write_stamped_log
from .serving import ServerProcess, seeded_hive, stop_agents

STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def counting(lines: int, then: str = 'while [ -d "$HIVE_AGENT_STATE" ]; do sleep 1; done') -> list[str]:
    """An agent that prints `line 0` .. `line N-1`, then idles until its state folder goes."""
    return ["sh", "-c", f'i=0; while [ $i -lt {lines} ]; do echo "line $i"; i=$((i+1)); done; {then}']


def ask(engine: Engine, **request) -> dict:
    async def go() -> dict:
        return await Dispatcher(engine).handle(request)

    return asyncio.run(go())


def page(engine: Engine, name: str, start: int | None, count: int) -> dict:
    answer = ask(engine, cmd="log_page", name=name, start=start, count=count)
    assert answer["ok"], answer
    return answer


@pytest.fixture
def rotating(hive_root: Path):
    """An engine whose agents' logs rotate at 4 KiB."""
    e = Engine(hive_root, locker="builtin", runtime_options={"stop_grace": 2.0, "log_max_bytes": 4096})
    try:
        yield e
    finally:
        stop_all(e)
        e.close()


def run_supervised(folder: Path, argv: list[str], log_max: int = 1 << 20) -> tuple[HiveSupervisor, tuple]:
    """`argv` run by a hive's real supervisor, its records and log in `folder`."""
    folder.mkdir(exist_ok=True)
    supervisor = HiveSupervisor(folder.parent)
    fd = os.open(folder / "log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        started = supervisor.start(folder, argv, folder.parent, dict(os.environ), fd, log_max)
    finally:
        os.close(fd)
    assert started is not None
    return supervisor, started


# -- the supervisor stamps each line ---------------------------------------------


def test_each_line_an_agent_writes_carries_the_time_the_host_wrote_it(engine):
    engine.install_agent("alpha", agent_files(run=counting(3)))
    wait_for(lambda: page(engine, "alpha", None, 10)["total"] >= 3, what="three lines")
    answer = page(engine, "alpha", 0, 10)
    assert [(line["n"], line["text"]) for line in answer["lines"]] == [(0, "line 0"), (1, "line 1"), (2, "line 2")]
    assert all(STAMP.fullmatch(line["at"]) for line in answer["lines"])
    assert (answer["first"], answer["total"]) == (0, 3)
    # On disk: the stamp, a space, the agent's text.
    raw = (engine.state.container("alpha") / "log").read_text().splitlines()
    assert [STAMP.match(line) is not None and line[25:] for line in raw] == ["line 0", "line 1", "line 2"]
    # `logs` keeps giving the agent's text alone.
    assert engine.logs("alpha", 2) == ["line 1", "line 2"]


def test_the_exit_line_is_stamped_and_a_partial_last_line_is_ended_first(tmp_path):
    folder = tmp_path / "agent"
    supervisor, started = run_supervised(folder, ["sh", "-c", "echo one; printf 'no newline'; exit 2"])
    assert supervisor.wait_recorded(*started)
    lines = (folder / "log").read_text().split("\n")
    assert lines[-1] == ""
    assert [STAMP.match(line) is not None and line[25:] for line in lines[:-1]] == [
        "one", "no newline", "[hive-tui] sh exited with code 2"]


def test_hostile_output_stays_the_agents_text_and_is_bounded(tmp_path):
    folder = tmp_path / "agent"
    script = ("echo '2001-02-03T04:05:06.789Z a stamp of its own';"
              "printf 'bin\\377\\001\\033[31mred\\n';"
              f"head -c {3 * LINE_MAX} /dev/zero | tr '\\0' x; echo; echo after")
    supervisor, started = run_supervised(folder, ["sh", "-c", script])
    assert supervisor.wait_recorded(*started)
    log = AgentLog(folder)
    got = log.page(0, 10).lines
    texts = [line.text for line in got]
    assert texts[0] == "2001-02-03T04:05:06.789Z a stamp of its own"
    assert got[0].at is not None and not got[0].at.startswith("2001")
    assert texts[1] == "bin\ufffd\x01\x1b[31mred"
    # The long line was cut where it was written, with a note of ours.
    assert texts[2] == "x" * LINE_MAX + f" [hive-tui: the rest of this line was cut at {LINE_MAX} bytes]"
    assert texts[3:] == ["after", "[hive-tui] sh exited with code 0"]
    assert (folder / "log").stat().st_size < 2 * LINE_MAX


# -- rotation --------------------------------------------------------------------


def test_rotation_keeps_each_lines_number_across_the_kept_file(rotating, hive_root):
    rotating.install_agent("alpha", agent_files(run=counting(400)))
    cdir = rotating.state.container("alpha")
    wait_for(lambda: page(rotating, "alpha", None, 1)["total"] >= 400, what="the agent's 400 lines")
    assert (cdir / "log.1").exists() and (cdir / "log").stat().st_size < 4096 + 100
    answer = page(rotating, "alpha", 0, 1000)
    first, total = answer["first"], answer["total"]
    assert 0 < first < 399 and total == 400
    # The page starts at the oldest line kept and reads across log.1 and log.
    assert [line["n"] for line in answer["lines"]] == list(range(first, 400))
    assert all(line["text"] == f"line {line['n']}" for line in answer["lines"])
    kept_lines = len((cdir / "log.1").read_bytes().splitlines())
    assert first + kept_lines < 400  # some of the page came from each file
    # A page asked from before `first` starts at `first`; its last lines are the log's last.
    assert page(rotating, "alpha", 0, 3)["lines"][0]["n"] == first
    assert [line["n"] for line in page(rotating, "alpha", None, 3)["lines"]] == [397, 398, 399]
    # Indexed afresh (as by another engine), the lines keep their numbers.
    logindex._LOGS.clear()
    assert page(rotating, "alpha", None, 1000)["lines"] == answer["lines"]
    # The agent restarted: its new lines go on from the old ones' numbers.
    rotating.restart("alpha")
    wait_for(lambda: page(rotating, "alpha", None, 1)["total"] >= 801, what="the restarted agent's lines")
    after = page(rotating, "alpha", 0, 1000)
    # Line 400 is the stopped agent's exit; 401 on, the new run's.
    assert after["first"] > first and after["total"] == 801
    assert [line["n"] for line in after["lines"]] == list(range(after["first"], 801))
    assert all(line["text"] == f"line {line['n'] - 401}" for line in after["lines"] if line["n"] > 400)


def test_a_follower_goes_on_across_a_rotation(tmp_path):
    folder = tmp_path / "agent"
    folder.mkdir()
    # A gate of its own for each burst, each opened once from either side: a reader of a
    # shared gate could open it while the last writer had not yet closed it, read its end
    # and run ahead. The test's end is held open for reading and writing, so its "go"
    # waits in the gate for the agent and never blocks the test.
    gates = [tmp_path / f"gate{k}" for k in range(3)]
    for gate in gates:
        os.mkfifo(gate)
    held: list[int] = []
    # Three bursts of 100 lines (about 3.3 KiB each, against a log rotated at
    # 4 KiB), each once the follower has read the one before.
    script = (f'echo ready; i=0; while [ $i -lt 300 ]; do if [ $((i % 100)) = 0 ]; then '
              f'read go < "{tmp_path}/gate$((i / 100))"; fi; echo "line $i"; i=$((i+1)); done')

    async def go() -> list[str]:
        seen: list[str] = []
        async with aclosing(follow_file(folder / "log", 10)) as followed:
            async for line in followed:
                seen.append(line)
                if line in ("ready", "line 99", "line 199"):
                    held.append(os.open(gates[len(held)], os.O_RDWR))
                    os.write(held[-1], b"go\n")
                if line == "line 299":
                    break
        return seen

    supervisor, started = run_supervised(folder, ["sh", "-c", script], log_max=4096)

    async def bounded() -> list[str]:
        return await asyncio.wait_for(go(), 60)

    try:
        seen = asyncio.run(bounded())
    finally:
        for fd in held:
            os.close(fd)
    assert supervisor.wait_recorded(*started)
    assert seen == ["ready", *(f"line {i}" for i in range(300))]
    assert (folder / "log.1").exists()
    assert STAMP.match((folder / "log.1").read_text())


def test_a_follower_that_missed_a_rotation_reads_the_kept_file(tmp_path):
    async def go() -> list[str]:
        seen: list[str] = []
        async with aclosing(follow_file(tmp_path / "log", 10)) as followed:
            write_stamped_log(tmp_path / "log", 2)
            async for line in followed:
                seen.append(line)
                if line == "line 1":
                    # Two rotations before the follower looks again: log.1 holds lines 2-3, log line 4.
                    os.rename(tmp_path / "log", tmp_path / "old")
                    write_stamped_log(tmp_path / "log.1", 2, first=2)
                    write_stamped_log(tmp_path / "log", 1, first=4)
                if line == "line 4":
                    break
        return seen

    assert asyncio.run(asyncio.wait_for(go(), 30)) == [f"line {i}" for i in range(5)]


# -- a log of a million lines ------------------------------------------------------


@pytest.fixture(scope="module")
def million(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("million")
    write_stamped_log(folder / "log", 1_000_000, start="2026-01-01T00:00:00Z", every_ms=1)
    return folder


def test_a_million_line_log_answers_pages_at_its_start_middle_and_end(million):
    log = AgentLog(million)
    head = log.page(0, 3)
    assert (head.first, head.total) == (0, 1_000_000)
    assert [(x.n, x.at, x.text) for x in head.lines] == [
        (0, "2026-01-01T00:00:00.000Z", "line 0"), (1, "2026-01-01T00:00:00.001Z", "line 1"),
        (2, "2026-01-01T00:00:00.002Z", "line 2")]
    middle = log.page(500_000, 2).lines
    assert [(x.n, x.at, x.text) for x in middle] == [(500_000, "2026-01-01T00:08:20.000Z", "line 500000"),
                                                     (500_001, "2026-01-01T00:08:20.001Z", "line 500001")]
    tail = log.page(None, 10_000).lines
    assert (tail[0].n, tail[-1].n, tail[-1].text) == (990_000, 999_999, "line 999999")
    assert log.page(2_000_000, 5).lines == []


def test_a_million_line_log_finds_a_time_and_a_text(million):
    log = AgentLog(million)
    assert log.since("2026-01-01T00:08:20Z") == 500_000
    assert log.since("2026-01-01T01:08:20+01:00") == 500_000  # the same time, with an offset
    assert log.since("2025-12-31T00:00:00Z") == 0
    assert log.since("2027-01-01T00:00:00Z") == 1_000_000
    assert log.find("LINE 999999", 0) == (999_999, None)
    assert log.find("ine 500012", 500_000) == (500_012, None)
    assert log.find("line 12", 500_000) == (None, None)
    assert log.find("line 10", 999_999, backward=True) == (109_999, None)
    assert log.find("no such text", 0) == (None, None)
    # The stamp is ours, never the agent's text: a time finds no line.
    assert log.find("2026-01-01T00:00:00.000Z", 0) == (None, None)


def test_a_search_that_runs_out_of_its_share_says_where_to_go_on(million, monkeypatch):
    monkeypatch.setattr(logindex, "FIND_BUDGET", 1 << 20)
    log = AgentLog(million)
    line, on = log.find("line 999998", 0)
    assert line is None and 0 < on < 999_998
    line, back = log.find("line 3 ", 1_000_000, backward=True)
    assert line is None and 3 < back < 1_000_000

    async def go() -> int | None:
        async with EmbeddedClient(engine) as client:
            return await client.log_find("alpha", "line 999998", 0)

    # The typed client asks again from there until it finds the line.
    engine = Engine(million.parent / "hive", locker="builtin")
    engine.install_agent("alpha", agent_files(run=["sh", "-c", "exit 0"]))
    cdir = engine.state.container("alpha")
    wait_for(lambda: (cdir / "exit.json").exists(), what="the agent to exit")
    os.unlink(cdir / "log")
    os.link(million / "log", cdir / "log")
    assert asyncio.run(go()) == 999_998


# -- the verbs -----------------------------------------------------------------------


def test_the_verbs_answer_through_the_typed_client(hive_root):
    engine = Engine(hive_root, locker="builtin", runtime_options={"stop_grace": 2.0})
    engine.install_agent("alpha", agent_files(run=counting(5)))
    wait_for(lambda: engine.log_page("alpha", None, 10).total >= 5, what="five lines")

    async def go():
        async with EmbeddedClient(engine) as client:
            try:
                first = await client.log_page("alpha", 0, 2)
                last = await client.log_page("alpha", None, 2)
                found = await client.log_find("alpha", "LINE 3", 0)
                back = await client.log_find("alpha", "line", 3, backward=True)
                none = await client.log_find("alpha", "nothing", 0)
                since = await client.log_since("alpha", first.lines[1].at)
                later = await client.log_since("alpha", "2999-01-01T00:00:00Z")
                return first, last, found, back, none, since, later
            finally:
                stop_all(engine)

    first, last, found, back, none, since, later = asyncio.run(go())
    assert [line.text for line in first.lines] == ["line 0", "line 1"]
    assert [line.text for line in last.lines] == ["line 3", "line 4"]
    assert (found, back, none, later) == (3, 2, None, 5)
    assert since <= 1


@pytest.mark.parametrize("request_, error", [
    ({"cmd": "log_page", "name": "alpha", "count": 0}, "count must be between 1 and 10000"),
    ({"cmd": "log_page", "name": "alpha", "count": 10_001}, "count must be between 1 and 10000"),
    ({"cmd": "log_page", "name": "alpha", "count": "5"}, "field `count` must be an integer"),
    ({"cmd": "log_page", "name": "alpha", "start": -1, "count": 5}, "start must be a line number"),
    ({"cmd": "log_page", "name": "alpha", "start": True, "count": 5}, "field `start` must be an integer"),
    ({"cmd": "log_page", "name": "alpha"}, "missing field `count`"),
    ({"cmd": "log_page", "name": "nobody", "count": 5}, "nobody"),
    ({"cmd": "log_page", "name": "../x", "count": 5}, "name"),
    ({"cmd": "log_find", "name": "alpha", "text": "", "start": 0}, "text must be 1 to 1000 characters"),
    ({"cmd": "log_find", "name": "alpha", "text": "x" * 1001, "start": 0}, "text must be 1 to 1000 characters"),
    ({"cmd": "log_find", "name": "alpha", "text": "a\nb", "start": 0}, "text must be on one line"),
    ({"cmd": "log_find", "name": "alpha", "text": "x", "start": -5}, "start must be a line number"),
    ({"cmd": "log_find", "name": "alpha", "text": "x"}, "missing field `start`"),
    ({"cmd": "log_since", "name": "alpha", "at": "yesterday"}, "at must be an RFC 3339 time"),
    ({"cmd": "log_since", "name": "alpha", "at": "2026-01-01T00:00:00"}, "at must be an RFC 3339 time"),
    ({"cmd": "log_since", "name": "alpha", "at": 5}, "field `at` must be a string"),
])
def test_bad_fields_are_refused_by_name(engine, request_, error):
    engine.install_agent("alpha", agent_files(run=IDLE))
    answer = ask(engine, **request_)
    assert answer["ok"] is False and error in answer["error"], answer


def test_the_managers_socket_refuses_the_log_verbs_as_it_refuses_logs():
    for verb in ("logs", "log_page", "log_find", "log_since"):
        assert "is the operator's" in MANAGER.refusal(verb)


def test_a_runtime_without_a_log_file_answers_not_available(hive_root, monkeypatch):
    engine = Engine(hive_root, locker="builtin", runtime_options={"stop_grace": 2.0})
    engine.install_agent("alpha", agent_files(run=IDLE))
    # As the nixos runtime: its logs are in the journal.
    monkeypatch.setattr(engine.runtime, "log_file", lambda name: None)
    answer = ask(engine, cmd="log_page", name="alpha", start=None, count=5)
    assert answer["ok"] is False and "not available on this host" in answer["error"]

    async def go() -> list[str]:
        async with EmbeddedClient(engine) as client:
            try:
                refused = []
                for call in (client.log_page("alpha", None, 5), client.log_find("alpha", "x", 0),
                             client.log_since("alpha", "2026-01-01T00:00:00Z")):
                    with pytest.raises(Unavailable) as e:
                        await call
                    refused.append(str(e.value))
                return refused
            finally:
                stop_all(engine)

    assert all("not available on this host" in why for why in asyncio.run(go()))


# -- files that are not what they should be ----------------------------------------------


def test_a_fifo_or_a_link_named_log_reads_as_no_lines(tmp_path):
    outside = tmp_path / "outside"
    write_stamped_log(outside, 5)
    folder = tmp_path / "agent"
    folder.mkdir()
    os.mkfifo(folder / "log")
    os.symlink(outside, folder / "log.1")
    (folder / "log.base").symlink_to(outside)
    done = threading.Event()
    result: list = []

    def read() -> None:
        result.append(AgentLog(folder).page(None, 5))
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(10), "a FIFO named log held the reader"
    assert (result[0].lines, result[0].first, result[0].total) == ([], 0, 0)


def test_a_log_replaced_by_a_shorter_file_is_indexed_afresh(tmp_path):
    write_stamped_log(tmp_path / "log", 100)
    log = AgentLog(tmp_path)
    assert log.page(None, 1).total == 100
    (tmp_path / "log").write_text("")
    write_stamped_log(tmp_path / "log", 3, text=lambda i: f"again {i}")
    assert [line.text for line in log.page(0, 10).lines] == ["again 0", "again 1", "again 2"]


def test_lines_without_a_stamp_have_no_time_and_keep_their_text(tmp_path):
    (tmp_path / "log").write_bytes(b"before stamps\n2026-01-01T00:00:00.000Z stamped\nunfinished")
    lines = AgentLog(tmp_path).page(0, 10).lines
    assert [(x.n, x.at, x.text) for x in lines] == [
        (0, None, "before stamps"), (1, "2026-01-01T00:00:00.000Z", "stamped"), (2, None, "unfinished")]


# -- the size the logs rotate at -------------------------------------------------------


@pytest.mark.parametrize("given, size", [("4096", 4096), ("8K", 8192), ("16m", 16 << 20), ("1G", 1 << 30)])
def test_serve_takes_the_logs_rotation_size(tmp_path, given, size):
    args = build_parser().parse_args(["serve", "--state", str(tmp_path), "--socket", str(tmp_path / "s"),
                                      "--log-max-bytes", given])
    assert args.log_max_bytes == size


@pytest.mark.parametrize("given", ["0", "4095", "-5", "1T", "lots", "8KB", ""])
def test_serve_refuses_a_bad_rotation_size(tmp_path, capsys, given):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--state", str(tmp_path), "--socket", str(tmp_path / "s"),
                                   "--log-max-bytes", given])
    assert "the log size must be at least 4096 bytes" in capsys.readouterr().err


def test_the_rotation_size_is_for_the_local_runtime_alone(tmp_path, capsys):
    code = main(["serve", "--state", str(tmp_path), "--socket", str(tmp_path / "s"), "--runtime", "nixos",
                 "--log-max-bytes", "8K"])
    assert code == 1
    assert "--log-max-bytes: only for --runtime local" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    with pytest.raises(HiveError, match="at least 4096 bytes"):
        Engine(tmp_path / "hive", locker="builtin", runtime_options={"log_max_bytes": 100})


def test_a_follower_starts_with_the_kept_files_last_lines_when_the_log_was_just_rotated(tmp_path):
    write_stamped_log(tmp_path / "log.1", 5)
    write_stamped_log(tmp_path / "log", 2, first=5)

    async def go() -> list[str]:
        seen: list[str] = []
        async with aclosing(follow_file(tmp_path / "log", 4)) as followed:
            async for line in followed:
                seen.append(line)
                if len(seen) == 4:
                    break
        return seen

    assert asyncio.run(asyncio.wait_for(go(), 30)) == ["line 3", "line 4", "line 5", "line 6"]


def test_long_lines_are_cut_and_a_page_of_them_is_bounded(tmp_path):
    with open(tmp_path / "log", "wb") as f:
        f.write(b"y" * (2 << 20) + b"\n")  # longer than one read: its first bytes only
        f.write(b"z" * (200 << 10) + b"\n")
        f.write(b"next\n")
    lines = AgentLog(tmp_path).page(0, 3).lines
    note = f" [hive-tui: the rest of this line was cut at {logindex.TEXT_LIMIT} bytes]"
    assert [line.text for line in lines] == ["y" * logindex.TEXT_LIMIT + note, "z" * logindex.TEXT_LIMIT + note,
                                             "next"]
    write_stamped_log(tmp_path / "wide", 200, text=lambda i: f"{i} " + "w" * (60 << 10))
    os.replace(tmp_path / "wide", tmp_path / "log")
    log = AgentLog(tmp_path)
    forward, backward = log.page(0, 200), log.page(None, 200)
    assert 100 < len(forward.lines) < 200 and forward.total == 200
    assert [line.n for line in forward.lines] == list(range(len(forward.lines)))
    assert [line.n for line in backward.lines] == list(range(200 - len(backward.lines), 200))
    assert sum(len(line.text) for line in forward.lines) <= logindex.PAGE_BYTES


def test_a_time_before_the_stamps_can_say_finds_the_first_line(tmp_path):
    write_stamped_log(tmp_path / "log", 10)
    log = AgentLog(tmp_path)
    assert [log.since(at) for at in ("0999-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59Z")] == [
        0, 0, 10]


def test_serve_rotates_at_its_size_and_pages_the_log_over_its_socket(tmp_path):
    root = tmp_path / "hive"
    seeded_hive(root, {"alpha": agent_files(run=counting(400))})
    server = ServerProcess(root, tmp_path / "host.sock", "--log-max-bytes", "4K").start()

    async def go() -> LogPage:
        async with UnixClient(str(server.sock)) as client:
            # Started again by the served engine: its log rotates at 4 KiB from here on.
            await client.restart("alpha")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while (page := await client.log_page("alpha", 0, 10_000)).total < 801:
                assert loop.time() < deadline, f"the restarted agent's lines, {page.total} so far"
                await asyncio.sleep(0.05)
            return page

    try:
        got = asyncio.run(go())
    finally:
        server.kill()
        stop_agents(root)
    assert (root / "containers" / "alpha" / "log.1").exists()
    assert 400 < got.first < 800 and got.total == 801
    assert [line.n for line in got.lines] == list(range(got.first, 801))
    assert all(line.text == f"line {line.n - 401}" and STAMP.fullmatch(line.at) for line in got.lines)


def test_a_view_taken_during_a_rotation_numbers_the_lines_as_after_it(tmp_path):
    # Seen between the rename and the new log: the same file under both names.
    write_stamped_log(tmp_path / "log", 3, first=100)
    os.link(tmp_path / "log", tmp_path / "log.1")
    (tmp_path / "log.base").write_text(json.dumps({"ino": (tmp_path / "log").stat().st_ino, "first": 100}))
    got = AgentLog(tmp_path).page(0, 10)
    assert (got.first, got.total) == (100, 103)
    assert [(line.n, line.text) for line in got.lines] == [(100, "line 100"), (101, "line 101"), (102, "line 102")]


def test_a_base_record_that_names_neither_file_numbers_from_the_kept_file(tmp_path):
    write_stamped_log(tmp_path / "log.1", 2)
    write_stamped_log(tmp_path / "log", 2, first=2)
    (tmp_path / "log.base").write_text(json.dumps({"ino": 1, "first": 500}))
    got = AgentLog(tmp_path).page(None, 10)
    assert (got.first, got.total, [line.text for line in got.lines]) == (0, 4, [f"line {i}" for i in range(4)])
