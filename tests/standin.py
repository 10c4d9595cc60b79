"""A stand-in for nixos-container, systemctl, nix-env and journalctl.

Installed under each of those names (see test_nixos_runtime.py), it records
every call as a JSON list in $STANDIN_DIR/calls.jsonl, then does what the
files the test wrote under $STANDIN_DIR say:

    fail/<program> <first arg>  or  fail/<program>
                      print the file to stderr and exit 1
    hang/<program> <first arg>
                      never finish (the caller's timeout must kill it)
    containers        what `nixos-container list` prints; create adds a
                      line, destroy removes it
    active/<unit>     what `systemctl show ... <unit>` prints ("inactive" if absent)
    move-profile      holds a profile path: `nixos-container update` moves it
                      to the next generation (1 if it has none) and then
                      fails, as an update whose reload fails does

`nixos-container create` and `update` print two build lines first, and
`nix-env -p P --switch-generation N` points P at P-N-link, if that exists.
Any other call only succeeds.
"""

import json
import os
import sys
import time
from pathlib import Path

STATE = Path(os.environ["STANDIN_DIR"])


def fail(message: str) -> None:
    sys.stderr.write(message if message.endswith("\n") else message + "\n")
    sys.exit(1)


def set_containers(names: list[str]) -> None:
    (STATE / "containers").write_text("".join(n + "\n" for n in names))


def containers() -> list[str]:
    path = STATE / "containers"
    return path.read_text().splitlines() if path.exists() else []


def point(link: Path, target: str) -> None:
    tmp = link.with_name(link.name + ".tmp")
    os.symlink(target, tmp)
    os.replace(tmp, link)


def move_profile(profile: Path) -> None:
    current = os.readlink(profile) if profile.is_symlink() else "system-0-link"
    generation = int(current.split("-")[-2]) + 1
    new = f"{profile.name}-{generation}-link"
    os.symlink(f"/nix/store/standin-system-{generation}", profile.with_name(new))
    point(profile, new)


def nixos_container(args: list[str]) -> None:
    command, rest = args[0], args[1:]
    if command == "list":
        print("\n".join(containers()))
    elif command in ("create", "update"):
        print(f"building the system configuration for {rest[0]}...")
        print(f"these 2 derivations will be built: {rest[2]}")
        if command == "create":
            set_containers(containers() + [rest[0]])
        elif (STATE / "move-profile").exists():
            move_profile(Path((STATE / "move-profile").read_text().strip()))
            sys.stdout.flush()
            fail("error: reloading container failed")
    elif command == "destroy":
        set_containers([n for n in containers() if n != rest[0]])


def systemctl(args: list[str]) -> None:
    if args[0] == "show":
        unit = STATE / "active" / args[-1]
        print(unit.read_text().strip() if unit.exists() else "inactive")


def nix_env(args: list[str]) -> None:
    profile = Path(args[args.index("-p") + 1])
    generation = args[args.index("--switch-generation") + 1]
    target = f"{profile.name}-{generation}-link"
    if not (profile.parent / target).is_symlink():
        fail(f"error: generation {generation} does not exist")
    point(profile, target)


def main() -> None:
    program, args = os.path.basename(sys.argv[0]), sys.argv[1:]
    with open(STATE / "calls.jsonl", "a") as calls:
        calls.write(json.dumps([program, *args]) + "\n")
    first = f"{program} {args[0]}" if args else program
    if (STATE / "hang" / first).exists():
        time.sleep(3600)
    for name in (first, program):
        if (STATE / "fail" / name).exists():
            fail((STATE / "fail" / name).read_text())
    handlers = {"nixos-container": nixos_container, "systemctl": systemctl,
                "nix-env": nix_env}
    if program in handlers:
        handlers[program](args)


if __name__ == "__main__":
    main()
