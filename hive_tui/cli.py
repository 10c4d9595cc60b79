"""`hive-tui`: the command line over a hive.

    hive-tui [--state DIR | --host HOST] [--json] VERB ARGS...

Every verb goes through the client interface, so it behaves the same
whatever carries it: the engine in this process (`--state`, or the demo
hive), a local socket (`--host unix:/path`), or a host over SSH
(`--host ssh://user@host/path`, or a name from the hosts file). Errors go
to stderr with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any

from . import __version__, report
from .client.base import HiveClient
from .client.connect import EngineOptions, default_state, demo_hint, open_client, open_engine, require_hive
from .client.fleet import DEFAULT_TIMEOUT, ask_every_host
from .config import Config, Host, default_config_path, default_host, load_config, parse_host
from .errors import HiveError, InvalidName
from .names import check_name
from .plain import one_line, plain
from .runtimes import RUNTIMES

Verb = Callable[[HiveClient, argparse.Namespace], Awaitable[int]]


def _agent_name(text: str) -> str:
    try:
        return check_name(text)
    except InvalidName as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _approval_id(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"approval id must be a positive integer, not {text!r}")
    return int(text)


def _emit(args: argparse.Namespace, data: object, human: str) -> None:
    if args.json:
        # ensure_ascii keeps every control character escaped, C1 included.
        print(json.dumps(data, indent=2, ensure_ascii=True))
    elif human:
        print(human)


async def _status(client: HiveClient, args: argparse.Namespace) -> int:
    rows = await client.status()
    # hyperhive's daemon has neither: the table goes without them.
    in_flight = await client.transients() if await client.offers("transients") else []
    spawning = [t for t in in_flight if t.kind == "Spawning"]
    human = report.status_table(rows, spawning)
    commits = await client.meta_log() if await client.offers("meta_log") else []
    if commits and commits[0].get("nixpkgs"):
        # What the containers are built from, as the last deploy locked it.
        human += f"\nnixpkgs: {one_line(commits[0]['nixpkgs'])}"
    _emit(args, [r.to_wire() for r in rows], human)
    return 0


async def _pending(client: HiveClient, args: argparse.Namespace) -> int:
    items = await (client.approvals() if args.all else client.pending())
    _emit(args, [a.to_wire() for a in items], report.approvals_table(items))
    return 0


async def _propose(client: HiveClient, args: argparse.Namespace) -> int:
    a = await client.propose(args.agent, args.ref, args.description)
    _emit(args, a.to_wire(), report.proposal_line(a))
    return 0


async def _request_spawn(client: HiveClient, args: argparse.Namespace) -> int:
    a = await client.request_spawn(args.name, args.description)
    _emit(args, a.to_wire(), report.proposal_line(a))
    return 0


async def _approve(client: HiveClient, args: argparse.Namespace) -> int:
    def progress(item: object) -> None:
        line = report.progress_line(item)
        if line is not None:
            print(line, file=sys.stderr, flush=True)

    a = await client.approve(args.id, progress)
    if not await client.offers("subscribe"):
        # Its ack is all the host says: claim no deploy it did not report.
        _emit(args, a.to_wire(),
              f"approval {a.id} for {plain(a.agent)}: approved; this host reports no deploy progress")
        return 0
    _emit(args, a.to_wire(), report.approval_outcome(a))
    return 0 if a.status == "approved" else 1


async def _deny(client: HiveClient, args: argparse.Namespace) -> int:
    a = await client.deny(args.id, args.note)
    _emit(args, a.to_wire(), report.approval_outcome(a))
    return 0


async def _history(client: HiveClient, args: argparse.Namespace) -> int:
    tags = await client.history(args.agent)
    _emit(args, [t.to_wire() for t in tags], report.history_table(tags))
    return 0


async def _events(client: HiveClient, args: argparse.Namespace) -> int:
    events = await client.events(args.since)
    _emit(args, [e.to_wire() for e in events], report.events_table(events))
    return 0


async def _meta_log(client: HiveClient, args: argparse.Namespace) -> int:
    commits = await client.meta_log()
    human = "\n".join(
        f"{c['sha'][:12]}  {one_line(c['message'])}"
        + (f"  [nixpkgs {one_line(c['nixpkgs'])}]" if c.get("nixpkgs") else "")
        for c in commits
    )
    _emit(args, commits, human)
    return 0


_DONE = {"start": "started", "stop": "stopped", "restart": "restarted", "pause": "paused", "resume": "resumed"}
# What start and stop found when the engine says there was nothing to do.
_ALREADY = {"start": "running", "stop": "stopped"}


async def _act(client: HiveClient, args: argparse.Namespace) -> int:
    """start, stop, restart, pause and resume: one agent each, done when it returns."""
    done: dict[str, object] = {"verb": args.verb, "name": args.name}
    if args.verb == "stop":
        done["already"] = await client.stop(args.name, graceful=not args.force)
    elif args.verb == "start":
        done["already"] = await client.start(args.name)
    elif args.verb in ("pause", "resume"):
        done["agent_status"] = (await client.set_paused(args.name, args.verb == "pause")).to_wire()
    else:
        await client.restart(args.name)
    # None is an engine that does not say (hyperhive's): the plain message then.
    human = (f"{args.name} was already {_ALREADY[args.verb]}" if done.get("already")
             else f"{_DONE[args.verb]} {args.name}")
    _emit(args, done, human)
    return 0


async def _rebuild(client: HiveClient, args: argparse.Namespace) -> int:
    commit = await client.rebuild(args.name)
    _emit(args, {"verb": "rebuild", "name": args.name, "meta_commit": commit},
          f"rebuilt {args.name}" + (f"; meta flake at {commit[:12]}" if commit else ""))
    return 0


async def _destroy(client: HiveClient, args: argparse.Namespace) -> int:
    if args.purge and not args.yes:
        await asyncio.to_thread(_confirm_purge, args.name)
    warning = await client.destroy(args.name, purge=args.purge)
    _emit(args, {"verb": "destroy", "name": args.name, "purge": args.purge, "warning": warning},
          f"{'purged' if args.purge else 'destroyed'} {args.name}")
    if warning:
        print(f"hive-tui: warning: {plain(warning)}", file=sys.stderr)
    return 0


def _confirm_purge(name: str) -> None:
    """Ask on the terminal for the agent's name; refuse when there is no one to ask."""
    if not sys.stdin.isatty():
        raise HiveError(f"refusing to purge {name} without --yes: stdin is not a terminal to confirm on")
    print(f"Purging {name} deletes its container, its config history (applied and proposed repos)\n"
          f"and its state folder (credentials, notes). There is no undo.", file=sys.stderr)
    print(f"Type {name} to purge it: ", end="", file=sys.stderr, flush=True)
    try:
        answer = sys.stdin.readline().strip()
    except KeyboardInterrupt:
        answer = ""
    if answer != name:
        raise HiveError(f"not purged: the answer was not {name!r}")


