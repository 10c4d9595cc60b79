"""Keys moved in config.yaml: the console takes them at their new keys, and
the footer, the help screen, the palette and the kept-row hint all show them;
a mistake in them stops the console before it draws, naming file and line."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from textual.command import CommandList
from textual.widgets import Footer, Markdown
from textual.widgets._footer import FooterKey

from hive_tui.actions import ACTIONS
from hive_tui.app import HiveApp, binding_sets, keymap_for
from hive_tui.client.embedded import EmbeddedClient
from hive_tui.config import ConfigError
from hive_tui.host.engine import Engine
from hive_tui.keymap import keys_of, shown
from hive_tui.settings import KeyChoice, Settings, key_name, load_settings, settings_path
from hive_tui.widgets.help import HelpScreen, help_markdown

from .helpers import agent_files, stop_all, until
from .kept import KeptClient
from .scripted import NOW
from .serving import EXE, seeded_hive, stop_agents
from .test_console import commit_proposal, select_agent, select_request, tag

SIZE = (160, 48)
README = Path(__file__).parent.parent / "README.md"


@pytest.fixture
def hive(tmp_path):
    """Two agents, beta and alpha, each with a pending change: requests #1 and #2."""
    root = tmp_path / "hive"
    seeded_hive(root, {"alpha": agent_files(), "beta": agent_files()})
    with Engine(root, locker="builtin") as engine:
        for n, name in enumerate(("beta", "alpha"), 1):
            commit_proposal(root, name, {"notes.txt": f"{n}\n".encode()})
            engine.request_apply_commit(name, "main", f"change {n}")

    async def connect(host):
        return EmbeddedClient(Engine(root, locker="builtin", runtime_options={"stop_grace": 2.0}))

    try:
        yield root, connect
    finally:
        stop_agents(root)


def moved(**keys: str | tuple[str, ...]) -> Settings:
    """Settings as config.yaml gives them: each id's keys, on a line of its own."""
    return Settings(keys={id.replace("_", "-"): KeyChoice((k,) if isinstance(k, str) else k, line)
                          for line, (id, k) in enumerate(keys.items(), 2)}, path=Path("config.yaml"))


async def live(pilot) -> HiveApp:
    app = pilot.app
    await until(pilot, lambda: app.link == "live" and app.containers.row_count == 2 and app.approvals.row_count == 2,
                what="the console to connect")
    return app


def footer(app: HiveApp) -> dict[str, str]:
    """What the footer shows: each description and its key."""
    return {k.description: k.key_display for k in app.screen.query_one(Footer).query(FooterKey)}


def palette(app: HiveApp) -> list[str]:
    lists = app.screen.query(CommandList)
    if not lists:
        return []
    options = lists.first()
    prompts = (options.get_option_at_index(i).prompt for i in range(options.option_count))
    return [getattr(p, "plain", str(p)) for p in prompts]


async def test_a_moved_approve_key_approves_and_its_old_key_does_not(hive):
    root, connect = hive
    # `a` now shows resolved requests: pressing it says where it went, and approves nothing.
    async with HiveApp(connect, settings=moved(approve="y", resolved="a")).run_test(size=SIZE) as pilot:
        app = await live(pilot)
        await select_request(pilot, 1)
        await pilot.press("a")
        await until(pilot, lambda: app.approvals.show_resolved, what="a to show resolved requests")
        assert tag(root, "beta", "deployed/1") is None
        await pilot.press("y")
        await until(pilot, lambda: tag(root, "beta", "deployed/1") is not None, what="y to approve #1")
        await until(pilot, lambda: footer(app).get("Approve") == "y", what="the footer's approve key")
        assert footer(app).get("Resolved") == "a"


