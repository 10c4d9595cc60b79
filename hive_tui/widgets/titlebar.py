"""What a host's own settings change on the console's title: READ-ONLY, and
its accent colour (so that prod can be red).

The accent is the operator's colour from the hosts file, not a design
choice, so it is the one colour set from code; the stylesheet keeps the
text readable on it (`Header.accented`).
"""

from __future__ import annotations

from rich.style import Style
from textual.color import Color, ColorParseError
from textual.widgets import Header

READ_ONLY = "READ-ONLY"


def parse_accent(accent: str | None) -> Color | None:
    """The hosts file's colour (checked when the file was read); None for the theme's."""
    if not accent:
        return None
    try:
        return Color.parse(accent)
    except ColorParseError:
        return None


def paint_accent(header: Header, accent: str | None) -> None:
    colour = parse_accent(accent)
    header.set_class(colour is not None, "accented")
    if colour is None:
        header.styles.clear_rule("background")
    else:
        header.styles.background = colour


def accent_style(accent: str | None) -> Style | None:
    """A host's accent as a rich background, with a text colour that reads on it
    (the rest of the header's style, bold, is the stylesheet's)."""
    colour = parse_accent(accent)
    if colour is None:
        return None
    return Style.from_color(colour.get_contrast_text().rich_color, colour.rich_color)
