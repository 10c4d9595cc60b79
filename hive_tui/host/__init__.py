"""The host side: what runs where the hive lives, as root, beside its agents.

The engine owns a state root (`stateroot.py`): the agents' repos, the meta
flake, the database. `server.py` serves it on Unix sockets, `dispatch.py`
carries out the table of verbs on it, and `runtime/` runs the containers.
The console and the CLI reach all this only through `hive_tui.client`;
nothing here imports Textual or Rich.
"""