async def test_the_footer_help_and_palette_show_the_keys_in_force(hive):
    root, connect = hive
    async with HiveApp(connect, settings=moved(approve="y", help="f1", quit="Q", quit_ctrl="ctrl+x")).run_test(
            size=SIZE) as pilot:
        app = await live(pilot)
        await select_request(pilot, 1)
        await until(pilot, lambda: footer(app).get("Approve") == "y" and footer(app).get("Help") == "f1",
                    what="the footer's keys")
        assert footer(app).get("Quit") == "Q"
        await pilot.press("ctrl+p", *"Approve request")
        await until(pilot, lambda: any("Approve request #1" in p and "key y" in p for p in palette(app)),
                    what="the palette's approve entry with its key")
        await pilot.press("escape")
        await until(pilot, lambda: not palette(app), what="the palette to close")
        await pilot.press("question_mark")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="f1 to open the help")
        text = app.screen.query_one(Markdown).source
        assert "| `y` | Approve |" in text and "| `f1` | Help |" in text and "| `ctrl+x` | Quit |" in text
        assert "| `Q` | Quit |" in text
        assert "request keys (`y`, `n`, `v`)" in text
        assert "| `a` | Approve |" not in text


async def test_escape_is_the_clear_binding_and_moves_like_any_other():
    async def connect(host):
        return KeptClient()

    async with HiveApp(connect, now=lambda: NOW, pulse=False, settings=moved(clear="k")).run_test(
            size=SIZE) as pilot:
        app = pilot.app
        table = app.containers
        await until(pilot, lambda: app.link == "live" and "atlas" in table.rows, what="the console")
        await select_agent(pilot, "atlas")
        await pilot.press("space")
        assert table.marks == {"atlas"}
        await pilot.press("escape")
        assert table.marks == {"atlas"}
        await pilot.press("k")
        await until(pilot, lambda: not table.marks, what="k to clear the marks")
    async with HiveApp(connect, now=lambda: NOW, pulse=False).run_test(size=SIZE) as pilot:
        app = pilot.app
        await until(pilot, lambda: app.link == "live" and "atlas" in app.containers.rows, what="the console")
        await pilot.press("slash", *"atl")
        assert app.filter_box.value == "atl"
        await pilot.press("escape")
        await until(pilot, lambda: not app.filter_box.value and app.containers.has_focus, what="Escape to clear")


async def test_the_kept_row_hint_names_the_keys_in_force():
    async def connect(host):
        return KeptClient()

    async with HiveApp(connect, now=lambda: NOW, pulse=False, settings=moved(purge="P", history="h")).run_test(
            size=SIZE) as pilot:
        app = pilot.app
        await until(pilot, lambda: app.link == "live" and "kestrel" in app.containers.rows, what="the console")
        text = str(app.containers.get_cell("kestrel", "agent"))
        assert "P purge · h history" in text and "D purge" not in text


# -- mistakes ---------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "line", "says"), [
    ("keys:\n  approve: y\nthemes: nord\n", 3, "unknown key 'themes'"),
    ("keys:\n  approve: [y,\n    bogus]\n", 3, "unknown key name 'bogus'"),
    ("keys:\n  approve: 'a,b'\n", 2, "one key per item"),
    ("keys:\n  approve: []\n", 2, "empty list"),
    ("keys:\n  approve: {y: 1}\n", 2, "a key or a list of keys"),
    ("keys:\n  approve: y\n  approve: z\n", 3, "duplicate key 'approve'"),
    ("keys: [approve]\n", 1, "keys must be a mapping"),
    ("theme: vaporwave\n", 1, "textual-dark"),
    ("change_markers: -1\n", 1, "0 or more seconds"),
    ("change_markers: soon\n", 1, "a number of seconds"),
    ("group_by_parent: 1\n", 1, "true or false"),
    ("keys:\n  approve: !!python/object:os.system y\n", 2, "not allowed"),
])
def test_a_mistake_in_the_file_names_its_line(tmp_path, text, line, says):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_settings(path)
    assert str(e.value).startswith(f"{path}:{line}: ") and says in str(e.value), str(e.value)


