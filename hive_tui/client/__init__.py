"""Clients of a hive: one interface, whatever carries it.

The console and the CLI talk to a hive only through `HiveClient`. The
embedded transport runs the engine in this process; the socket and SSH
transports arrive with the server.
"""

from .base import HiveClient

__all__ = ["HiveClient"]
