"""The host list: a good file read faithfully, every mistake refused at its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from hive_tui.config import Config, ConfigError, Host, default_config_path, default_host, load_config, parse_host
from hive_tui.errors import HiveError

GOOD = """\
default: rack1            # the host used when none is given
hosts:
  rack1:
    transport: ssh
    address: ops@rack1.example.net:2222
    socket: /run/hive-tui/host.sock
    forward_agent: true
  v6:
    transport: ssh
    address: "[fe80::1]"
    socket: /run/hive-tui/host.sock
  alias.only:
    transport: ssh
    address: rack2
    socket: /srv/hive.sock
  here:
    transport: unix
    socket: /run/hive-tui/host.sock
  demo:
    transport: embedded
    state: ~/hives/demo
  Demo_2:
    transport: embedded
"""


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "hosts.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_a_good_file_gives_its_hosts_in_order(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = write(tmp_path, GOOD)
    config = load_config(path)
    assert config.path == path
    assert config.default == "rack1"
    assert config.hosts == {
        "rack1": Host("rack1", "ssh", socket="/run/hive-tui/host.sock", user="ops",
                      hostname="rack1.example.net", port=2222, forward_agent=True),
        "v6": Host("v6", "ssh", socket="/run/hive-tui/host.sock", hostname="fe80::1"),
        "alias.only": Host("alias.only", "ssh", socket="/srv/hive.sock", hostname="rack2"),
        "here": Host("here", "unix", socket="/run/hive-tui/host.sock"),
        "demo": Host("demo", "embedded", state=tmp_path / "home" / "hives" / "demo"),
        "Demo_2": Host("Demo_2", "embedded"),
    }
    assert list(config.hosts) == ["rack1", "v6", "alias.only", "here", "demo", "Demo_2"]
    assert default_host(config) is config.hosts["rack1"]
    assert [h.address() for h in config.hosts.values()] == [
        "ssh ops@rack1.example.net:2222:/run/hive-tui/host.sock",
        "ssh [fe80::1]:/run/hive-tui/host.sock",
        "ssh rack2:/srv/hive.sock",
        "unix:/run/hive-tui/host.sock",
        f"embedded:{tmp_path}/home/hives/demo",
        "embedded",
    ]


def test_a_missing_file_is_an_empty_host_list(tmp_path):
    config = load_config(tmp_path / "absent.yaml")
    assert config == Config(hosts={}, default=None, path=tmp_path / "absent.yaml")
    assert default_host(config) is None


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "hosts:\n", "hosts: {}\ndefault:\n"])
def test_empty_files_have_no_hosts_and_no_default(tmp_path, text):
    config = load_config(write(tmp_path, text))
    assert (config.hosts, config.default) == ({}, None)


def test_the_default_path_is_in_the_config_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_config_path() == tmp_path / "xdg" / "hive-tui" / "hosts.yaml"
    assert load_config().path == tmp_path / "xdg" / "hive-tui" / "hosts.yaml"


SSH = "hosts:\n  a:\n    transport: ssh\n    socket: /s\n"
UNIX = "hosts:\n  a:\n    transport: unix\n"

MALFORMED = [
    # YAML itself
    ("hosts: [a\ndefault: b\n", 2, "expected ',' or ']'"),
    ("hosts:\n\track1:\n\t\ttransport: unix\n", 2, "tabs"),
    ("hosts:\n  a:\n\t  transport: unix\n", 3, "tabs"),
    ("hosts:\n  a: 'unclosed\n", 3, "end of stream"),
    ("hosts: {}\n---\nhosts: {}\n", 2, "expected a single document in the stream, but found another document"),
    ("hosts:\n  a: *nowhere\n", 2, "undefined alias"),
    ("hosts:\n  a:\n    transport: unix\n    socket: /s\x07\n", 4, "U+0007"),
    # tags that a full loader would construct
    ("hosts:\n  a: !!python/object/apply:os.system ['true']\n", 2, "!!python/object/apply:os.system"),
    ("hosts: !!python/object:builtins.dict {}\n", 1, "!!python/object:builtins.dict"),
    (UNIX + "    socket: !!python/name:os.system ''\n", 4, "!!python/name:os.system"),
    (UNIX + "    socket: !custom /s\n", 4, "tag !custom is not allowed"),
    # shapes
    ("- a\n- b\n", 1, "must be a mapping with `hosts`"),
    ("just text\n", 1, "not a string"),
    ("hosts:\n  - here\n  - there\n", 2, "hosts must be a mapping, not a list"),
    ("hosts: here\n", 1, "hosts must be a mapping, not a string"),
    ("hosts:\n  a:\n", 2, "host a must be a mapping, not an empty value"),
    ("hosts:\n  a: [transport, unix]\n", 2, "host a must be a mapping, not a list"),
    ("hosts:\n  ? [a, b]\n  : {}\n", 2, "must be a name, not a list"),
    ("hosts:\n  a:\n    transport: unix\n    socket: /s\n  b:\n    transport: unix\n    socket: /s\n"
     "  a:\n    transport: embedded\n", 8, "duplicate key 'a' in hosts; the first is on line 2"),
    (UNIX + "    socket: /s\n    socket: /t\n", 5, "duplicate key 'socket'"),
    ("default: a\nhosts: {}\ndefault: b\n", 3, "duplicate key 'default'"),
    # unknown keys
    ("host:\n  a: {}\n", 1, "unknown key 'host' in the host list; allowed: default, hosts"),
    (UNIX + "    socket: /s\n    sockett: /s\n", 5, "unknown key 'sockett' in host a; allowed: transport, address"),
    ("base: &b {transport: unix}\nhosts:\n  a:\n    <<: *b\n    socket: /s\n", 1, "unknown key 'base'"),
    ("hosts:\n  a:\n    <<: {transport: unix}\n", 3, "unknown key '<<'"),
    # names
    ("hosts:\n  -a:\n    transport: embedded\n", 2, "invalid host name '-a'"),
    ("hosts:\n  a b:\n    transport: embedded\n", 2, "invalid host name 'a b'"),
    ("hosts:\n  unix:/s:\n    transport: embedded\n", 2, "invalid host name"),
    ("hosts:\n  " + "a" * 65 + ":\n    transport: embedded\n", 2, "at most 64 characters"),
    # transports
    ("hosts:\n  a:\n    socket: /s\n", 2, "host a has no transport; give one of ssh, unix, embedded"),
    ("hosts:\n  a:\n    transport: docker\n", 3, "unknown transport 'docker'; use one of ssh, unix, embedded"),
    ("hosts:\n  a:\n    transport: [ssh]\n", 3, "transport must be a string, not a list"),
    (UNIX, 2, "host a: unix hosts need socket"),
    (SSH, 2, "host a: ssh hosts need address"),
    ("hosts:\n  a:\n    transport: ssh\n    address: h\n", 2, "ssh hosts need socket"),
    # sockets
    (UNIX + "    socket: run/hive.sock\n", 4, "must be absolute"),
    (UNIX + "    socket: ''\n", 4, "must be absolute"),
    (UNIX + '    socket: "/run/\\0x"\n', 4, "NUL"),
    (UNIX + "    socket: 17\n", 4, "socket must be a string, not a number (quote it"),
    (UNIX + "    socket:\n", 4, "socket must be a string, not an empty value"),
    # addresses
    (SSH + "    address: h:abc\n", 5, "the port 'abc' is not a number"),
    (SSH + "    address: h:0\n", 5, "not from 1 to 65535"),
    (SSH + "    address: h:65536\n", 5, "not from 1 to 65535"),
    (SSH + "    address: h:99999999999999999999999\n", 5, "not from 1 to 65535"),
    (SSH + "    address: 'h:'\n", 5, "port after ':' is empty"),
    (SSH + "    address: ops@\n", 5, "the host is empty"),
    (SSH + "    address: ':22'\n", 5, "the host is empty"),
    (SSH + "    address: '@h'\n", 5, "the user is empty"),
    (SSH + "    address: ::1\n", 5, "IPv6 address goes in brackets"),
    (SSH + "    address: '[::1'\n", 5, "no ']' closes"),
    (SSH + "    address: '[rack1]:22'\n", 5, "not an IPv6 address"),
    (SSH + "    address: '[::1]22'\n", 5, "only :port may follow"),
    (SSH + "    address: 'rack 1'\n", 5, "contains ' '"),
    (SSH + '    address: "rack\\t1"\n', 5, "contains '\\t'"),
    (SSH + "    address: -oProxyCommand=x\n", 5, "read as an option"),
    (SSH + "    address: 2222\n", 5, "address must be a string, not a number"),
    # fields that belong to another transport
    (SSH + "    address: h\n    forward_agent: yes please\n", 6, "forward_agent must be true or false, not a string"),
    (SSH + "    address: h\n    state: /var/lib/x\n", 6, "state is only for embedded hosts, and this one is ssh"),
    (UNIX + "    socket: /s\n    forward_agent: true\n", 5, "forward_agent is only for ssh hosts"),
    (UNIX + "    socket: /s\n    address: h\n", 5, "address is only for ssh hosts"),
    ("hosts:\n  a:\n    transport: embedded\n    socket: /s\n", 4, "socket is only for ssh and unix hosts"),
    ("hosts:\n  a:\n    transport: embedded\n    state: hives/demo\n", 4, "absolute path or start with ~"),
    ("hosts:\n  a:\n    transport: embedded\n    state: false\n", 4, "state must be a string, not a boolean"),
    # the default
    ("default: b\nhosts:\n  a:\n    transport: embedded\n", 1, "default 'b' is not a host in this file; the hosts are a"),
    ("default: b\n", 1, "the file defines no hosts"),
    ("hosts:\n  a:\n    transport: embedded\ndefault: [a]\n", 4, "default must be a host name, not a list"),
]


@pytest.mark.parametrize(("text", "line", "what"), MALFORMED)
def test_a_malformed_file_is_refused_at_its_line(tmp_path, text, line, what):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert what in message
    assert isinstance(caught.value, HiveError)


def test_non_utf8_is_refused_at_the_line_of_the_bad_byte(tmp_path):
    path = write(tmp_path, b"hosts:\n  a:\n    transport: unix\n    socket: /caf\xe9\n")
    with pytest.raises(ConfigError, match=rf"^{path}:4: not valid UTF-8 \(byte 0xe9\)"):
        load_config(path)


def test_a_utf8_byte_order_mark_is_fine(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbfhosts:\n  here:\n    transport: unix\n    socket: /s\n")
    assert load_config(path).hosts["here"].socket == "/s"


def test_python_tags_are_never_constructed(tmp_path):
    marker = tmp_path / "ran"
    path = write(tmp_path, f"hosts:\n  a: !!python/object/apply:os.mkdir ['{marker}']\n")
    with pytest.raises(ConfigError, match=":2: the tag !!python/object/apply:os.mkdir is not allowed"):
        load_config(path)
    assert not marker.exists()


def test_a_file_over_a_mebibyte_is_refused(tmp_path):
    path = write(tmp_path, "# padding\n" * 110_000)
    with pytest.raises(ConfigError, match=rf"^{path}: larger than 1 MiB"):
        load_config(path)


def test_a_folder_in_place_of_the_file_is_refused(tmp_path):
    (tmp_path / "hosts.yaml").mkdir()
    with pytest.raises(ConfigError, match="cannot read the host list"):
        load_config(tmp_path / "hosts.yaml")


def test_an_alias_bomb_stays_cheap(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 30)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=":1: unknown key 'a0'"):
        load_config(path)


@pytest.fixture
def config(tmp_path) -> Config:
    return load_config(write(tmp_path, GOOD))


@pytest.mark.parametrize(("spec", "host"), [
    ("unix:/run/hive-tui/host.sock", Host("unix:/run/hive-tui/host.sock", "unix", socket="/run/hive-tui/host.sock")),
    ("ssh://rack1.example.net/run/hive-tui/host.sock",
     Host("ssh://rack1.example.net/run/hive-tui/host.sock", "ssh", socket="/run/hive-tui/host.sock",
          hostname="rack1.example.net")),
    ("ssh://ops@rack1:2222/run/h.sock",
     Host("ssh://ops@rack1:2222/run/h.sock", "ssh", socket="/run/h.sock", user="ops", hostname="rack1", port=2222)),
    ("ssh://ops@[2001:db8::7]:22/s", Host("ssh://ops@[2001:db8::7]:22/s", "ssh", socket="/s", user="ops",
                                          hostname="2001:db8::7", port=22)),
    ("ssh://[::1]/s", Host("ssh://[::1]/s", "ssh", socket="/s", hostname="::1")),
])
def test_hosts_given_whole(config, spec, host):
    assert parse_host(spec, config) == host


def test_described_hosts_given_whole(config):
    assert parse_host("ssh://ops@[::1]:22/s", config).address() == "ssh ops@[::1]:22:/s"
    assert parse_host("unix:/run/h.sock", config).address() == "unix:/run/h.sock"


def test_hosts_by_name(config):
    assert parse_host("rack1", config) is config.hosts["rack1"]
    assert parse_host("here", config).address() == "unix:/run/hive-tui/host.sock"


@pytest.mark.parametrize(("spec", "what"), [
    ("", "the host is empty"),
    ("  ", "the host is empty"),
    ("unix:", "must be absolute"),
    ("unix:run/h.sock", "must be absolute"),
    ("unix:/run/\0x", "NUL"),
    ("ssh://rack1", "no socket path after the host"),
    ("ssh://rack1/", "no socket path after the host"),
    ("ssh:///run/h.sock", "the host is empty"),
    ("ssh://rack1:0/s", "not from 1 to 65535"),
    ("ssh://rack1:65536/s", "not from 1 to 65535"),
    ("ssh://rack1:ssh/s", "the port 'ssh' is not a number"),
    ("ssh://::1/s", "in brackets"),
    ("ssh://[::1/s", "no ']' closes"),
    ("ssh://@rack1/s", "the user is empty"),
    ("ssh://-oProxyCommand=x/s", "read as an option"),
    ("ssh://rack 1/s", "contains ' '"),
    ("/run/h.sock", "a socket path is given as unix:/run/h.sock"),
])
def test_malformed_specs_say_what_is_wrong(config, spec, what):
    with pytest.raises(ConfigError) as caught:
        parse_host(spec, config)
    assert what in str(caught.value)


def test_an_unknown_name_lists_the_configured_ones(config):
    with pytest.raises(ConfigError) as caught:
        parse_host("rack9", config)
    assert str(caught.value) == (
        f"no host named 'rack9' in {config.path}; the configured hosts are "
        f"rack1, v6, alias.only, here, demo, Demo_2"
    )


def test_an_unknown_name_with_no_hosts_says_where_the_file_is(tmp_path):
    empty = load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match=f"none are configured in {tmp_path / 'absent.yaml'}"):
        parse_host("rack1", empty)


def test_no_default_means_the_embedded_demo(tmp_path):
    config = load_config(write(tmp_path, "hosts:\n  here:\n    transport: unix\n    socket: /s\n"))
    assert default_host(config) is None
