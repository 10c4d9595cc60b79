"""What a served engine pushes on its own: an agent's row whenever one of its
inputs changes (the status file its agent writes, the model a deploy brings,
its run state, its action in flight, its pause marker), and what it logs as
it stops."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path

from hive_tui.client.stream import UnixClient
from hive_tui.host import gitrepo
from hive_tui.host.fsutil import read_json
from hive_tui.host.watch import WINDOW
from hive_tui.models import AgentStatus

from .helpers import agent_files, propose, wait_for
from .serving import ServerProcess, run_async, seeded_hive, stop_agents


def test_serve_logs_a_final_line_once_it_has_stopped(served):
    assert served.terminate() == 0
    lines = served.log.read_text().splitlines()
    waiting = lines.index("hive-tui serve: shutting down: waiting for the work in flight")
    assert lines[-1] == "hive-tui serve: stopped" and lines.index(lines[-1]) > waiting
    assert not served.sock.exists()


# An agent that reports the model its config names once it is ready, as a real
# one does some time after its start; here "ready" is when the test says so.
MODEL_AGENT = ["sh", "-c", """
model=$(head -n 1 model.txt)
while [ ! -e "$HIVE_AGENT_STATE/ready-$model" ]; do sleep 0.05; done
printf '{"text": "ready", "model": "%s", "set_at": "2026-01-01T00:00:00Z"}\\n' "$model" \\
    > "$HIVE_AGENT_STATE/status.json.tmp"
