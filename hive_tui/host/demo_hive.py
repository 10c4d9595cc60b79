"""A demo hive: three agents, and the manager's requests waiting for the operator.

    atlas    a proposal that deploys
    bramble  a proposal whose build fails; atlas is its parent
    cinder   a proposal to deny; atlas is its parent
    dune     a spawn request

The parents give the console's grouping by parent something to show.
"""

from __future__ import annotations

from importlib.resources import files

from ..errors import Conflict
from . import gitrepo
from .engine import Engine
from .template import agent_yaml

AGENTS = {
    "atlas": ("triaging issues", "sonnet"),
    "bramble": ("reviewing pull requests", "haiku"),
    "cinder": ("watching the build queue", "sonnet"),
}
# Each agent's parent in the hive's topology; atlas has none.
PARENTS = {"bramble": "atlas", "cinder": "atlas"}

# (agent, files the manager changes, description)
PROPOSALS = [
    ("atlas", {"model.txt": b"opus\n"}, "atlas: move to the larger model for triage"),
    ("bramble", {"model.txt": b""}, "bramble: drop the model pin and use the hive default"),
    ("cinder", {"status.txt": b"[watching] builds \\o/\n"}, "cinder: shorter status line"),
]
SPAWN = ("dune", "dune: a fourth agent to answer the support inbox")


def _files(status: str, model: str, parent: str | None = None) -> dict[str, bytes]:
    demo = files("hive_tui.host") / "demo_agent"
    return {
        "agent.yaml": agent_yaml(run=["sh", "agent.sh"], build=["sh", "build.sh"], parent=parent),
        "agent.sh": (demo / "agent.sh").read_bytes(),
        "status.sh": (demo / "status.sh").read_bytes(),
        "build.sh": (demo / "build.sh").read_bytes(),
        "status.txt": f"{status}\n".encode(),
        "model.txt": f"{model}\n".encode(),
    }


def seed_demo(engine: Engine) -> None:
    """Install the demo agents and file the manager's requests; refuses a hive that has agents."""
    if engine.agents() or engine.approvals():
        raise Conflict(f"{engine.state.root} already holds a hive; the demo seeds an empty state root")
    for name, (status, model) in AGENTS.items():
        engine.install_agent(name, _files(status, model, PARENTS.get(name)))
    for name, changes, description in PROPOSALS:
        proposed = gitrepo.open_repo(engine.state.proposed(name))
        gitrepo.commit_files(proposed, changes, description)
        engine.request_apply_commit(name, "main", description)
    engine.request_spawn(*SPAWN)