async def _logs(client: HiveClient, args: argparse.Namespace) -> int:
    """The lines as one object; followed, one object per line as it comes
    (JSON Lines, as the socket streams them), since a follow never ends."""
    if not args.follow:
        lines = await client.logs(args.name, args.lines)
        _emit(args, {"name": args.name, "lines": lines}, "\n".join(map(plain, lines)))
        return 0
    async with aclosing(client.follow_logs(args.name, args.lines)) as followed:
        async for line in followed:
            print(json.dumps({"line": line}, ensure_ascii=True) if args.json else plain(line), flush=True)
    return 0


def _log_lines(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 10_000:
        raise argparse.ArgumentTypeError(f"lines must be a number from 1 to 10000, not {text!r}")
    return int(text)


OPTION_DEFAULTS = {"json": False, "state": None, "host": None, "config": None, "runtime": "local", "locker": "auto",
                   "nixpkgs": None, "container_config_dir": None, "read_only": False, "all_hosts": False,
                   "timeout": DEFAULT_TIMEOUT}


def build_parser() -> argparse.ArgumentParser:
    # Every option works before the verb or after it (`hive-tui serve --state DIR ...`):
    # SUPPRESS keeps a verb's parser from overwriting what was given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print the objects the socket carries, as JSON")
    common.add_argument("--state", type=Path, metavar="DIR", default=argparse.SUPPRESS,
                        help=f"run the engine in this process on DIR (default: {default_state()})")
    common.add_argument("--host", metavar="HOST", default=argparse.SUPPRESS,
                        help="a hive-tui server: unix:/path/to.sock, ssh://[user@]host[:port]/path/to.sock, "
                             "or a name from the hosts file (default: its default host, else the demo hive)")
    common.add_argument("--config", type=Path, metavar="FILE", default=argparse.SUPPRESS,
                        help=f"the hosts file (default: {default_config_path()})")
    common.add_argument("--read-only", action="store_true", default=argparse.SUPPRESS,
                        help="send no action: every verb that would change something is refused")
    common.add_argument("--all-hosts", action="store_true", default=argparse.SUPPRESS,
                        help=f"ask every host in the hosts file at once ({', '.join(ALL_HOSTS_VERBS)}); "
                             f"exit status 3 when any host failed")
    common.add_argument("--timeout", type=_timeout, metavar="SECONDS", default=argparse.SUPPRESS,
                        help=f"with --all-hosts: how long each host may take (default {DEFAULT_TIMEOUT:g})")
    common.add_argument("--runtime", choices=list(RUNTIMES), default=argparse.SUPPRESS,
                        help="container runtime: " + ", or ".join(
                            f"{what} (default)" if kind == OPTION_DEFAULTS["runtime"] else what for kind, (_, _, what) in RUNTIMES.items()))
    common.add_argument("--locker", choices=["auto", "nix", "builtin"], default=argparse.SUPPRESS,
                        help="how the meta flake is locked (default auto: nix when installed)")
    common.add_argument("--nixpkgs", metavar="FLAKEREF", default=argparse.SUPPRESS,
                        help="nixos runtime: the nixpkgs flake containers are built from "
                             "(default: the flake registry's nixpkgs)")
    common.add_argument("--container-config-dir", type=Path, metavar="DIR", default=argparse.SUPPRESS,
                        help="nixos runtime: where nixos-container keeps each container's .conf "
                             "(default /etc/nixos-containers)")

    parser = argparse.ArgumentParser(
        prog="hive-tui", parents=[common],
        description="Operate a hive of AI agents: approvals, deploys and containers.",
        epilog="With no verb, the console: on the hosts file's default host, else on the demo hive.",
    )
    parser.add_argument("--version", action="version", version=f"hive-tui {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")

    def verb(name: str, fn: Verb | None, help: str) -> argparse.ArgumentParser:
        p = verbs.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(func=fn)
        return p

    verb("console", None, "the console (what hive-tui runs with no verb)")
    verb("tour", None, "a walk through a throwaway demo hive with the CLI")
    verb("demo", None, "seed a demo hive: three agents and four requests")
    p = verb("serve", None, "run the engine on --state and serve its sockets until SIGTERM")
    p.add_argument("--socket", type=Path, required=True, metavar="PATH", help="the Unix socket to create (mode 0660)")
    p.add_argument("--group", metavar="GROUP", help="the group that owns the socket: its members may use it")
    p.add_argument("--manager-socket", type=Path, metavar="PATH",
                   help="also serve the manager's socket here (mode 0660): filing requests and reading "
                        "their outcome, never approving them")
    p.add_argument("--manager-group", metavar="GROUP",
                   help="the group that owns the manager's socket: the manager's, and no operator's")
    p.add_argument("--log-max-bytes", type=_log_max_bytes, metavar="SIZE",
                   help="local runtime: rotate each agent's log at this size (bytes, or with K, M or G; "
                        "default 16M); one older file is kept")
    p = verb("trust-host", None, "show an SSH host's key fingerprint and, if you say so, add it to known_hosts")
    p.add_argument("target", metavar="HOST", help="as for --host")
    verb("status", _status, "one row per agent")
    p = verb("pending", _pending, "approvals waiting for the operator")
    p.add_argument("--all", action="store_true", help="resolved ones too")
    p = verb("propose", _propose, "ask for a commit of the agent's proposed repo to be deployed")
    p.add_argument("agent", type=_agent_name, metavar="AGENT")
    p.add_argument("ref", metavar="REF", help="a branch, tag or sha in the proposed repo")
    p.add_argument("--description", help="what the change is for")
    p = verb("request-spawn", _request_spawn, "ask for a new agent")
    p.add_argument("name", type=_agent_name, metavar="NAME")
    p.add_argument("--description", help="what the agent is for")
    p = verb("approve", _approve, "approve a request and carry it out (deploy or spawn)")
    p.add_argument("id", type=_approval_id, metavar="ID")
    p = verb("deny", _deny, "deny a request, with an optional note for the manager")
    p.add_argument("id", type=_approval_id, metavar="ID")
    p.add_argument("--note", help="the reason, recorded on denied/<id> and sent to the manager")
    p = verb("history", _history, "the agent's approval tags, oldest first, with their notes")
    p.add_argument("agent", type=_agent_name, metavar="AGENT")
    p = verb("events", _events, "the helper events sent to the manager, in order")
    p.add_argument("--since", type=int, default=0, metavar="SEQ", help="only events after this one")
    verb("meta-log", _meta_log, "the meta flake's log, newest first: spawns, deploys, rebuilds, destroys")
    for name, fn, help in (
        ("start", _act, "start the agent's container"),
        ("stop", _act, "stop the agent: a signal and a grace period, then by force"),
        ("restart", _act, "stop the agent and start it again"),
        ("rebuild", _rebuild, "build the agent's applied config again and switch to it"),
        ("pause", _act, "park the agent's turn loop (it keeps running)"),
        ("resume", _act, "let a paused agent take turns again"),
    ):
        p = verb(name, fn, help)
        p.add_argument("name", type=_agent_name, metavar="NAME")
        if name == "stop":
            p.add_argument("--force", action="store_true", help="kill at once, without the grace period")
    p = verb("destroy", _destroy, "remove the agent's container; its repos and state stay unless --purge")
    p.add_argument("name", type=_agent_name, metavar="NAME")
    p.add_argument("--purge", action="store_true",
                   help="also delete its config history and state folder, with no undo (asks first)")
    p.add_argument("--yes", action="store_true", help="purge without asking")
    p = verb("logs", _logs, "the agent's log")
    p.add_argument("name", type=_agent_name, metavar="NAME")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")
    p.add_argument("--lines", "-n", type=_log_lines, default=200, help="how many lines to start with")
    return parser


def engine_options(args: argparse.Namespace) -> EngineOptions:
    given = {"nixpkgs": args.nixpkgs, "container_config_dir": args.container_config_dir}
    given = {k: v for k, v in given.items() if v is not None}
    if given and args.runtime != "nixos":
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise HiveError(f"{flags}: only for --runtime nixos")
    return EngineOptions(runtime=args.runtime, locker=args.locker, runtime_options=given)


def _target(args: argparse.Namespace) -> Host | None:
    """The host the verb goes to; None for the engine in this process."""
    if args.host is not None and args.state is not None:
        raise HiveError("give --state (an engine in this process) or --host (a server), not both")
    if args.host is not None and args.verb in ("demo", "serve"):
        raise HiveError(f"{args.verb} runs the engine in this process: give --state, not --host")
    if args.state is not None or args.verb in ("demo", "serve"):
        return None
    config = load_config(args.config)
    if args.host is not None:
        return parse_host(args.host, config)
    if config.all_hosts and args.verb in (None, "console"):
        # The console opens on every host (see _console_all_hosts); with none listed, on the demo hive.
        return next(iter(config.hosts.values()), None)
    return default_host(config)


async def _client(args: argparse.Namespace, host: Host | None, seed_demo: bool = False) -> HiveClient:
    client = await open_client(host, args.state, engine_options(args), seed_demo=seed_demo)
    # A read-only session: refused in the client, whatever the host allows.
    client.read_only = client.read_only or args.read_only
    return client


async def _serve(args: argparse.Namespace) -> int:
    import logging

    from .host.server import check_socket_path, serve

    if args.state is None:
        raise HiveError("serve needs --state DIR: the state root to run the engine on")
    socket_path = check_socket_path(args.socket)
    manager_path = None
    if args.manager_socket is not None:
        manager_path = check_socket_path(args.manager_socket)
        if manager_path == socket_path:
            raise HiveError("the manager's socket must not be the admin socket: give it a path of its own")
    elif args.manager_group is not None:
        raise HiveError("--manager-group needs --manager-socket: the manager's socket to give that group")
    options = engine_options(args)
    if args.log_max_bytes is not None:
        if options.runtime != "local":
            raise HiveError("--log-max-bytes: only for --runtime local (the journal rotates the nixos runtime's logs)")
        options = dataclasses.replace(options, runtime_options={**options.runtime_options,
                                                                "log_max_bytes": args.log_max_bytes})
    logging.basicConfig(level=logging.INFO, format="hive-tui serve: %(message)s")
    engine = open_engine(args.state, options)
    try:
        await serve(engine, socket_path, args.group,
                    manager_path=manager_path, manager_group=args.manager_group)
    finally:
        engine.close()
    return 0


async def _trust_host(args: argparse.Namespace) -> int:
    from .client.ssh import trust_host_key

    host = parse_host(args.target, load_config(args.config))
    if host.transport != "ssh" or not host.hostname:
        raise HiveError(f"{args.target} is not an SSH host")

    def confirm(offer: str) -> bool:
        if not sys.stdin.isatty():
            raise HiveError(f"{offer}; not adding it: stdin is not a terminal to confirm on")
        print(f"{offer}.\nCheck it against the host's own (ssh-keygen -lf on its host key). "
              f"Add it to known_hosts? [y/N] ", end="", file=sys.stderr, flush=True)
        return sys.stdin.readline().strip().lower() in ("y", "yes")

    outcome = await trust_host_key(host.hostname, host.port, confirm)
    _emit(args, {"host": args.target, "outcome": outcome}, outcome)
    return 0


async def _run(args: argparse.Namespace) -> int:
    if _wants_all_hosts(args):
        return await _all_hosts(args)
    host = _target(args)
    if args.verb == "serve":
        return await _serve(args)
    if args.verb == "trust-host":
        return await _trust_host(args)
    if args.verb == "demo":
        from .host.demo_hive import seed_demo

        engine = open_engine(args.state or default_state(), engine_options(args))
        try:
            await asyncio.to_thread(seed_demo, engine)
        finally:
            engine.close()
        _emit(args, {"state": str(engine.state.root)}, f"demo hive ready in {engine.state.root}")
        return 0
    async with await _client(args, host) as client:
        return await args.func(client, args)


def console(args: argparse.Namespace) -> int:
    from .app import HiveApp, keymap_for
    from .settings import load_settings, settings_path

    config = load_config(args.config)
    # config.yaml beside the hosts file: a mistake in it (a key that clashes
    # with another included) ends here, before the console draws anything.
    settings = load_settings(settings_path(config.path))
    keymap_for(settings)
    # A console drawn into a file or a pipe is escape codes nobody reads,
    # and one reading keys from /dev/null waits forever.
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise HiveError("not a terminal; give a verb (hive-tui --help lists them)")
    all_hosts = _console_all_hosts(args, config)
    host = None if all_hosts and args.host is None else _target(args)
    if host is None and args.state is not None:
        # Before the console draws: a mistyped --state is an error, not an empty screen.
        require_hive(args.state, demo_hint(args.state, args.state))

    async def connect(h: Host | None) -> HiveClient:
        return await _client(args, h, seed_demo=True)

    async def open_host(h: Host) -> HiveClient:
        # The all-hosts view: no redialling here, each host's link has a backoff of its own.
        client = await open_client(h, None, engine_options(args), redial_for=0)
        client.read_only = client.read_only or args.read_only
        return client

    app = HiveApp(connect, hosts=list(config.hosts.values()), host=host, hosts_file=config.path,
                  open_host=open_host, all_hosts=all_hosts, read_only=args.read_only, settings=settings)
    app.run()
    if app.refused is not None:
        raise HiveError(app.refused)
    # Non-zero when the console ended on an error of its own (it has printed it).
    return app.return_code or 0


# -- every host at once ---------------------------------------------------------

ALL_HOSTS_VERBS = ("status", "pending", "events", "history")
# The exit status when some host failed while the others answered.
SOME_HOSTS_FAILED = 3


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _log_max_bytes(text: str) -> int:
    from .host.runtime.supervisor import LOG_MAX_MIN

    digits, unit = text.rstrip("KMGkmg"), text[len(text.rstrip("KMGkmg")):].upper()
    size = int(digits) * _SIZE_UNITS[unit] if digits.isdigit() and unit in _SIZE_UNITS else 0
    if not LOG_MAX_MIN <= size <= 1 << 40:
        raise argparse.ArgumentTypeError(f"the log size must be at least {LOG_MAX_MIN} bytes, "
                                         f"as bytes or with K, M or G, not {text!r}")
    return size


def _timeout(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1
    if not 0 < seconds <= 3600:
        raise argparse.ArgumentTypeError(f"timeout must be a number of seconds from 0 to 3600, not {text!r}")
    return seconds


def _console_all_hosts(args: argparse.Namespace, config: Config) -> bool:
    """Whether the console opens on every host: --all-hosts, or `default: all` with no host named."""
    if args.all_hosts:
        if args.host is not None or args.state is not None:
            raise HiveError("--all-hosts shows every host in the hosts file: give no --host or --state")
        if not config.hosts:
            raise HiveError(f"--all-hosts shows every host in {config.path or default_config_path()}, "
                            f"which names none")
        return True
    return config.all_hosts and bool(config.hosts) and args.host is None and args.state is None


def _wants_all_hosts(args: argparse.Namespace) -> bool:
    """--all-hosts, or a read verb with no host named when the hosts file says `default: all`."""
    if args.all_hosts:
        if args.host is not None or args.state is not None:
            raise HiveError("--all-hosts asks every host in the hosts file: give no --host or --state")
        if args.verb not in ALL_HOSTS_VERBS:
            raise HiveError(f"--all-hosts works with {', '.join(ALL_HOSTS_VERBS)}; "
                            f"{args.verb} goes to one host: name it with --host")
        return True
    return (args.host is None and args.state is None and args.verb in ALL_HOSTS_VERBS
            and load_config(args.config).all_hosts)


def _all_hosts_question(args: argparse.Namespace) -> Callable[[HiveClient], Awaitable[list[Any]]]:
    """What each host is asked for the verb: a list of wire models."""
    if args.verb == "status":
        return lambda client: client.status()
    if args.verb == "pending":
        return lambda client: client.approvals() if args.all else client.pending()
    if args.verb == "events":
        return lambda client: client.events(args.since)

    async def history(client: HiveClient) -> list[Any]:
        # The agent lives on some hosts only: the others have no history of it, which is no failure.
        return await client.history(args.agent) if args.agent in await client.agents() else []

    return history


async def _all_hosts(args: argparse.Namespace) -> int:
    """A read verb asked of every host at once; each row labelled with its host."""
    config = load_config(args.config)
    if not config.hosts:
        raise HiveError(f"--all-hosts asks every host in {config.path or default_config_path()}, which names none")

    async def opener(host: Host) -> HiveClient:
        # No redialling: a host that cannot be reached says so now, within the timeout.
        return await open_client(host, None, engine_options(args), redial_for=0)

    answers = await ask_every_host(config.hosts.values(), _all_hosts_question(args), opener, args.timeout)
    failed = [a for a in answers if a.error is not None]
    for a in answers:
        if a.error is not None or a.unavailable is not None:
            print(f"hive-tui: {a.host.name}: {plain(a.error or a.unavailable or '')}", file=sys.stderr)
    got = [(a.host.name, item) for a in answers for item in (a.value or [])]
    hosts, items = [h for h, _ in got], [item for _, item in got]
    tables: dict[str, Callable[..., str]] = {"status": report.status_table, "pending": report.approvals_table,
                                             "events": report.events_table, "history": report.history_table}
    _emit(args, [{"host": h, **item.to_wire()} for h, item in got], tables[args.verb](items, hosts=hosts))
    return SOME_HOSTS_FAILED if failed else 0


# What a shell reports for a program that SIGPIPE ended: `status | head` stops
# the verb as it stops any other filter, with no traceback.
SIGPIPE_EXIT = 128 + signal.SIGPIPE


def main(argv: list[str] | None = None) -> int:
    try:
        code = _main(argv)
        # Whatever is still buffered fails here, not at exit where it can only be reported.
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # The reader is gone. Python's own flush at exit would fail again and
        # say so on stderr: point stdout at /dev/null for it (the pattern of
        # the Python docs' note on SIGPIPE).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return SIGPIPE_EXIT


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for option, default in OPTION_DEFAULTS.items():
        setattr(args, option, getattr(args, option, default))
    try:
        if args.json and args.verb in (None, "console", "tour", "serve"):
            raise HiveError(f"--json: {args.verb or 'the console'} prints no objects; it is for the other verbs")
        if args.verb in (None, "console"):
            return console(args)
        if args.verb == "tour":
            from .tour import tour

            # The steps run through _main: a reader gone mid-tour ends the tour, in main.
            return tour(args, _main)
        return asyncio.run(_run(args))
    except HiveError as e:
        print(f"hive-tui: {plain(str(e))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
