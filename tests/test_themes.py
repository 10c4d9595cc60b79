"""The console follows Textual's theme: the `theme:` setting is in force from
the first frame, a switch from the palette restyles what is already drawn
(rows, the change, the deploy log), and every colour comes from the
stylesheets' theme variables, never from the code.

The snapshots pin the main screen in a dark and a light theme, and the
all-hosts view in the light one; a changed snapshot is reviewed as an SVG
(pytest --snapshot-report) before it is accepted with --snapshot-update."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

from rich.style import Style
from rich.text import Text
from textual.color import Color
from textual.command import CommandList, CommandPalette
from textual.widgets import Static

from hive_tui.app import HiveApp
from hive_tui.config import ConfigError
from hive_tui.models import DeployStep, Event
from hive_tui.settings import Settings
from hive_tui.widgets.diffview import patch_lines
from hive_tui.widgets.help import help_markdown

from .fleet_scripted import FleetApp
from .fleet_scripted import settled as fleet_settled
from .helpers import until
from .scripted import HOSTS, NOW, ScriptedClient

SIZE = (150, 40)
PACKAGE = Path(__file__).parent.parent / "hive_tui"


def app(theme: str | None = None) -> HiveApp:
    async def connect(host):
        return ScriptedClient()

    return HiveApp(connect, hosts=HOSTS, now=lambda: NOW, pulse=False, settings=Settings(theme=theme))


async def settled(pilot) -> None:
    await pilot.pause()
    while pilot.app.link != "live" or pilot.app.diff.shown == "":
        await pilot.pause(0.05)
    await pilot.pause()


def variable(app: HiveApp, name: str) -> Color:
    """A variable of the theme just set, as the colour it stands for (worked out from the
    theme itself: the app's own variables follow only once the stylesheets are refreshed)."""
    return Color.parse(app.current_theme.to_color_system().generate()[name])


def contrast(a: Color, b: Color) -> float:
    """The WCAG contrast ratio of two colours: 1 (none) to 21 (black on white)."""
    def luminance(c: Color) -> float:
        r, g, b = ((v / 255 / 12.92) if v / 255 <= 0.03928 else ((v / 255 + 0.055) / 1.055) ** 2.4
                   for v in (c.r, c.g, c.b))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def style_of(text: Text, piece: str) -> Style:
    """The style the spans of `text` give to the start of `piece`."""
    at = text.plain.index(piece)
    return Style.combine(s.style for s in text.spans if s.start <= at < s.end and isinstance(s.style, Style))


def colour_of(text: Text, piece: str) -> Color | None:
    """The colour the spans of `text` give to the start of `piece`."""
    style = style_of(text, piece)
    return Color.from_rich_color(style.color) if style.color else None


# -- snapshots --------------------------------------------------------------------------


def test_main_screen_dark(snap_compare):
    assert snap_compare(app("textual-dark"), terminal_size=SIZE, run_before=settled)


def test_main_screen_light(snap_compare):
    """Every word readable on a light background: the sha and model, the pills, the failed row, the badges."""
    assert snap_compare(app("textual-light"), terminal_size=SIZE, run_before=settled)


def test_every_host_light(snap_compare):
    """The header line of every link state, the stale rows and the marks, on a light background."""
    async def light(pilot):
        pilot.app.theme = "textual-light"
        await fleet_settled(pilot)

    assert snap_compare(FleetApp(), terminal_size=SIZE, run_before=light)


# -- the setting ------------------------------------------------------------------------


async def test_the_theme_setting_is_in_force_from_the_first_frame():
    seen: list[str] = []

    class Watched(HiveApp):
        def compose(self):
            # Before the first frame: what the screen is first drawn with.
            seen.append(self.current_theme.name)
            return super().compose()

    async def connect(host):
        return ScriptedClient()

    watched = Watched(connect, now=lambda: NOW, pulse=False, settings=Settings(theme="textual-light"))
    async with watched.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: watched.link == "live", what="the link")
        assert seen == ["textual-light"]
        assert watched.theme == "textual-light"
        assert watched.screen.styles.background == variable(watched, "background")