@pytest.mark.parametrize(("text", "line", "says"), [
    ("keys:\n  aprove: y\n", 2, "unknown binding id 'aprove'; did you mean approve?"),
    # The agent keys' hidden app-wide twins share their ids: `s` is start there too.
    ("keys:\n  approve: s\n", 2, "approve on s clashes in Console: s is already start"),
    ("keys:\n  approve: k\n  deny: k\n", 3, "deny on k clashes in Console: k is also given approve"),
    ("keys:\n  log.search: escape\n", 2, "clashes in History: esc is already history.back"),
    ("keys:\n  quit: ctrl+p\n", 2, "ctrl+p is already palette"),
    # Two keys for one action that was already on one of them: no clash.
    ("keys:\n  quit: [q, f10]\n", None, None),
    ("keys:\n  start: S\n  approve: s\n", None, None),
    # A swap: each key left by one action is taken by the other.
    ("keys:\n  approve: n\n  deny: a\n", None, None),
])
def test_an_unknown_id_or_a_clash_is_refused_before_drawing(tmp_path, text, line, says):
    path = write(tmp_path, text)
    if says is None:
        assert keymap_for(load_settings(path))
        return
    with pytest.raises(ConfigError) as e:
        keymap_for(load_settings(path))
    assert str(e.value).startswith(f"{path}:{line}: ") and says in str(e.value), str(e.value)
    with pytest.raises(ConfigError):
        HiveApp(lambda h: None, settings=load_settings(path))  # type: ignore[arg-type, return-value]


def test_the_whole_file_parses(tmp_path):
    path = write(tmp_path, "keys:\n  approve: y\n  quit: [Q, ctrl+x]\n  help: '?'\nchange_markers: 2.5\n"
                           "group_by_parent: true\ntheme: nord\n")
    settings = load_settings(path)
    assert settings.keys == {"approve": KeyChoice(("y",), 2), "quit": KeyChoice(("Q", "ctrl+x"), 3),
                             "help": KeyChoice(("question_mark",), 4)}
    assert (settings.change_markers, settings.group_by_parent, settings.theme, settings.path) == \
        (2.5, True, "nord", path)
    assert load_settings(tmp_path / "missing.yaml") == Settings(path=tmp_path / "missing.yaml")
    assert settings_path(tmp_path / "etc" / "hosts.yaml") == tmp_path / "etc" / "config.yaml"


@pytest.mark.parametrize(("text", "key"), [
    ("?", "question_mark"), ("/", "slash"), (":", "colon"), ("D", "D"), ("1", "1"), (" ", "space"),
    ("question_mark", "question_mark"), ("Enter", "enter"), ("F12", "f12"), ("Ctrl+Q", "ctrl+q"),
    ("shift+ctrl+up", "ctrl+shift+up"), ("ctrl+i", "tab"), (",", "comma"), ("pageup", "pageup"),
])
def test_key_names_are_textuals(text, key):
    assert key_name(text) == key


@pytest.mark.parametrize("text", ["", "bogus", "latin_small_letter_a", "ctrl+", "cmd+a", "\x07", " a"])
def test_a_key_textual_would_never_report_is_refused(text):
    with pytest.raises(ValueError):
        key_name(text)


