"""hive-tui: a host engine and a terminal console for hives of AI agents."""

__version__ = "0.1.0"