async def test_without_the_setting_the_console_keeps_textuals_default_theme():
    default = app()
    assert default.theme == HiveApp(lambda h: None).theme == "textual-dark"


async def test_an_unknown_theme_is_refused_with_the_names_there_are():
    try:
        app("no-such-theme")
    except ConfigError as e:
        assert "no-such-theme" in str(e) and "textual-light" in str(e)
    else:
        raise AssertionError("an unknown theme was taken")


# -- a switch from the palette restyles what is drawn --------------------------------------


async def test_a_theme_switch_restyles_the_rows_already_drawn():
    async with app().run_test(size=SIZE) as pilot:
        await settled(pilot)
        table = pilot.app.containers
        seen = {}
        for theme in ("textual-dark", "textual-light", "textual-dark"):
            pilot.app.theme = theme

            def restyled() -> bool:
                failed = colour_of(table.get_cell("bramble", "agent"), "✗ failed")
                pill = colour_of(table.get_cell("echo", "agent"), "starting")
                return failed == variable(pilot.app, "text-error") and pill == variable(pilot.app, "text-warning")

            await until(pilot, restyled, what=f"the rows in {theme}'s colours")
            sha = colour_of(table.get_cell("atlas", "agent"), "3f9a1c2b7d4e")
            seen[theme] = (colour_of(table.get_cell("bramble", "agent"), "✗ failed"), sha)
            # The muted sha reads on the background: never the background's own colour, nor white on light.
            background = variable(pilot.app, "background")
            assert sha is not None and contrast(sha, background) > 3, (theme, sha, background)
            badge = style_of(table.get_cell("cinder", "agent"), "needs login")
            assert badge.color and badge.bgcolor, badge
            text, under = Color.from_rich_color(badge.color), Color.from_rich_color(badge.bgcolor)
            assert contrast(text, under) > 4.5, (theme, text, under)
        assert seen["textual-dark"][0] != seen["textual-light"][0]
        assert seen["textual-dark"][1] != seen["textual-light"][1]


async def test_a_theme_switch_restyles_the_all_hosts_rows():
    async with FleetApp().run_test(size=SIZE) as pilot:
        await fleet_settled(pilot)
        table = pilot.app.screen.table
        for theme in ("textual-light", "textual-dark"):
            pilot.app.theme = theme

            def restyled() -> bool:
                failed = colour_of(table.get_cell("prod/bramble", "row"), "✗ failed")
                mark = colour_of(table.get_cell("lab/", "row"), "lab")
                return failed == variable(pilot.app, "text-error") and mark == variable(pilot.app, "text-warning")

            await until(pilot, restyled, what=f"the rows in {theme}'s colours")


async def test_a_theme_switch_restyles_the_change_on_show():
    async with app().run_test(size=SIZE) as pilot:
        await settled(pilot)
        diff = pilot.app.diff
        colours = {}
        for theme in ("textual-dark", "textual-light"):
            pilot.app.theme = theme

            def coloured() -> bool:
                patch = pilot.app.query_one("#diff-patch", Static).content
                return (isinstance(patch, Text) and colour_of(patch, "+opus") == variable(pilot.app, "text-success")
                        and colour_of(patch, "-sonnet") == variable(pilot.app, "text-error"))

            await until(pilot, coloured, what=f"the change in {theme}'s colours")
            colours[theme] = colour_of(pilot.app.query_one("#diff-patch", Static).content, "+opus")
        assert colours["textual-dark"] != colours["textual-light"]
        assert "+opus" in diff.shown and diff.shown.startswith("#1 atlas: move to the larger model\n")


