"""The hosts file's fleet fields: `read_only`, `accent` and `parallel` on a host,
`default: all` at the top; a mistake in any is reported at its file and line."""

from __future__ import annotations

import subprocess
import textwrap

import pytest

from hive_tui.config import ConfigError, default_host, load_config

from .hyperhive_daemon import sample_daemon
from .serving import EXE


def write(tmp_path, text: str):
    path = tmp_path / "hosts.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_the_fleet_fields_and_their_defaults(tmp_path):
    config = load_config(write(tmp_path, """\
        default: all
        hosts:
          prod:
            transport: unix
            socket: /run/prod.sock
            read_only: true
            accent: red
            parallel: 2
          lab:
            transport: unix
            socket: /run/lab.sock
            accent: "#0af"
        """))
    prod, lab = config.hosts["prod"], config.hosts["lab"]
    assert (prod.read_only, prod.accent, prod.parallel) == (True, "red", 2)
    assert (lab.read_only, lab.accent, lab.parallel) == (False, "#0af", 4)
    assert config.all_hosts and config.default is None
    with pytest.raises(ConfigError, match="the hosts file's default is every host"):
        default_host(config)


@pytest.mark.parametrize("field, line, what", [
    ("accent: redd", 5, "accent 'redd': not a colour this console knows; use one of red, "),
    ("accent: '#12345'", 5, "#rgb or #rrggbb"),
    ("accent: 7", 5, "accent must be a string"),
    ("read_only: 'yes'", 5, "read_only must be true or false"),
    ("parallel: 0", 5, "parallel must be a whole number from 1 to 64"),
    ("parallel: 65", 5, "parallel must be a whole number from 1 to 64"),
    ("parallel: four", 5, "parallel must be a whole number from 1 to 64"),
    ("parallel: true", 5, "parallel must be a whole number from 1 to 64"),
])
def test_a_bad_fleet_field_is_refused_at_its_line(tmp_path, field, line, what):
    path = write(tmp_path, f"""\
        hosts:
          prod:
            transport: unix
            socket: /run/prod.sock
            {field}
        """)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}:{line}: host prod: "), str(e.value)
    assert what in str(e.value)


def test_default_all_is_refused_beside_a_host_named_all(tmp_path):
    path = write(tmp_path, """\
        default: all
        hosts:
          all:
            transport: unix
            socket: /run/all.sock
        """)
    with pytest.raises(ConfigError, match=r"hosts.yaml:1: default all is ambiguous"):
        load_config(path)


def hive_tui(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(EXE), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


ACTIONS = [["stop", "north"], ["start", "west"], ["restart", "north"], ["pause", "north"], ["resume", "north"],
           ["approve", "1"], ["deny", "1"], ["rebuild", "north"], ["destroy", "north"],
           ["propose", "north", "main"], ["request-spawn", "east"]]


@pytest.mark.parametrize("args", ACTIONS, ids=lambda a: a[0])
def test_a_read_only_host_refuses_actions_in_the_client(tmp_path, args):
    """Refused before anything is sent: the daemon, which would carry anything out, never hears of it."""
    with sample_daemon(tmp_path / "hh.sock") as daemon:
        config = write(tmp_path, f"""\
            hosts:
              prod:
                transport: unix
                socket: {daemon.sock}
                read_only: true
            """)
        for how in (["--config", str(config), "--host", "prod"], ["--read-only", "--host", f"unix:{daemon.sock}"]):
            proc = hive_tui(*how, *args)
            assert proc.returncode == 1 and "is read-only here" in proc.stderr, proc
        assert set(daemon.received) <= {"capabilities", "pending"}
        assert [a["status"] for a in daemon.approvals] == ["pending"] * 3
        # Reading still works.
        proc = hive_tui("--config", str(config), "--host", "prod", "status")
        assert proc.returncode == 0 and "north" in proc.stdout, proc
