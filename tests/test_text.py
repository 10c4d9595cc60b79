"""Names, paths and untrusted text: the checks at the edges."""

from __future__ import annotations

import pytest

from hive_tui.errors import HiveError, InvalidName
from hive_tui.names import MAX_NAME_LEN, check_name, path_under
from hive_tui.plain import one_line, plain
from hive_tui.host.validate import check_text

from .helpers import REQUIRE_VAR, require_program


@pytest.mark.parametrize("name", ["a", "alpha", "agent-7", "a" * MAX_NAME_LEN, "x-1-y"])
def test_good_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", [
    "", "..", ".", "/etc", "a/b", "-rf", "agent1\n", "\nagent1", "Alpha", "7up", "a_b", "a b", "a.b",
    "ä", "ａ", "a" * (MAX_NAME_LEN + 1), None, 7,
])
def test_bad_names(name):
    with pytest.raises(InvalidName):
        check_name(name)


def test_paths_under_the_root_follow_no_link(tmp_path):
    root = tmp_path / "root"
    (root / "applied" / "beta").mkdir(parents=True)
    (root / "applied" / "evil").symlink_to(tmp_path)
    (root / "applied" / "alias").symlink_to(root / "applied" / "beta")
    assert path_under(root, "applied", "good") == (root / "applied" / "good").resolve()
    for parts in (("applied", "evil", "x"), ("applied", "alias")):
        with pytest.raises(HiveError, match="is a symbolic link; the engine follows no link in the state root"):
            path_under(root, *parts)
    with pytest.raises(HiveError, match="is not a plain name under the state root"):
        path_under(root, "..", "x")


def test_control_characters_become_visible_escapes():
    hostile = "a\x1b]0;title\x07b\x9bc\u202ed\x7fe\r\n\tf [bold]g[/]"
    shown = plain(hostile)
    assert shown == "a\\x1b]0;title\\x07b\\x9bc\\u202ed\\x7fe\\x0d\n\tf [bold]g[/]"
    assert not any(c in shown for c in "\x1b\x07\x9b\u202e\x7f\r")


def test_one_line_cuts_and_marks_more():
    assert one_line("first\nsecond") == "first …"
    assert one_line("x" * 10, 5) == "xxxx…"
    assert one_line(None) == ""


def test_free_text_is_kept_verbatim_unless_it_cannot_be_stored():
    text = "[red]markup[/] \x1b[31m and \u202e bidi"
    assert check_text(text, "note") == text
    for bad, message in [(3, "must be a string"), ("a\0b", "NUL"), ("\udc80", "not valid UTF-8"),
                         ("x" * 70000, "the limit is")]:
        with pytest.raises(HiveError, match=message):
            check_text(bad, "note")


def test_a_missing_program_skips_on_a_bare_machine_and_fails_in_ci(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(REQUIRE_VAR, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"nix is not installed \(Debian: apt-get install nix-bin\)"):
        require_program("nix")
    monkeypatch.setenv(REQUIRE_VAR, "1")
    with pytest.raises(pytest.fail.Exception, match="HIVE_TUI_REQUIRE_PROGRAMS=1 forbids skipping"):
        require_program("nix")