def test_the_patch_is_coloured_by_what_each_line_is():
    patch = ("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n kept\n--- a removed line\n+++ an added one\n"
             "\\ No newline at end of file\ndiff --git a/y b/y\nnew file mode 100644\n--- /dev/null\n+++ b/y\n"
             "@@ -0,0 +1 @@\n+why\n")
    lines = patch.splitlines()
    kinds = {patch[start:end]: name for start, end, name in patch_lines(patch)}
    assert kinds == {
        lines[0]: "diff--file", lines[1]: "diff--file", lines[2]: "diff--file", lines[3]: "diff--hunk",
        lines[5]: "diff--removed", lines[6]: "diff--added", lines[7]: "diff--file",
        lines[8]: "diff--file", lines[9]: "diff--file", lines[10]: "diff--file", lines[11]: "diff--file",
        lines[12]: "diff--hunk", lines[13]: "diff--added",
    }


async def test_a_theme_switch_restyles_the_deploy_log():
    async with app().run_test(size=SIZE) as pilot:
        await settled(pilot)
        log = pilot.app.deploys
        log.step(DeployStep(3, "atlas", "output", "building the closure"))
        log.event(Event(seq=1, kind="ApprovalResolved", agent="atlas", id=3, status="failed", tag="failed/3"))

        def colours() -> list[Color | None]:
            found = []
            for strip in log.lines:
                for segment in strip:
                    if "building the closure" in segment.text and segment.style and segment.style.color:
                        found.append(Color.from_rich_color(segment.style.color))
            return found

        await until(pilot, lambda: bool(colours()), what="the build output in the log")
        dark = colours()[0]
        pilot.app.theme = "textual-light"
        await until(pilot, lambda: bool(colours()) and colours()[0] != dark, what="the log in light colours")
        light = colours()[0]
        assert contrast(light, variable(pilot.app, "background")) > 3
        assert sum("ApprovalResolved atlas #3" in "".join(s.text for s in strip) for strip in log.lines) == 1


# -- findable ----------------------------------------------------------------------------


async def test_the_palette_offers_the_theme_switch_and_the_help_says_so():
    async with app().run_test(size=SIZE) as pilot:
        await settled(pilot)
        pilot.app.action_command_palette()
        await until(pilot, lambda: isinstance(pilot.app.screen, CommandPalette), what="the palette")
        await pilot.press(*"theme")
        commands = pilot.app.screen.query_one(CommandList)

        def offered() -> list[str]:
            return [str(commands.get_option_at_index(i).prompt) for i in range(commands.option_count)]

        await until(pilot, lambda: any(o.startswith("Theme") for o in offered()), what="the theme switch offered")
        await pilot.press("escape")
    assert re.search(r"theme", help_markdown(), re.IGNORECASE)
    assert "config.yaml" in help_markdown()


# -- no colour in the code ---------------------------------------------------------------

# Where a colour may be named in code, and why: the hosts file's accents are the operator's
# choice, checked against the names a terminal theme can show.
ALLOWED = {
    "config.py": "the hosts file's accent colours, by name",
    "widgets/titlebar.py": "a host's accent, painted from the hosts file",
}
COLOUR_NAMES = ("red", "green", "blue", "yellow", "magenta", "cyan", "white", "black", "grey", "gray",
                "orange", "purple", "pink")
