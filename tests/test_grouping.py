"""The roster grouped by parent: the engine's rows carry each agent's parent
from its agent.yaml, and the console groups its lists under them."""

from __future__ import annotations

import pytest

from hive_tui.errors import BuildFailed
from hive_tui.host.agentconf import parse_agent_config
from hive_tui.host.engine import Engine
from hive_tui.host.template import agent_yaml

from .helpers import IDLE, agent_files, propose
from .serving import seeded_hive, stop_agents


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
