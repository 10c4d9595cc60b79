"""Deploys of different agents at once: their builds overlap, and the meta
repo still ends with one commit per successful deploy, each touching its own
agent's lock node only; a failure restores only its own node."""

from __future__ import annotations

import asyncio
import json

from hive_tui.host import gitrepo
from hive_tui.client.embedded import EmbeddedClient
from hive_tui.host.engine import Engine

from .helpers import agent_files, stop_all

AGENTS = 20
# Each build notes when it ran, takes a second once `slow` is in its state folder
# (the deploys, not the first installs), and fails while `fail` is there.
BUILD = ["sh", "-c", 's="$HIVE_AGENT_STATE"; date +%s.%N >> "$s/started"; if [ -e "$s/slow" ]; then sleep 1; fi; '
                     'date +%s.%N >> "$s/ended"; test ! -e "$s/fail"']


def lock_at(meta_repo, commit) -> dict:
    return json.loads(gitrepo.blob_at(meta_repo, "flake.lock", str(commit)))["nodes"]


def test_twenty_deploys_at_once(hive_root):
    names = [f"agent-{i:02d}" for i in range(AGENTS)]
    failing = set(names[::3])
    with Engine(hive_root, locker="builtin", runtime_options={"stop_grace": 2.0}) as engine:
        try:
            for name in names:
                engine.install_agent(name, agent_files(build=BUILD, **{"version.txt": b"1\n"}))
            before = engine.meta.committed_lock()["nodes"]
            head = engine.meta_log()[0].sha
            for name in names:
                state = engine.state.agent_state(name)
                (state / "started").unlink()
                (state / "ended").unlink()
                (state / "slow").touch()
                if name in failing:
                    (state / "fail").touch()
                proposed = gitrepo.open_repo(engine.state.proposed(name))
                gitrepo.commit_files(proposed, {"version.txt": b"2\n"}, "version 2")
                engine.request_apply_commit(name, "main", f"{name} to version 2")

            async def approve_all():
                client = EmbeddedClient(engine)  # not closed: the test closes the engine
                async with client.feed() as feed:
                    await asyncio.gather(*(client.request({"cmd": "approve", "id": a.id})
                                           for a in engine.pending()))
                    resolved = set()
                    async for item in feed:
                        if getattr(item, "kind", None) == "ApprovalResolved":
                            resolved.add(item.id)
                            if len(resolved) == AGENTS:
                                return

            asyncio.run(asyncio.wait_for(approve_all(), 120))

            outcome = {a.agent: a.terminal_tag.split("/")[0] for a in engine.approvals()}
            assert outcome == {n: "failed" if n in failing else "deployed" for n in names}

            # The builds ran side by side: the last to start began before the first ended.
            started = [float(t) for n in names for t in (engine.state.agent_state(n) / "started").read_text().split()]
            ended = [float(t) for n in names for t in (engine.state.agent_state(n) / "ended").read_text().split()]
            assert len(started) == AGENTS and max(started) < min(ended)

            # One meta commit per successful deploy, each changing its own node and nothing else.
            meta = gitrepo.open_repo(engine.state.meta)
            commits = [c for c in engine.meta_log() if c.sha != head]
            commits = commits[:[c.sha for c in engine.meta_log()].index(head)]
            assert sorted(c.message.split()[1] for c in commits) == sorted(set(names) - failing)
            for newer, older in zip([c.sha for c in commits], [c.sha for c in commits[1:]] + [head]):
                a, b = lock_at(meta, newer), lock_at(meta, older)
                changed = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
                agent = next(c.message.split()[1] for c in commits if c.sha == newer)
                assert changed == {f"agent-{agent}"}, (agent, changed)
            final = engine.meta.committed_lock()["nodes"]
            for name in failing:
                assert final[f"agent-{name}"] == before[f"agent-{name}"]
            for name in set(names) - failing:
                assert final[f"agent-{name}"]["locked"]["rev"] == str(
                    gitrepo.open_repo(engine.state.applied(name)).references[gitrepo.MAIN].target)
            assert (engine.state.meta / "flake.lock").read_bytes() == gitrepo.blob_at(meta, "flake.lock")
        finally:
            stop_all(engine)