STYLE_WORDS = ("bold", "dim", "italic", "underline", "reverse", "strike", "blink")
LITERALS = [
    (re.compile(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b(?![0-9a-zA-Z])"), "a hex colour"),
    (re.compile(r"\b(?:rgb|hsl)a?\("), "an rgb() or hsl() colour"),
    (re.compile(r"\bColor\((?!\w*Error)|Color\.parse\(|\bColor\.from_rgb|Style\((?!\))|Style\.parse\("),
     "a colour or style built in code"),
    (re.compile(r"[(,]\s*(?:(?:bg)?colou?r|bold|dim|italic|underline|reverse|strike|blink)\s*=(?!=)"),
     "a colour or text style set in code"),
    (re.compile(r"""["'](?:[^"'\n]*\s)?(?:on\s+)?(?:bright_)?(?:%s)(?:\s[^"'\n]*)?["']""" % "|".join(
        COLOUR_NAMES + STYLE_WORDS)), "a colour or style word in a string"),
    (re.compile(r"""["'][^"'\n]*\[/?(?:%s)\b[^\]]*\]""" % "|".join(COLOUR_NAMES + STYLE_WORDS + ("b", "i", "u"))),
     "console markup"),
    (re.compile(r"\bSyntax\(|\btheme\s*=\s*['\"]|\bansi_(?:dark|light)\b|\bmonokai\b"), "a syntax theme"),
    (re.compile(r"\\x1b\[|\\033\[|\\e\["), "an escape sequence"),
    (re.compile(r"\b(?:color|background|tint|border(?:-[a-z]+)?)\s*:\s*(?![^;\n]*\$)[^;\n]*(?:#[0-9a-fA-F]{3}|\b(?:%s)\b)"
                % "|".join(COLOUR_NAMES)), "a colour in a widget's own CSS"),
]


def without_comments(source: str) -> list[str]:
    """The lines of `source` with its comments blanked out (a `#` in a string stays)."""
    lines = source.splitlines()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, col = token.start
            lines[row - 1] = lines[row - 1][:col]
    return lines


def colour_literals(source: str) -> list[tuple[int, str, str]]:
    found = []
    for number, (line, code) in enumerate(zip(source.splitlines(), without_comments(source)), 1):
        for pattern, what in LITERALS:
            if pattern.search(code):
                found.append((number, what, line.strip()))
    return found


def test_the_check_finds_each_kind_of_colour_literal():
    for line in ('Text("x", style="bold red")', 'style = Style(color="red")', 'self.write("[red]no[/red]")',
                 'Color(255, 0, 0)', 'Color.parse("#ff0000")', 'x = "#1e90ff"', 'Syntax(code, "diff")',
                 'Text("x", style="dim")', 'print("\\x1b[31m")', 'Text.assemble(("host ", "bold"))',
                 'Style(bgcolor=c.rich_color)', 'text.stylize("italic")', 'self.notify("[b]done[/b]")',
                 'CSS = """\n    MyWidget { color: red; }\n"""', 'CSS = """\n    border: tall #336699;\n"""'):
        assert colour_literals(line), line
    for line in ('"""the colour of a badge"""', 'self.get_component_rich_style(name, partial=True)',
                 'Text(f"{name}: history")', '# red, as the operator chose', 'severity="error"',
                 'classes="modal-question"', 'return f"#{a.id} {one_line(a.agent)}"', 'Style.null()',
                 'widths = [len(r[i]) for r in rows]', 'units[u] for u in listed', 'colour = parse(text)',
                 'CSS = """\n    Widget { background: $panel; }\n"""',
                 'CSS = """\n    CommandLogScreen #command-log-title { padding: 0 1; }\n"""'):
        assert not colour_literals(line), line


def test_no_colour_is_set_in_the_code():
    """Colours live in styles/*.tcss with theme variables: a colour in code would not follow a theme switch."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative in ALLOWED:
            continue
        for number, what, line in colour_literals(path.read_text()):
            found.append(f"hive_tui/{relative}:{number}: {what}: {line}")
    assert not found, "\n".join(found)


def test_the_stylesheets_use_theme_variables_only():
    styles = Path(__file__).parent.parent / "styles"
    found = []
    for path in sorted(styles.glob("*.tcss")):
        text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
        for number, line in enumerate(text.splitlines(), 1):
            value = line.split(":", 1)[1] if ":" in line and line.strip().endswith(";") else ""
            if re.search(r"#[0-9a-fA-F]{3,8}\b|\b(?:rgb|hsl)a?\(|\b(?:%s)\b" % "|".join(COLOUR_NAMES), value):
                found.append(f"{path.name}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