def console_refuses(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    config = tmp_path / "etc"
    config.mkdir(exist_ok=True)
    (config / "hosts.yaml").write_text("hosts:\n  here:\n    transport: unix\n    socket: /nonexistent.sock\n")
    (config / "config.yaml").write_text("keys:\n  approve: q\n")
    return subprocess.run([str(EXE), "--config", str(config / "hosts.yaml"), *args], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args", [["console"], ["--all-hosts", "console"]])
def test_the_cli_console_does_not_start_on_a_broken_config_yaml(tmp_path, args):
    run = console_refuses(tmp_path, *args)
    where = tmp_path / "etc" / "config.yaml"
    assert run.returncode == 1
    assert run.stderr.startswith(f"hive-tui: {where}:2: keys: approve on q clashes in Console: q is already quit")
    # Refused before anything was drawn: nothing on stdout, not even an escape code.
    assert run.stdout == ""


# -- every feature findable -------------------------------------------------------------


def test_every_binding_is_in_the_help_with_its_key():
    sets = binding_sets()
    text = help_markdown(sets, {})
    for s in sets:
        for b in s.bindings:
            if b.id:
                keys = " ".join(f"`{shown(k)}`" for k in keys_of(s, b.id, {}))
                assert re.search(rf"^\| {re.escape(keys)} \| ", text, re.M), (s.title, b.id, keys)
    # Moved, they show at their new keys: every one of them at once.
    ids = sorted({b.id for s in sets for b in s.bindings if b.id})
    keys = [f"f{n}" for n in range(1, 25)] + [f"ctrl+{c}" for c in "abdefghjklnorstuvwxyz"] + \
        [f"alt+{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    assert len(keys) >= len(ids)
    settings = Settings(keys={id: KeyChoice((key,), n) for n, (id, key) in enumerate(zip(ids, keys), 1)})
    keymap = keymap_for(settings)
    text = help_markdown(sets, keymap)
    for id, key in zip(ids, keys):
        assert f"| `{key}` | " in text, id


def test_every_binding_of_the_console_has_an_id_to_move_it_by():
    from textual.binding import BindingsMap

    for s in binding_sets():
        own = [b for c in s.owner.__mro__ if c.__module__.startswith("hive_tui.")
               for bs in BindingsMap(c.__dict__.get("BINDINGS", [])).key_to_bindings.values() for b in bs]
        assert own and all(b.id for b in own), (s.title, [b.key for b in own if not b.id])


async def test_every_action_of_the_console_is_in_the_palette_with_its_key(hive):
    root, connect = hive
    async with HiveApp(connect).run_test(size=SIZE) as pilot:
        app = await live(pilot)
        await select_agent(pilot, "beta")
        await select_request(pilot, 1)
        await pilot.press("ctrl+p")
        await until(pilot, lambda: len(palette(app)) > len(ACTIONS), what="the palette's entries")
        entries = palette(app)
        for a in ACTIONS:
            if a.id == "jump":
                # Jump is the palette itself.
                continue
            name = a.label.rstrip("…")
            assert any(e.startswith(name) and f"key {shown(a.key)}" in e for e in entries), (a.id, entries)


def test_the_readme_lists_every_binding_id_with_its_default_keys():
    section = README.read_text().split("\n### Keys and settings: config.yaml\n", 1)[1].split("\n## ", 1)[0]
    missing = []
    for s in binding_sets():
        for b in s.bindings:
            if b.id:
                keys = " ".join(f"`{shown(k)}`" for k in keys_of(s, b.id, {}))
                if f"| `{b.id}` | {keys} |" not in section:
                    missing.append(f"| `{b.id}` | {keys} |")
    assert not missing, "README's table of ids lacks:\n" + "\n".join(dict.fromkeys(missing))


def test_the_readmes_example_is_a_config_the_console_takes(tmp_path):
    example = README.read_text().split("\n### Keys and settings: config.yaml\n", 1)[1]
    text = example.split("```yaml\n", 1)[1].split("```", 1)[0]
    settings = load_settings(write(tmp_path, text))
    assert keymap_for(settings)["approve"] == "y" and settings.theme == "nord"


def test_moved_approve_and_quit_keys_in_a_real_terminal(tmp_path):
    from .test_tmux import Tmux

    tmux = Tmux(f"hive-tui-keys-{tmp_path.name}")
    data, config = tmp_path / "data", tmp_path / "config"
    root = data / "hive-tui" / "demo"
    (config / "hive-tui").mkdir(parents=True)
    (config / "hive-tui" / "config.yaml").write_text("keys:\n  approve: y\n  quit: Q\n")
    tmux("new-session", "-d", "-s", "console", "-x", "160", "-y", "48", "-c", str(tmp_path),
         "-e", f"XDG_DATA_HOME={data}", "-e", f"XDG_CONFIG_HOME={config}", f"{EXE} --locker builtin")
    try:
        tmux("resize-window", "-t", "console", "-x", "160", "-y", "48")
        tmux.wait_for("· live")
        tmux.wait_for("#1 atlas: move to")
        tmux("send-keys", "-t", "console", "Tab")
        # The requests pane has the focus: the footer offers its keys, at the keys in force.
        assert " a Approve " not in tmux.wait_for(" y Approve ")
        tmux("send-keys", "-t", "console", "a")
        tmux("send-keys", "-t", "console", "q")
        # Still running after a and q: the help opens (what it says of the moved keys is
        # read by the Pilot tests above; a terminal this size shows only its first lines).
        tmux("send-keys", "-t", "console", "?")
        tmux.wait_for("The left pane lists the containers")
        tmux("send-keys", "-t", "console", "Escape")
        # Back on the main screen before the next key: an Escape and a key at once read as alt+key.
        deadline = time.monotonic() + 30
        while "The left pane lists the containers" in tmux.screen():
            assert time.monotonic() < deadline, "Escape did not close the help"
            time.sleep(0.1)
        tmux("send-keys", "-t", "console", "y")
        tmux.wait_for("deployed/1")
        tmux("send-keys", "-t", "console", "Q")
        deadline = time.monotonic() + 30
        while "console" in subprocess.run([*tmux.base, "list-sessions"], capture_output=True, text=True).stdout:
            assert time.monotonic() < deadline, "Q did not quit the console"
            time.sleep(0.1)
    finally:
        subprocess.run([*tmux.base, "kill-server"], capture_output=True)
        if (root / "hive.db").exists():
            with Engine(root, locker="builtin", runtime_options={"stop_grace": 2.0}) as engine:
                approved, untouched = engine.approval(1), engine.approval(2)
                stop_all(engine)
    assert (approved.status, approved.terminal_tag) == ("approved", "deployed/1")
    assert untouched.status == "pending"


async def test_the_all_hosts_view_takes_the_same_moved_keys(tmp_path):
    from hive_tui.client.connect import open_client
    from hive_tui.config import Host
    from hive_tui.widgets.fleet import FleetScreen

    from .serving import ServerProcess

    root = tmp_path / "hive"
    seeded_hive(root, {"beta": agent_files()})
    with Engine(root, locker="builtin") as engine:
        commit_proposal(root, "beta", {"notes.txt": b"1\n"})
        engine.request_apply_commit("beta", "main", "change 1")
    server = ServerProcess(root, tmp_path / "host.sock").start()

    async def opener(host: Host):
        return await open_client(host, redial_for=0)

    try:
        app = HiveApp(opener, hosts=[Host("a", "unix", socket=str(server.sock))], open_host=opener, all_hosts=True,
                      settings=moved(approve="y"))
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, FleetScreen), what="the all-hosts view")
            screen = app.screen
            await until(pilot, lambda: screen.requests.row_count == 1, what="the request")
            screen.requests.focus()
            await until(pilot, lambda: footer(app).get("Approve") == "y", what="the footer's approve key")
            await pilot.press("ctrl+p", *"Approve request")
            await until(pilot, lambda: any("Approve request a #1" in p and "key y" in p for p in palette(app)),
                        what="the palette's approve entry with its key")
            await pilot.press("escape")
            await until(pilot, lambda: not palette(app), what="the palette to close")
            await pilot.press("y")
            await until(pilot, lambda: tag(root, "beta", "deployed/1") is not None, what="y to approve #1")
    finally:
        server.kill()
        stop_agents(root)
