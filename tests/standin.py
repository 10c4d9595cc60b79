"""A stand-in for nixos-container, systemctl, nix-env and journalctl.

Installed under each of those names (see test_nixos_runtime.py), it records
every call as a JSON list in $STANDIN_DIR/calls.jsonl and then behaves the
way nixpkgs' nixos-container script does where the runtime depends on it:

- its files live under $STANDIN_ETC (for /etc/nixos-containers), $STANDIN_VAR
  (for /var/lib/nixos-containers) and $STANDIN_PROFILES (for
  /nix/var/nix/profiles/per-container), so a test sees what is left behind;
- `create` refuses a name that has a .conf, writes the .conf and the
  profile folder, and only then builds; a failed build dies with nothing
  cleaned up;
- the build links its result as `./.tmp`, relative to the caller's working
  directory (what `nix build -o "$systemPath.tmp"` does with no
  --system-path), then reads the link back and sets the profile to it;
- `update` builds the same way, sets the profile, and reloads a running
  container, so a failed reload leaves the profile moved;
- `destroy` of a container with no .conf exits 0; otherwise it terminates a
  running container and removes the .conf, the profile and the root;
- `terminate` of a stopped container dies with "unable to get container's
  main PID"; `start`, `stop` and `terminate` of an unknown one die;
- `journalctl --machine=` fails for a container that is not running.

What the test wrote under $STANDIN_DIR steers it:

    fail/<program> <first arg>  or  fail/<program>
                      print the file to stderr and exit 1; for `nixos-container
                      create` and `update` it is the build that fails
    hang/<program> <first arg>
                      never finish (the caller's timeout must kill it); for
                      create and update, during the build
    fail/reload       the reload at the end of an update fails
    build-barrier     holds a number N: each build waits, after writing
                      ./.tmp and before reading it back, until N builds
                      have written theirs (at most 20s), the way two
                      builds that finish together interleave
    active/<unit>     the unit's ActiveState ("inactive" if absent), as
                      `systemctl show` prints it: the value alone with
                      --value, else a block of Id= and ActiveState= lines
                      for each unit named, blank lines between; start and
                      stop write it
    journal/<container>
                      the container's log lines
"""

import json
import os
import sys
import time
from pathlib import Path

STATE = Path(os.environ["STANDIN_DIR"])
ETC = Path(os.environ.get("STANDIN_ETC", STATE / "etc" / "nixos-containers"))
VAR = Path(os.environ.get("STANDIN_VAR", STATE / "var" / "lib" / "nixos-containers"))
PROFILES = Path(os.environ.get("STANDIN_PROFILES", STATE / "profiles"))
BARRIER_TIMEOUT = 20.0


def die(message: str, code: int = 1) -> None:
    sys.stdout.flush()
    sys.stderr.write(message if message.endswith("\n") else message + "\n")
    sys.exit(code)


def control(kind: str, name: str) -> Path | None:
    path = STATE / kind / name
    return path if path.exists() else None


def unit_file(container: str) -> Path:
    return STATE / "active" / f"container@{container}.service"


def is_running(container: str) -> bool:
    path = unit_file(container)
    return path.exists() and path.read_text().strip() == "active"


def set_active(container: str, state: str) -> None:
    unit_file(container).parent.mkdir(exist_ok=True)
    unit_file(container).write_text(state + "\n")


def point(link: Path, target: str) -> None:
    tmp = link.with_name(f"{link.name}.{os.getpid()}")
    os.symlink(target, tmp)
    os.replace(tmp, link)


def set_profile(container: str, system: str) -> None:
    """`nix-env -p <profile>/system --set <system>`: a new generation, made current."""
    folder = PROFILES / container
    generations = [int(p.name.split("-")[1]) for p in folder.glob("system-*-link")]
    new = f"system-{max(generations, default=0) + 1}-link"
    os.symlink(system, folder / new)
    point(folder / "system", new)


def wait_at_barrier() -> None:
    path = STATE / "build-barrier"
    if not path.exists():
        return
    wanted = int(path.read_text())
    arrived = STATE / "barrier"
    arrived.mkdir(exist_ok=True)
    (arrived / str(os.getpid())).touch()
    deadline = time.monotonic() + BARRIER_TIMEOUT
    while len(os.listdir(arrived)) < wanted and time.monotonic() < deadline:
        time.sleep(0.01)


