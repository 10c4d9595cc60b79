"""The container runtimes by name: the one list `--runtime` offers.

It lives apart from the runtimes themselves (`hive_tui.host.runtime`) so the
CLI can offer it without loading any of the host side: a console reaching a
server never needs it.
"""

# name -> (module under hive_tui.host.runtime, class, what it runs agents as).
# A test holds flake.nix's option to it.
RUNTIMES: dict[str, tuple[str, str, str]] = {
    "local": (".local", "LocalRuntime", "local processes"),
    "nixos": (".nixos", "NixosRuntime", "nixos-container on a NixOS host"),
}
