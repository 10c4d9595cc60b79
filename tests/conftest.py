"""Shared fixtures: real hives on disk, real git repos, real processes."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from hive_tui.host.engine import Engine

from .helpers import GATED_BUILD, agent_files, require_program, stop_all
from .invariants import processes_in
from .serving import ServerProcess, seeded_hive, stop_agents


@pytest.fixture
def nix_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real nix, with a store, home and cache of the test's own."""
    require_program("nix")
    home = tmp_path / "nix-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("NIX_CONFIG", f"store = {tmp_path / 'nix-store'}")
    return tmp_path / "nix-store"


@pytest.fixture(autouse=True)
def no_stray_processes(tmp_path: Path) -> Iterator[None]:
    """Every test leaves no process behind in its folder; any that remain are killed and reported."""
    yield
    stray = [pid for pid, _, _ in processes_in(tmp_path.resolve())]
    for pid in stray:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not stray, f"processes left running under {tmp_path}: {stray}"


@pytest.fixture(autouse=True)
def own_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's platform data folder is its own: the console's command log is written there."""
    data = tmp_path / "xdg-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    return data


@pytest.fixture
def hive_root(tmp_path: Path) -> Path:
    return tmp_path / "hive"


@pytest.fixture
def locker() -> str:
    """The meta locker the `engine` fixture uses; parametrize `locker` to change it."""
    return "builtin"


@pytest.fixture
def engine(request: pytest.FixtureRequest, hive_root: Path, locker: str) -> Iterator[Engine]:
    """An engine with quick stops, its agents stopped afterwards."""
    if locker == "nix":
        request.getfixturevalue("nix_env")
    e = Engine(hive_root, locker=locker, runtime_options={"stop_grace": 2.0})
    try:
        yield e
    finally:
        stop_all(e)
        e.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServerProcess]:
    """A real `hive-tui serve` on a hive of alpha (whose builds wait at a gate) and beta."""
    root = tmp_path / "hive"
    seeded_hive(root, {"alpha": agent_files(build=GATED_BUILD), "beta": agent_files()})
    server = ServerProcess(root, tmp_path / "host.sock").start()
    yield server
    server.kill()
    stop_agents(root)