def build(command: str, container: str, flake: str) -> str:
    """The flake build both create and update run; returns the store path."""
    print(f"building the system configuration for {container}...")
    print(f"these 2 derivations will be built: {flake}")
    sys.stdout.flush()
    attr = flake.rsplit("#", 1)[-1]
    if control("hang", f"nixos-container {command}"):
        time.sleep(3600)
    failure = control("fail", f"nixos-container {command}")
    if failure:
        sys.stderr.write(failure.read_text().rstrip("\n") + "\n")
        die(f"{sys.argv[0]}: failed to build container from flake '{flake.rsplit('#', 1)[0]}'")
    # No --system-path: the link is ".tmp" in whatever folder we were started in.
    point(Path(".tmp"), f"/nix/store/standin-{attr}-system")
    wait_at_barrier()
    try:
        system = os.readlink(".tmp")
    except OSError:
        die(f"Died at {sys.argv[0]} line 197.")
    try:
        os.unlink(".tmp")
    except OSError:
        pass
    return system


def conf(container: str) -> Path:
    return ETC / f"{container}.conf"


def must_exist(container: str) -> None:
    if not conf(container).exists():
        die(f"{sys.argv[0]}: container ‘{container}’ does not exist")


def nixos_container(args: list[str]) -> None:
    command, rest = args[0], args[1:]
    ETC.mkdir(parents=True, exist_ok=True)
    VAR.mkdir(parents=True, exist_ok=True)
    if command == "list":
        for path in sorted(ETC.glob("*.conf")):
            print(path.name[: -len(".conf")])
        return
    container = rest[0]
    flake = rest[rest.index("--flake") + 1] if "--flake" in rest else None
    if command == "create":
        if conf(container).exists():
            die(f"{sys.argv[0]}: container ‘{container}’ already exists")
        if len(container) > 11:
            die(f"{sys.argv[0]}: container name ‘{container}’ is too long")
        conf(container).write_text(
            "PRIVATE_NETWORK=1\nHOST_ADDRESS=10.233.1.1\nLOCAL_ADDRESS=10.233.1.2\n"
            f"HOST_BRIDGE=\nHOST_PORT=\nAUTO_START=0\nFLAKE={flake.rsplit('#', 1)[0]}\n"
        )
        sys.stderr.write("host IP is 10.233.1.1, container IP is 10.233.1.2\n")
        (PROFILES / container).mkdir(parents=True, exist_ok=True)
        set_profile(container, build(command, container, flake))
        return
    if command == "destroy":
        if not conf(container).exists():
            return
        if is_running(container):
            set_active(container, "inactive")
        for path in (PROFILES / container, VAR / container):
            if path.exists():
                for sub in sorted(path.rglob("*"), reverse=True):
                    sub.rmdir() if sub.is_dir() and not sub.is_symlink() else sub.unlink()
                path.rmdir()
        conf(container).unlink()
        return
    must_exist(container)
    if command == "update":
        set_profile(container, build(command, container, flake))
        if is_running(container):
            sys.stderr.write("reloading container...\n")
            if control("fail", "reload"):
                die(f"{sys.argv[0]}: failed to reload container")
    elif command == "start":
        set_active(container, "active")
    elif command == "stop":
        set_active(container, "inactive")
    elif command == "terminate":
        if not is_running(container):
            die("unable to get container's main PID")
        set_active(container, "inactive")


def systemctl(args: list[str]) -> None:
    if args[0] == "show":
        def active(unit: str) -> str:
            path = STATE / "active" / unit
            return path.read_text().strip() if path.exists() else "inactive"
        if "--value" in args:
            print(active(args[-1]))
            return
        units = [a for a in args[1:] if not a.startswith("-")]
        print("\n\n".join(f"Id={unit}\nActiveState={active(unit)}" for unit in units))


def nix_env(args: list[str]) -> None:
    profile = Path(args[args.index("-p") + 1])
    generation = args[args.index("--switch-generation") + 1]
    target = f"{profile.name}-{generation}-link"
    if not (profile.parent / target).is_symlink():
        die(f"error: generation {generation} does not exist")
    point(profile, target)


def journalctl(args: list[str]) -> None:
    machine = next((a.split("=", 1)[1] for a in args if a.startswith("--machine=")), None)
    if machine is not None:
        if not is_running(machine):
            die(f"Failed to open journal of machine {machine}: No such device or address")
        container = machine
    else:
        unit = args[args.index("-u") + 1]
        container = unit[len("container@"):-len(".service")]
    log = STATE / "journal" / container
    if log.exists():
        sys.stdout.write(log.read_text())


def main() -> None:
    program, args = os.path.basename(sys.argv[0]), sys.argv[1:]
    with open(STATE / "calls.jsonl", "a") as calls:
        calls.write(json.dumps([program, *args]) + "\n")
    first = f"{program} {args[0]}" if args else program
    # A build's failure comes where the real one does: after the .conf is written.
    if first not in ("nixos-container create", "nixos-container update"):
        if control("hang", first):
            time.sleep(3600)
        for name in (first, program):
            if control("fail", name):
                die(control("fail", name).read_text())
    handlers = {"nixos-container": nixos_container, "systemctl": systemctl,
                "nix-env": nix_env, "journalctl": journalctl}
    if program in handlers:
        handlers[program](args)


if __name__ == "__main__":
    main()