mv "$HIVE_AGENT_STATE/status.json.tmp" "$HIVE_AGENT_STATE/status.json"
while [ -d "$HIVE_AGENT_STATE" ]; do sleep 1; done
"""]
# How long a test waits for the push it needs: far longer than it takes, on a loaded machine.
PUSH_TIMEOUT = 30.0


async def next_row(feed, name: str, wanted, timeout: float = PUSH_TIMEOUT, seen: list | None = None) -> AgentStatus:
    """The first row of `name` pushed from now on for which `wanted(row)` holds."""
    async def look() -> AgentStatus:
        async for item in feed:
            if isinstance(item, AgentStatus) and item.name == name:
                if seen is not None:
                    seen.append(item)
                if wanted(item):
                    return item
        raise AssertionError("the feed ended")

    try:
        return await asyncio.wait_for(look(), timeout)
    except TimeoutError:
        raise AssertionError(f"no row of {name} as wanted within {timeout}s; saw {seen}") from None


def write_status(root: Path, name: str, text: str, model: str = "m1") -> None:
    """What an agent does: write its status file whole, then rename it into place."""
    folder = root / "agents" / name
    (folder / "status.json.tmp").write_text(json.dumps({"text": text, "model": model, "set_at": "2026-01-01T00:00:00Z"}))
    os.replace(folder / "status.json.tmp", folder / "status.json")


def test_a_status_file_written_by_its_agent_is_pushed(served):
    status = served.root / "agents" / "beta" / "status.json"

    async def scenario():
        c = UnixClient(str(served.sock))
        async with c.feed() as feed:
            write_status(served.root, "beta", "thinking", "m1")
            row = await next_row(feed, "beta", lambda r: r.status_text == "thinking")
            assert row.active_model == "m1" and row.status_set_at == "2026-01-01T00:00:00Z"
            # Written in place, as a careless agent does: the row follows once it is whole.
            status.write_text(json.dumps({"text": "reading", "model": "m2"}))
            row = await next_row(feed, "beta", lambda r: r.status_text == "reading")
            assert row.active_model == "m2"
        await c.close()

    run_async(scenario())


def test_a_hostile_status_file_neither_blocks_nor_floods_the_pushes(served):
    root = served.root
    status = root / "agents" / "beta" / "status.json"
    (root / "secret").write_text(json.dumps({"text": "host secret", "model": "leaked"}))

    async def scenario():
        c = UnixClient(str(served.sock))
        async with c.feed() as feed:
            write_status(root, "beta", "first")
            await next_row(feed, "beta", lambda r: r.status_text == "first")
            # A link to a file outside the agent's folder reads as unset, never followed.
            status.unlink()
            status.symlink_to(root / "secret")
            row = await next_row(feed, "beta", lambda r: r.status_text != "first")
            assert (row.status_text, row.active_model) == (None, None)
            # A FIFO holds up no read: the next real file is pushed.
            status.unlink()
            os.mkfifo(status)
            write_status(root, "beta", "after the fifo")
            await next_row(feed, "beta", lambda r: r.status_text == "after the fifo")

            # A flood of writes: few pushes, and the last write is the last row.
            seen: list[AgentStatus] = []
            start = time.monotonic()
            for i in range(300):
                write_status(root, "beta", f"flood {i}")
            await next_row(feed, "beta", lambda r: r.status_text == "flood 299", seen=seen)
            elapsed = time.monotonic() - start
            assert len(seen) <= elapsed / WINDOW + 2, f"{len(seen)} rows in {elapsed:.2f}s"

            # The agent's folder deleted: the watcher goes on with the others.
            shutil.rmtree(root / "agents" / "beta")
            write_status(root, "alpha", "still watched")
            await next_row(feed, "alpha", lambda r: r.status_text == "still watched")
        await c.close()

    run_async(scenario())


def test_a_deploy_that_changes_the_model_pushes_the_new_model(tmp_path):
    root = tmp_path / "hive"
    seeded_hive(root, {"gamma": agent_files(run=MODEL_AGENT, **{"model.txt": b"m1\n"})})
    server = ServerProcess(root, tmp_path / "host.sock").start()
    try:
        (root / "agents" / "gamma" / "ready-m1").touch()
        wait_for(lambda: (read_json(root / "agents" / "gamma" / "status.json") or {}).get("model") == "m1",
                 timeout=PUSH_TIMEOUT, what="gamma to report its first model")
        gitrepo.commit_files(gitrepo.open_repo(root / "proposed" / "gamma"), {"model.txt": b"m2\n"}, "bigger model")

        async def scenario():
            c = UnixClient(str(server.sock))
            [before] = await c.status()
            assert before.active_model == "m1"
            first = before.deployed_sha
            async with c.feed() as feed:
                approval = await c.propose("gamma", "main", "bigger model")
                await c.approve(approval.id)
                # The deploy is over, and the agent runs the new config; then it reports.
                after = await next_row(feed, "gamma", lambda r: r.transient is None and r.deployed_sha != first)
                assert after.active_model == "m1"
                (root / "agents" / "gamma" / "ready-m2").touch()
                row = await next_row(feed, "gamma", lambda r: r.active_model == "m2")
            await c.close()
            return row

        row = run_async(scenario())
        assert row.running and row.status_text == "ready"
    finally:
        server.kill()
        stop_agents(root)


def test_a_spawned_agent_gets_its_model_and_status_text_pushed(served):
    async def scenario():
        c = UnixClient(str(served.sock))
        seen: list[AgentStatus] = []
        async with c.feed() as feed:
            request = await c.request_spawn("gamma", "a third")
            await c.approve(request.id)
            row = await next_row(feed, "gamma", lambda r: r.active_model is not None and r.status_text is not None,
                                 seen=seen)
        await c.close()
        return row

    row = run_async(scenario())
    assert row.running and row.status_text == "idle" and row.active_model == "none"


def test_each_action_ends_with_the_fresh_row_pushed(engine):
    engine.install_agent("alpha", agent_files())
    pushed: list[AgentStatus] = []
    engine.subscribe(lambda item: pushed.append(item) if isinstance(item, AgentStatus) else None)

    def last_pushed(name: str) -> tuple:
        row = [r for r in pushed if r.name == name][-1]
        return (row.running, row.paused, row.deployed_sha, row.needs_update, row.transient, row.kept)

    def now(name: str) -> tuple:
        row = engine.agent_status(name)
        return (row.running, row.paused, row.deployed_sha, row.needs_update, row.transient, row.kept)

    actions = [
        ("stop", lambda: engine.stop("alpha")),
        ("start", lambda: engine.start("alpha")),
        ("restart", lambda: engine.restart("alpha")),
        ("pause", lambda: engine.set_paused("alpha", True)),
        ("resume", lambda: engine.set_paused("alpha", False)),
        ("rebuild", lambda: engine.rebuild("alpha")),
        ("deploy", lambda: engine.approve(propose(engine, "alpha", {"notes.txt": b"one\n"}).id)),
        ("spawn", lambda: engine.approve(engine.request_spawn("beta").id)),
        ("destroy", lambda: engine.destroy("alpha")),
    ]
    for what, act in actions:
        act()
        name = "beta" if what == "spawn" else "alpha"
        assert last_pushed(name) == now(name), f"after {what}, the last row pushed is stale"


def test_an_agent_that_exits_on_its_own_has_its_row_pushed(served):
    async def scenario():
        c = UnixClient(str(served.sock))
        async with c.feed() as feed:
            # The idle agent runs while its state folder is there.
            shutil.rmtree(served.root / "agents" / "beta")
            row = await next_row(feed, "beta", lambda r: not r.running)
        await c.close()
        return row

    row = run_async(scenario())
    assert (row.running, row.transient) == (False, None)
