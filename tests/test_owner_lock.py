"""One engine per state root: the lock holds even when hive.lock is deleted."""

from __future__ import annotations

import pytest

from hive_tui.host.engine import Engine
from hive_tui.errors import StateLocked

from .helpers import engine_holder


def test_a_second_engine_is_refused_after_the_lock_file_is_deleted(hive_root):
    holder = engine_holder(hive_root)
    try:
        (hive_root / "hive.lock").unlink()
        with pytest.raises(StateLocked, match=f"state root {hive_root} is owned by another engine"):
            second = Engine(hive_root, locker="builtin", lock_wait=0.2)
            second.close()
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    with Engine(hive_root, locker="builtin", lock_wait=0.2) as engine:
        assert engine.agents() == []


def test_the_refusal_names_the_holder(hive_root):
    holder = engine_holder(hive_root)
    try:
        with pytest.raises(StateLocked, match=f"pid {holder.pid} on "):
            Engine(hive_root, locker="builtin", lock_wait=0.2)
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
