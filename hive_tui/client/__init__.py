"""Clients of a hive: one interface, whatever carries it.

The console and the CLI talk to a hive only through `HiveClient`: the
embedded transport runs the engine in this process (`embedded.py`), the
others reach a `hive-tui serve` over a Unix socket (`stream.py`) or over SSH
(`ssh.py`). `connect.py` picks one for a host; only the embedded one
imports the engine.
"""

from .base import HiveClient

__all__ = ["HiveClient"]
