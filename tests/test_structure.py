"""The tree's own bookkeeping: lists written in more than one language agree."""

from __future__ import annotations

import ast
import graphlib
import re
import subprocess
import sys
from pathlib import Path

from hive_tui.host.runtime import RUNTIMES

ROOT = Path(__file__).resolve().parent.parent


def test_flake_module_offers_exactly_the_runtimes():
    flake = (ROOT / "flake.nix").read_text()
    offered = re.search(r"runtime = mkOption \{\s*type = types\.enum \[([^\]]*)\]", flake)
    assert offered is not None
    assert re.findall(r'"([^"]+)"', offered.group(1)) == list(RUNTIMES)


def test_the_console_speaks_through_the_client_interface_only():
    """No console module builds a raw request: the client's typed calls are the one way in."""
    console = [ROOT / "hive_tui" / "app.py", ROOT / "hive_tui" / "commands.py",
               *sorted((ROOT / "hive_tui" / "widgets").glob("*.py"))]
    assert [p.name for p in console if '"cmd"' in p.read_text()] == []


def test_the_import_graph_has_no_cycle():
    """The package's imports of its own modules, at any depth in a file, form no cycle.

    Imports only a type checker reads (under `if TYPE_CHECKING:`) never run, so they are left out.
    """
    modules = {}
    for path in (ROOT / "hive_tui").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        deps = graph.setdefault(name, set())
        tree = ast.parse(path.read_text())
        typing_only = {id(n) for block in ast.walk(tree)
                       if isinstance(block, ast.If) and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                       for n in ast.walk(block)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level and id(node) not in typing_only:
                base = here[: len(here) - node.level + 1] + (node.module.split(".") if node.module else [])
                for alias in node.names:
                    whole = ".".join([*base, alias.name])
                    deps.add(whole if whole in modules else ".".join(base))
        # A package's __init__ reaching into its own modules is not a cycle anyone trips on.
        graph[name] = {d for d in deps if d != name and not d.startswith(name + ".")}
    graphlib.TopologicalSorter(graph).prepare()


def test_the_protocol_doc_lists_exactly_the_verbs():
    """docs/protocol.md's table of verbs: each verb once, and whose it is (hyperhive's or ours)."""
    from hive_tui.verbs import VERBS

    doc = (ROOT / "docs" / "protocol.md").read_text()
    section = doc.split("\n## Verbs\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \|[^|]*\|[^|]*\| (hyperhive's|ours)", section, re.M)
    assert sorted(name for name, _ in rows) == sorted(VERBS)
    assert {name for name, whose in rows if whose == "hyperhive's"} == {n for n, v in VERBS.items() if v.hyperhive}


def test_every_verb_that_answers_once_has_a_client_call():
    """The typed client speaks every verb the dispatcher answers; the streams have calls of their own."""
    from hive_tui.verbs import VERBS

    client = (ROOT / "hive_tui" / "client" / "base.py").read_text()
    asked = set(re.findall(r'"cmd": "(\w+)"', client))
    assert {n for n, v in VERBS.items() if not v.streams or v.call is not None} <= asked


def test_the_import_contracts_hold():
    """pyproject.toml's contracts: the host side imports no UI, the console reaches a hive only
    through the client interface, remote clients never load the host side, the layers point one way."""
    run = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_package_type_checks(tmp_path):
    run = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy")], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
