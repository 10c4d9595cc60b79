"""The operator's list of hosts: which hives the console reaches, and how.

A YAML file in the platform's config folder (`default_config_path()`):

    default: rack1            # optional: the host used when none is given
    hosts:
      rack1:
        transport: ssh        # ssh | unix | embedded
        address: ops@rack1.example.net:2222   # [user@]host[:port]; IPv6 as [::1]:22
        socket: /run/hive-tui/host.sock       # ssh and unix: the socket path on that host
        forward_agent: false  # ssh only, optional, default false
      here:
        transport: unix
        socket: /run/hive-tui/host.sock
      demo:
        transport: embedded
        state: ~/hives/demo   # embedded only, optional (default: the demo hive)

Any host may also say `read_only: true` (this console and CLI send it no
action), `accent: red` (a colour for its title and header: a name below or
#rgb / #rrggbb) and `parallel: 8` (how many agents a bulk action works on
at once there, default 4). `default: all` makes every host the default.

An ssh host may be an alias from ~/.ssh/config. Host names match
`[A-Za-z0-9][A-Za-z0-9._-]*`, at most 64 characters, taken as written.
On the command line a host is one of those names, or given whole as
`unix:/path/to/socket` or `ssh://[user@]host[:port]/path/to/socket`.

The file says where an operator's approvals go, so it is read strictly:
a mistake is refused as `<path>:<line>: what is wrong` instead of being
guessed around. It is only composed into YAML nodes, never constructed,
so no tag can build an object, and every value keeps its line.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import platformdirs
import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from .yamlfile import TAG as _YAML
from .yamlfile import At as _At
from .yamlfile import ConfigError, read
from .yamlfile import at as _at
from .yamlfile import is_null as _is_null
from .yamlfile import items as _items
from .yamlfile import kind as _kind
from .yamlfile import string as _string

__all__ = ["ConfigError"]
MAX_HOST_NAME = 64
TRANSPORTS = ("ssh", "unix", "embedded")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_HOST_KEYS = ("transport", "address", "socket", "forward_agent", "state", "read_only", "accent", "parallel")
# Fields any host may have, whatever its transport.
_ANY_TRANSPORT = ("read_only", "accent", "parallel")
# `default: all`: every host at once.
ALL_HOSTS = "all"
DEFAULT_PARALLEL, MAX_PARALLEL = 4, 64
# Colour names every terminal theme of the console can show.
ACCENTS = ("red", "orange", "yellow", "lime", "green", "teal", "cyan", "blue", "navy", "purple", "magenta", "pink",
           "maroon", "olive", "silver", "grey", "white", "black")
_HEX_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_TAKES = {"ssh": ("address", "socket", "forward_agent"), "unix": ("socket",), "embedded": ("state",)}
_REQUIRES = {"ssh": ("address", "socket"), "unix": ("socket",), "embedded": ()}
_SPEC_FORMS = "a host name, unix:/path/to/socket or ssh://[user@]host[:port]/path/to/socket"


@dataclass(frozen=True)
class Host:
    name: str
    transport: str
    socket: str | None = None
    user: str | None = None
    hostname: str | None = None
    port: int | None = None
    state: Path | None = None
    forward_agent: bool = False
    # Actions refused by the client; a read-only session sets it on every host.
    read_only: bool = False
    # A colour name or #rgb / #rrggbb, for its title bar and header; None: the theme's.
    accent: str | None = None
    # How many agents a bulk action works on at once on this host.
    parallel: int = DEFAULT_PARALLEL

    def address(self) -> str:
        if self.transport == "ssh":
            host = f"[{self.hostname}]" if ":" in (self.hostname or "") else self.hostname
            user = f"{self.user}@" if self.user else ""
            port = f":{self.port}" if self.port is not None else ""
            return f"ssh {user}{host}{port}:{self.socket}"
        if self.transport == "unix":
            return f"unix:{self.socket}"
        return "embedded" if self.state is None else f"embedded:{self.state}"


@dataclass(frozen=True)
class Config:
    hosts: dict[str, Host]
    default: str | None
    path: Path | None
    # `default: all`: every host is the default (then `default` is None).
    all_hosts: bool = False


def default_config_path() -> Path:
    return platformdirs.user_config_path("hive-tui") / "hosts.yaml"


def load_config(path: Path | None = None) -> Config:
    """The host list at `path` (default: `default_config_path()`); a missing file is an empty one."""
    path = default_config_path() if path is None else Path(path)
    root = read(path, "host list")
    try:
        return _parse(root, path)
    except _At as e:
        raise ConfigError(f"{path}:{e.line}: {e.message}") from None


def _parse(root: Node | None, path: Path) -> Config:
    if root is None:
        return Config(hosts={}, default=None, path=path)
    if not isinstance(root, MappingNode):
        raise _at(root, f"the host list must be a mapping with `hosts` and optionally `default`, not {_kind(root)}")
    top = _items(root, "the host list", ("default", "hosts"))
    hosts: dict[str, Host] = {}
    if "hosts" in top and not _is_null(top["hosts"][1]):
        for name, (key, node) in _items(top["hosts"][1], "hosts").items():
            hosts[name] = _host(name, key, node)
    default = None
    if "default" in top and not _is_null(node := top["default"][1]):
        if not isinstance(node, ScalarNode):
            raise _at(node, f"default must be a host name, not {_kind(node)}")
        if node.value == ALL_HOSTS:
            if ALL_HOSTS in hosts:
                raise _at(node, f"default {ALL_HOSTS} is ambiguous: it means every host, and a host is named "
                                f"{ALL_HOSTS}; rename that host")
            return Config(hosts=hosts, default=None, path=path, all_hosts=True)
        if node.value not in hosts:
            known = f"the hosts are {', '.join(hosts)}" if hosts else "the file defines no hosts"
            raise _at(node, f"default {node.value!r} is not a host in this file; {known}")
        default = node.value
    return Config(hosts=hosts, default=default, path=path)


def _host(name: str, key: Node, node: Node) -> Host:
    if len(name) > MAX_HOST_NAME or not _NAME_RE.fullmatch(name):
        raise _at(key, f"invalid host name {name!r}: use letters, digits, '.', '_' and '-', "
                       f"a letter or digit first, at most {MAX_HOST_NAME} characters")
    what = f"host {name}"
    fields = _items(node, what, _HOST_KEYS)
    if "transport" not in fields:
        raise _at(key, f"{what} has no transport; give one of {', '.join(TRANSPORTS)}")
    tnode = fields["transport"][1]
    transport = _string(tnode, f"{what}: transport")
    if transport not in TRANSPORTS:
        raise _at(tnode, f"{what}: unknown transport {transport!r}; use one of {', '.join(TRANSPORTS)}")
    for field, (fkey, _) in fields.items():
        if field != "transport" and field not in _TAKES[transport] and field not in _ANY_TRANSPORT:
            owners = " and ".join(t for t in TRANSPORTS if field in _TAKES[t])
            raise _at(fkey, f"{what}: {field} is only for {owners} hosts, and this one is {transport}")
    for field in _REQUIRES[transport]:
        if field not in fields:
            raise _at(key, f"{what}: {transport} hosts need {field}")
    values: dict[str, Any] = {}
    for field, (_, vnode) in fields.items():
        try:
            if field == "socket":
                values["socket"] = _check_socket(_string(vnode, f"{what}: socket"))
            elif field == "address":
                address = _string(vnode, f"{what}: address")
                values["user"], values["hostname"], values["port"] = _split_address(address)
            elif field in ("forward_agent", "read_only"):
                if vnode.tag != _YAML + "bool":
                    raise _at(vnode, f"{what}: {field} must be true or false, not {_kind(vnode)}")
                values[field] = yaml.constructor.SafeConstructor.bool_values[vnode.value.lower()]
            elif field == "accent":
                values["accent"] = _accent(_string(vnode, f"{what}: accent"))
            elif field == "parallel":
                if vnode.tag != _YAML + "int" or not vnode.value.isdigit() or not 1 <= int(vnode.value) <= MAX_PARALLEL:
                    raise _at(vnode, f"{what}: parallel must be a whole number from 1 to {MAX_PARALLEL}, "
                                     f"not {vnode.value!r}")
                values["parallel"] = int(vnode.value)
            elif field == "state":
                values["state"] = _state(_string(vnode, f"{what}: state"))
        except ValueError as e:
            raise _at(vnode, f"{what}: {field} {vnode.value!r}: {e}") from None
    return Host(name=name, transport=transport, **values)


def _accent(text: str) -> str:
    colour = text.strip().lower()
    if colour.startswith("#"):
        if not _HEX_COLOUR.fullmatch(colour):
            raise ValueError("a colour in hex is #rgb or #rrggbb")
        return colour
    if colour not in ACCENTS:
        raise ValueError(f"not a colour this console knows; use one of {', '.join(ACCENTS)}, or #rgb or #rrggbb")
    return colour


def _check_socket(path: str) -> str:
    if "\0" in path:
        raise ValueError("contains a NUL character")
    if not path.startswith("/"):
        raise ValueError("the socket path must be absolute")
    return path


def _state(text: str) -> Path:
    if "\0" in text:
        raise ValueError("contains a NUL character")
    path = Path(os.path.expanduser(text))
    # A relative state would depend on where the console was started.
    if not path.is_absolute():
        raise ValueError("the state folder must be an absolute path or start with ~")
    return path


def _split_address(text: str) -> tuple[str | None, str, int | None]:
    """`[user@]host[:port]` as (user, host, port); an IPv6 host comes in brackets and leaves without."""
    user, at, rest = text.rpartition("@")
    if rest.startswith("["):
        host, bracket, tail = rest[1:].partition("]")
        if not bracket:
            raise ValueError("'[' opens an IPv6 address that no ']' closes")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} in brackets is not an IPv6 address") from None
        if any(c.isspace() or not c.isprintable() for c in host):
            raise ValueError("the IPv6 address contains a space or control character")
        if tail and not tail.startswith(":"):
            raise ValueError("only :port may follow the ']'")
        port = tail[1:] if tail else None
    else:
        host, colon, port = rest.partition(":")
        if ":" in port:
            raise ValueError("an IPv6 address goes in brackets, as in [::1]:22")
        port = port if colon else None
        _check_token(host, "the host")
    if at:
        _check_token(user, "the user")
    return (user if at else None), host, _port(port)


def _check_token(text: str, what: str) -> None:
    if not text:
        raise ValueError(f"{what} is empty")
    if text.startswith("-"):
        raise ValueError(f"{what} starts with '-', which ssh would read as an option")
    for c in text:
        if c.isspace() or not c.isprintable() or c in "@/:[]":
            raise ValueError(f"{what} contains {c!r}")


def _port(text: str | None) -> int | None:
    if text is None:
        return None
    if not text:
        raise ValueError("the port after ':' is empty")
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"the port {text!r} is not a number")
    if len(text) > 5 or not 1 <= int(text) <= 65535:
        raise ValueError(f"the port {text} is not from 1 to 65535")
    return int(text)


def parse_host(spec: str, config: Config) -> Host:
    """The host a command line names: `unix:PATH`, `ssh://[user@]host[:port]/PATH`, or a configured name."""
    if not spec.strip():
        raise ConfigError(f"the host is empty; give {_SPEC_FORMS}")
    try:
        if spec.startswith("unix:"):
            return Host(name=spec, transport="unix", socket=_check_socket(spec[len("unix:"):]))
        if spec.startswith("ssh://"):
            authority, slash, path = spec[len("ssh://"):].partition("/")
            if not path:
                raise ValueError("no socket path after the host, as in ssh://host/run/hive-tui/host.sock")
            user, hostname, port = _split_address(authority)
            return Host(name=spec, transport="ssh", socket=_check_socket("/" + path),
                        user=user, hostname=hostname, port=port)
    except ValueError as e:
        raise ConfigError(f"host {spec!r}: {e}") from None
    if spec in config.hosts:
        return config.hosts[spec]
    where = config.path or default_config_path()
    if spec.startswith("/"):
        raise ConfigError(f"no host named {spec!r}; a socket path is given as unix:{spec}")
    if not config.hosts:
        raise ConfigError(f"no host named {spec!r}: none are configured in {where}; give {_SPEC_FORMS}")
    raise ConfigError(f"no host named {spec!r} in {where}; the configured hosts are {', '.join(config.hosts)}")


def default_host(config: Config) -> Host | None:
    """The configured default host, or None: the embedded demo hive."""
    if config.all_hosts:
        raise ConfigError(f"the hosts file's default is every host ({config.path or default_config_path()} says "
                          f"`default: all`); name one with --host, or give --all-hosts")
    if config.default is None:
        return None
    if config.default not in config.hosts:
        raise ConfigError(f"the default host {config.default!r} is not in the host list")
    return config.hosts[config.default]
